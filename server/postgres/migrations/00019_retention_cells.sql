-- +goose Up

-- Retention without filters, counted ahead for the closed weeks: the
-- maintenance (BuildRetention) counts, from weekly_users, every user's
-- first week, the cohorts' cells and each week's active, new and
-- dormant users up to built_week, the Monday of the week before last.
-- A question reads those, and counts the weeks after built_week from
-- weekly_users. Ingest notes in retention_late the weeks before the
-- current one to which it adds a user's week; while one of them is
-- built, the question counts everything from weekly_users, until the
-- next build.
CREATE TABLE retention_users (
    project_id integer NOT NULL,
    user_id    bytea   NOT NULL,
    first_week date    NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

-- Users of the cohort of first week cohort active k weeks later.
CREATE TABLE retention_cells (
    project_id integer NOT NULL,
    cohort     date    NOT NULL,
    k          integer NOT NULL,
    users      bigint  NOT NULL,
    PRIMARY KEY (project_id, cohort, k)
);

-- Users active in a week, those new in it, and those active the week
-- before and not in it.
CREATE TABLE retention_weeks (
    project_id integer NOT NULL,
    week       date    NOT NULL,
    active     bigint  NOT NULL,
    new        bigint  NOT NULL,
    dormant    bigint  NOT NULL,
    PRIMARY KEY (project_id, week)
);

-- The distinct versions of the weeks counted, for version filters.
CREATE TABLE retention_versions (
    project_id      integer NOT NULL,
    service_version text    NOT NULL,
    PRIMARY KEY (project_id, service_version)
);

CREATE TABLE retention_late (
    project_id integer NOT NULL,
    week       date    NOT NULL,
    PRIMARY KEY (project_id, week)
);

CREATE TABLE retention_built (
    project_id integer PRIMARY KEY,
    built_week date    NOT NULL
);

-- +goose Down
DROP TABLE retention_built;
DROP TABLE retention_late;
DROP TABLE retention_versions;
DROP TABLE retention_weeks;
DROP TABLE retention_cells;
DROP TABLE retention_users;
