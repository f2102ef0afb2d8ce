-- +goose Up

-- tk_add adds two non-negative bigints, saturating at the largest bigint
-- instead of failing with "bigint out of range". Every counter the ingest
-- adds to goes through it, so that no value a client sends can make a
-- rollup row unwritable: nothing one request contains may make a later
-- valid event unstorable. The inputs are bounded (docs/protocol.md), so a
-- saturated sum needs billions of events in one row; it is then a floor.
-- +goose StatementBegin
CREATE FUNCTION tk_add(a bigint, b bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b > 0 AND a > 9223372036854775807 - b THEN 9223372036854775807 ELSE a + b END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tk_add(bigint, bigint);
