-- +goose Up

-- tk_check_write_key raises an error unless key_id is an unrevoked write
-- key of the project. Ingest calls it inside its transaction, so that a
-- key revoked before the request commits nothing: unknown key (or one of
-- another project) TKK01, revoked TKK02, not a write key TKK03.
-- +goose StatementBegin
CREATE FUNCTION tk_check_write_key(key_id integer, project integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k record;
BEGIN
    SELECT project_id, kind, revoked_at INTO k FROM api_keys WHERE id = key_id;
    IF NOT FOUND OR k.project_id <> project THEN
        RAISE EXCEPTION 'unknown key' USING ERRCODE = 'TKK01';
    END IF;
    IF k.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'the key is revoked' USING ERRCODE = 'TKK02';
    END IF;
    IF k.kind <> 'write' THEN
        RAISE EXCEPTION 'not a write key' USING ERRCODE = 'TKK03';
    END IF;
    RETURN true;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tk_check_write_key(integer, integer);
