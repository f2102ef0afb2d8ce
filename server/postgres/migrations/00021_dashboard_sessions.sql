-- +goose Up

-- Dashboard sessions (server/session.go): the hash of the random token a
-- signed-in browser holds in its cookie, the expiry, and the read keys
-- signed in with it, one per project. Keys are referred to by id, so a
-- revoked or deleted key leaves every session at once. Sessions hold no
-- project's data and are not per project; on a distributed database they
-- would be a local table of the coordinator.
CREATE TABLE dashboard_sessions (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expires_at_idx ON dashboard_sessions (expires_at);

CREATE TABLE dashboard_session_keys (
    token_hash bytea       NOT NULL REFERENCES dashboard_sessions ON DELETE CASCADE,
    project_id integer     NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key_id     integer     NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_hash, project_id)
);
CREATE INDEX dashboard_session_keys_key_id_idx ON dashboard_session_keys (key_id);

-- +goose Down
DROP TABLE dashboard_session_keys;
DROP TABLE dashboard_sessions;
