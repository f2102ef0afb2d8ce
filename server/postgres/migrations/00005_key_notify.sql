-- +goose Up

-- Every change of api_keys (a key created, revoked or deleted, also through
-- a project's deletion) notifies the channel tk_keys when it commits, so
-- that servers keeping the valid write keys in memory list them again at
-- once (DB.WatchKeys). One notification per statement; PostgreSQL folds
-- identical ones of a transaction into one.
-- +goose StatementBegin
CREATE FUNCTION tk_keys_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tk_keys', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tk_keys_changed();

-- +goose Down
DROP TRIGGER api_keys_changed ON api_keys;
DROP FUNCTION tk_keys_changed();
