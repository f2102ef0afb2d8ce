-- +goose Up

-- A project is a tenant: one tool (or family of tools) with its own keys.
CREATE TABLE projects (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as SHA-256 hashes only.
CREATE TABLE api_keys (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('write', 'read')),
    hash       bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_project_id_idx ON api_keys (project_id);

-- Raw events, one row per accepted event. Partitioned by month on event_id:
-- a UUIDv7 starts with its creation time in milliseconds, so ranges of ids
-- are ranges of time, and the primary key (project_id, event_id) can be
-- enforced across all partitions (a unique key must include the partition
-- key). Partitions are created ahead and dropped after the retention window
-- by the server's maintenance, not by migrations.
CREATE TABLE events (
    project_id      integer     NOT NULL,
    event_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL, -- the event's "timestamp"
    received_at     timestamptz NOT NULL DEFAULT now(),
    service_name    text        NOT NULL,
    service_version text        NOT NULL,
    event_type      text        NOT NULL,
    name            text        NOT NULL, -- command, feature or method; '' otherwise
    success         boolean,
    duration_ms     bigint,
    exit_code       integer,
    error_kind      text,
    user_id         bytea       NOT NULL, -- the 32 bytes behind "anon_<hex>"
    session_id      uuid        NOT NULL,
    sdk_name        text        NOT NULL,
    sdk_version     text        NOT NULL,
    os              text        NOT NULL,
    arch            text        NOT NULL,
    ci              boolean     NOT NULL,
    ci_name         text        NOT NULL,
    go_version      text        NOT NULL,
    metadata        jsonb       NOT NULL,
    PRIMARY KEY (project_id, event_id)
) PARTITION BY RANGE (event_id);
CREATE INDEX events_project_id_occurred_at_idx ON events (project_id, occurred_at);

-- Daily event counts, the base of most dashboards. Updated in the same
-- statement as the events insert, from the rows actually inserted. Each
-- database connection adds to its own shard of a counter row, so that
-- concurrent batches of one busy service do not queue on one row lock:
-- readers sum over shard.
CREATE TABLE daily_event_counts (
    project_id      integer NOT NULL,
    day             date    NOT NULL, -- UTC day of occurred_at
    service_name    text    NOT NULL,
    service_version text    NOT NULL,
    event_type      text    NOT NULL,
    name            text    NOT NULL,
    success         boolean,
    events          bigint  NOT NULL,
    duration_ms_sum bigint  NOT NULL DEFAULT 0, -- over events with a duration
    duration_count  bigint  NOT NULL DEFAULT 0,
    shard           smallint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX daily_event_counts_key ON daily_event_counts
    (project_id, day, service_name, service_version, event_type, name, success, shard) NULLS NOT DISTINCT;

-- Distinct users per project, service and day: count(*) is the daily active
-- users; count(DISTINCT user_id) over a range gives weekly or monthly ones.
-- The version and platform are those of the user's first event of the day
-- (of the first batch that brought the user that day), for adoption and
-- platform breakdowns by users rather than by events.
CREATE TABLE daily_users (
    project_id      integer NOT NULL,
    day             date    NOT NULL,
    service_name    text    NOT NULL,
    user_id         bytea   NOT NULL,
    service_version text    NOT NULL,
    os              text    NOT NULL,
    arch            text    NOT NULL,
    ci              boolean NOT NULL,
    PRIMARY KEY (project_id, day, service_name, user_id)
);

-- Events that clients reported as dropped from their local queues.
CREATE TABLE daily_data_loss (
    project_id integer NOT NULL,
    day        date    NOT NULL, -- UTC day the report was received
    dropped    bigint  NOT NULL,
    PRIMARY KEY (project_id, day)
);

-- +goose Down
DROP TABLE daily_data_loss;
DROP TABLE daily_users;
DROP TABLE daily_event_counts;
DROP TABLE events;
DROP TABLE api_keys;
DROP TABLE projects;
