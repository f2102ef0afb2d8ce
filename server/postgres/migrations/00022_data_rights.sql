-- +goose Up

-- A third kind of key: admin, which may read and, beyond that, erase the
-- data of users and manage the project's keys.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_kind_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind_check CHECK (kind IN ('write', 'read', 'admin'));

-- An erased user of a project, by the SHA-256 of the user's id: the id
-- can be recognised, not read back. Events of the user recorded before
-- erased_before that arrive later (from a queue that was offline, or
-- another queue on the same machine) are discarded by ingest. A row is
-- kept for the storage window, beyond which no such event is accepted
-- anyway, and then pruned. requested_at counts the erasures asked for
-- with write keys against the project's daily allowance.
CREATE TABLE erasures (
    project_id    integer     NOT NULL,
    user_hash     bytea       NOT NULL,
    erased_before timestamptz NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    by_write_key  boolean     NOT NULL,
    PRIMARY KEY (project_id, user_hash)
);
CREATE INDEX erasures_requested_at ON erasures (project_id, requested_at);

-- What was done to a project's data and keys, by whom (a key's display
-- prefix, or the command line), without personal data: an erasure's
-- detail holds row counts, never the user's id.
CREATE TABLE audit_log (
    project_id integer     NOT NULL,
    id         bigserial,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL,
    action     text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (project_id, id)
);

-- A user's rows, found without scanning the project's.
CREATE INDEX daily_users_user ON daily_users (project_id, user_id);
CREATE INDEX weekly_users_user ON weekly_users (project_id, user_id);

-- tk_sketch_without removes one user's hash (hll_hash_bytea of the id, as
-- a bigint) from a sketch of the explicit form, which keeps the hashes of
-- up to 160 users. A sketch of another form keeps no user's hash, only
-- 2,048 registers of leading-zero counts shared by all its users, and is
-- returned as it is.
CREATE FUNCTION tk_explicit_without(b bytea, v bytea) RETURNS hll
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT CASE WHEN count(*) = 0
                        THEN set_byte(substring(b FROM 1 FOR 3), 0, (get_byte(b, 0) & 240) | 1)
                        ELSE substring(b FROM 1 FOR 3) || string_agg(c, ''::bytea ORDER BY i) END::hll
            FROM (SELECT i, substring(b FROM 4 + 8 * i FOR 8) AS c
                  FROM generate_series(0, (octet_length(b) - 3) / 8 - 1) AS i) x
            WHERE c <> v);

CREATE FUNCTION tk_sketch_without(h hll, v bigint) RETURNS hll
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN hll_type(h) <> 2 THEN h
                ELSE tk_explicit_without(decode(substring(h::text FROM 3), 'hex'), int8send(v)) END;

-- tk_sketch_has tells whether a sketch of the explicit form holds a hash.
CREATE FUNCTION tk_sketch_has(h hll, v bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN hll_type(h) = 2 AND EXISTS (
        SELECT FROM generate_series(0, (octet_length(decode(substring(h::text FROM 3), 'hex')) - 3) / 8 - 1) AS i
        WHERE substring(decode(substring(h::text FROM 3), 'hex') FROM 4 + 8 * i FOR 8) = int8send(v));

-- tk_check_erased raises TKE01: ingest's rollup statement calls it when
-- a batch holds events of an erased user recorded before the erasure, so
-- that the batch goes through the statement path, which leaves them out.
-- +goose StatementBegin
CREATE FUNCTION tk_check_erased(project integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'events of an erased user' USING ERRCODE = 'TKE01';
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tk_check_erased(integer);
DROP FUNCTION tk_sketch_has(hll, bigint);
DROP FUNCTION tk_sketch_without(hll, bigint);
DROP FUNCTION tk_explicit_without(bytea, bytea);
DROP INDEX weekly_users_user;
DROP INDEX daily_users_user;
DROP TABLE audit_log;
DROP TABLE erasures;
DELETE FROM api_keys WHERE kind = 'admin';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_kind_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind_check CHECK (kind IN ('write', 'read'));
