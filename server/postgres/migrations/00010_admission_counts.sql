-- +goose Up

-- Counters of rollup_values, kept by the admissions (caps.go) under the
-- project's admission lock, so that an admission judges its candidates
-- against the caps without counting the values a day already holds:
-- rollup_value_counts has, per project, UTC day of the events and
-- dimension, the values admitted; rollup_additions, per project and UTC
-- day of arrival, the values added that day (the cap Caps.NewPerDay).
CREATE TABLE rollup_value_counts (
    project_id integer  NOT NULL,
    day        date     NOT NULL,
    dim        smallint NOT NULL,
    n          integer  NOT NULL,
    PRIMARY KEY (project_id, day, dim)
);
CREATE TABLE rollup_additions (
    project_id integer NOT NULL,
    day        date    NOT NULL, -- UTC day the values arrived
    n          integer NOT NULL,
    PRIMARY KEY (project_id, day)
);
INSERT INTO rollup_value_counts (project_id, day, dim, n)
SELECT project_id, day, dim, count(*) FROM rollup_values GROUP BY 1, 2, 3;
INSERT INTO rollup_additions (project_id, day, n)
SELECT project_id, added, count(*) FROM rollup_values GROUP BY 1, 2;
DROP INDEX rollup_values_added_idx;

-- +goose Down
CREATE INDEX rollup_values_added_idx ON rollup_values (project_id, added);
DROP TABLE rollup_additions;
DROP TABLE rollup_value_counts;
