-- +goose Up

-- tk_version_key orders service versions for the query API's "gte" and "lt"
-- filters ("from version X onward"): "1.4.2" and "v1.4.2" give {1,4,2,1},
-- "1.5" gives {1,5,0,1}, and a pre-release such as "2.0.0-rc.1" gives
-- {2,0,0,0}, before "2.0.0". A version of another form gives NULL, which
-- no comparison matches.
-- +goose StatementBegin
CREATE FUNCTION tk_version_key(v text) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN m IS NULL THEN NULL ELSE ARRAY[
        m[1]::bigint, coalesce(m[2], '0')::bigint, coalesce(m[3], '0')::bigint,
        CASE WHEN m[4] IS NULL THEN 1 ELSE 0 END] END
    FROM regexp_match(v, '^v?([0-9]{1,9})(?:\.([0-9]{1,9}))?(?:\.([0-9]{1,9}))?(-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$') AS m
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tk_version_key(text);
