-- +goose Up

-- The rollup of the closed days, weeks and months that the questions by
-- command, feature and method read: events, outcomes, durations, users
-- and first and last times per period, service, version, type, name, OS,
-- arch and CI. Without daily_event_counts' Go version, outcome and error
-- kind, a day has a third of its rows; a week or a month of them is one
-- row per key where the days have one per key and day, so that 180 days
-- read some 25 thousand rows where daily_event_counts has 600 thousand.
--
-- period is 'd' (a day), 'w' (an ISO week, start its Monday) or 'm' (a
-- month, start its first day). The maintenance builds them (see
-- periods.go) from shard 0 of daily_event_counts, which only the
-- compaction writes: a period's rows hold exactly the shard-0 rows of its
-- days, once every day of it is at most period_rollups.built_through, and
-- the compaction adds to them what it merges into shard 0 of such a day.
-- The rows of the other shards of those days, not compacted yet, are
-- read beside them.
CREATE TABLE period_counts (
    project_id      integer     NOT NULL,
    period          "char"      NOT NULL CHECK (period IN ('d', 'w', 'm')),
    start           date        NOT NULL,
    service_name    text        NOT NULL,
    service_version text        NOT NULL,
    event_type      text        NOT NULL,
    name            text        NOT NULL,
    os              text        NOT NULL,
    arch            text        NOT NULL,
    ci              boolean     NOT NULL,
    events          bigint      NOT NULL,
    successes       bigint      NOT NULL,
    outcomes        bigint      NOT NULL,
    duration_ms_sum bigint      NOT NULL,
    duration_count  bigint      NOT NULL,
    users           hll         NOT NULL,
    durations       tdigest,
    first_at        timestamptz,
    last_at         timestamptz,
    PRIMARY KEY (project_id, period, start, service_name, service_version, event_type, name, os, arch, ci)
);

-- Events and users of the same periods and keys by error kind, for the
-- error kinds of commands: a second table, so that the questions without
-- them read no more rows.
CREATE TABLE period_error_counts (
    project_id      integer NOT NULL,
    period          "char"  NOT NULL CHECK (period IN ('d', 'w', 'm')),
    start           date    NOT NULL,
    service_name    text    NOT NULL,
    service_version text    NOT NULL,
    event_type      text    NOT NULL,
    name            text    NOT NULL,
    os              text    NOT NULL,
    arch            text    NOT NULL,
    ci              boolean NOT NULL,
    error_kind      text,
    events          bigint  NOT NULL,
    users           hll     NOT NULL
);
CREATE UNIQUE INDEX period_error_counts_key ON period_error_counts
    (project_id, period, start, service_name, service_version, event_type, name, os, arch, ci, error_kind)
    NULLS NOT DISTINCT;

-- The command runs that set each flag (or a flag to a value) and their
-- users, by the same periods, from daily_flag_counts.
CREATE TABLE period_flag_counts (
    project_id      integer NOT NULL,
    period          "char"  NOT NULL CHECK (period IN ('d', 'w', 'm')),
    start           date    NOT NULL,
    service_name    text    NOT NULL,
    service_version text    NOT NULL,
    command         text    NOT NULL,
    flag            text    NOT NULL,
    value           text,
    os              text    NOT NULL,
    arch            text    NOT NULL,
    ci              boolean NOT NULL,
    events          bigint  NOT NULL,
    users           hll     NOT NULL
);
CREATE UNIQUE INDEX period_flag_counts_key ON period_flag_counts
    (project_id, period, start, service_name, service_version, command, flag, value, os, arch, ci)
    NULLS NOT DISTINCT;

-- The last day whose period rows are built, per project: every day, week
-- and month that ends on it or before.
CREATE TABLE period_rollups (
    project_id    integer PRIMARY KEY,
    built_through date    NOT NULL
);

-- The rows of daily_event_counts and daily_flag_counts not compacted yet,
-- which questions over built periods read beside them.
CREATE INDEX daily_event_counts_shards ON daily_event_counts (project_id, day) WHERE shard <> 0;
CREATE INDEX daily_flag_counts_shards ON daily_flag_counts (project_id, day) WHERE shard <> 0;

-- +goose Down
DROP INDEX daily_flag_counts_shards;
DROP INDEX daily_event_counts_shards;
DROP TABLE period_rollups;
DROP TABLE period_flag_counts;
DROP TABLE period_error_counts;
DROP TABLE period_counts;
