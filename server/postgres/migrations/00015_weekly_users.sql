-- +goose Up

-- The weeks in which each user was active, with each version, OS, arch and
-- CI flag of their events that week: one row per distinct combination.
-- Retention reads it instead of the events: a user is active in a week
-- under filters on these columns exactly when a row of the week passes
-- them, as an event would. week is the Monday of the ISO week (UTC).
-- Versions are those the caps kept (a folded one is "(other)").
CREATE TABLE weekly_users (
    project_id      integer NOT NULL,
    week            date    NOT NULL,
    user_id         bytea   NOT NULL,
    service_name    text    NOT NULL,
    service_version text    NOT NULL,
    os              text    NOT NULL,
    arch            text    NOT NULL,
    ci              boolean NOT NULL,
    PRIMARY KEY (project_id, week, user_id, service_name, service_version, os, arch, ci)
);

INSERT INTO weekly_users (project_id, week, user_id, service_name, service_version, os, arch, ci)
SELECT DISTINCT project_id, date_trunc('week', occurred_at AT TIME ZONE 'UTC')::date, user_id, service_name,
       service_version, os, arch, ci
FROM events;

-- +goose Down
DROP TABLE weekly_users;
