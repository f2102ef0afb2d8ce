-- +goose Up

-- The first and last event time of each row of daily_event_counts, so that
-- the query API answers first_seen and last_seen ("when was this method
-- last called?") from the rollup. Merged with least and greatest, which a
-- retried request cannot move.
ALTER TABLE daily_event_counts ADD COLUMN first_at timestamptz, ADD COLUMN last_at timestamptz;

-- +goose StatementBegin
WITH s AS (
    SELECT project_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, service_name, service_version, event_type,
           name, os, arch, ci, success, error_kind, min(occurred_at) AS first_at, max(occurred_at) AS last_at
    FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)
UPDATE daily_event_counts c SET first_at = s.first_at, last_at = s.last_at FROM s
WHERE c.project_id = s.project_id AND c.day = s.day AND c.service_name = s.service_name
  AND c.service_version = s.service_version AND c.event_type = s.event_type AND c.name = s.name
  AND c.os = s.os AND c.arch = s.arch AND c.ci = s.ci AND c.success IS NOT DISTINCT FROM s.success
  AND c.error_kind IS NOT DISTINCT FROM s.error_kind;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE daily_event_counts DROP COLUMN first_at, DROP COLUMN last_at;
