-- +goose Up

-- The values of the capped dimensions, and the rollup rows, that each
-- project was admitted per UTC day of its events (caps.go, docs/server.md
-- "Cardinality caps"): dim 1 service, 2 version, 3 event type, 4 event type
-- and name, 5 flag, 6 flag and value, 7 a daily_event_counts row, 8 a
-- daily_flag_counts row (these two by a hash of their columns). added is
-- the UTC day the value arrived, for the cap of values added per day.
CREATE TABLE rollup_values (
    project_id integer  NOT NULL,
    day        date     NOT NULL,
    dim        smallint NOT NULL,
    value      text     NOT NULL,
    added      date     NOT NULL,
    PRIMARY KEY (project_id, day, dim, value)
);
CREATE INDEX rollup_values_added_idx ON rollup_values (project_id, added);

-- What the caps folded into "(other)": events (for the dimensions of
-- daily_event_counts) or flags (for those of daily_flag_counts) per project,
-- UTC day of the events and dimension. Sharded like the other rollups:
-- readers sum over shard.
CREATE TABLE daily_folds (
    project_id integer  NOT NULL,
    day        date     NOT NULL,
    dimension  text     NOT NULL,
    shard      smallint NOT NULL,
    events     bigint   NOT NULL,
    PRIMARY KEY (project_id, day, dimension, shard)
);

-- The values of the days already counted are admitted as they are: the
-- caps apply from now on.
INSERT INTO rollup_values (project_id, day, dim, value, added)
SELECT DISTINCT project_id, day, 1, service_name, day FROM daily_event_counts
UNION SELECT DISTINCT project_id, day, 2, service_version, day FROM daily_event_counts
UNION SELECT DISTINCT project_id, day, 3, event_type, day FROM daily_event_counts
UNION SELECT DISTINCT project_id, day, 4, event_type || chr(31) || name, day FROM daily_event_counts
UNION SELECT DISTINCT project_id, day, 5, flag, day FROM daily_flag_counts
UNION SELECT DISTINCT project_id, day, 6, flag || chr(31) || value, day FROM daily_flag_counts WHERE value IS NOT NULL;

-- +goose Down
DROP TABLE daily_folds;
DROP TABLE rollup_values;
