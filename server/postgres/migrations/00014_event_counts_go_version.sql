-- +goose Up

-- daily_event_counts gains the Go version the tool was built with, so that
-- the query API answers the Go versions question from it. A release is
-- built with one Go version, so the column adds rows only for the users
-- who build the tool themselves; the rows stay capped per project and day
-- (Caps.EventRows). The rows are counted again from the events, each
-- value the caps had folded staying folded, in shard 0.
ALTER TABLE daily_event_counts ADD COLUMN go_version text NOT NULL DEFAULT '';
DROP INDEX daily_event_counts_key;
DELETE FROM daily_event_counts;
-- The admitted rows of the old form no longer name rows: new events admit
-- their rows again.
DELETE FROM rollup_values WHERE dim = 7;
DELETE FROM rollup_value_counts WHERE dim = 7;

-- +goose StatementBegin
WITH kept AS (
    SELECT project_id, day, dim, value FROM rollup_values WHERE dim IN (1, 2, 3, 4)
)
INSERT INTO daily_event_counts (project_id, day, service_name, service_version, event_type, name, os, arch, ci,
                                go_version, success, error_kind, shard, events, duration_ms_sum, duration_count,
                                users, durations, first_at, last_at)
SELECT e.project_id, e.day,
       CASE WHEN s.value IS NULL THEN '(other)' ELSE e.service_name END,
       CASE WHEN v.value IS NULL THEN '(other)' ELSE e.service_version END,
       CASE WHEN t.value IS NULL THEN '(other)' ELSE e.event_type END,
       CASE WHEN t.value IS NULL OR n.value IS NULL THEN '(other)' ELSE e.name END,
       e.os, e.arch, e.ci, e.go_version, e.success, e.error_kind, 0,
       count(*), coalesce(sum(e.duration_ms), 0), count(e.duration_ms),
       hll_add_agg(hll_hash_bytea(e.user_id)), tdigest(e.duration_ms::float8, 100),
       min(e.occurred_at), max(e.occurred_at)
FROM (SELECT *, (occurred_at AT TIME ZONE 'UTC')::date AS day FROM events) e
LEFT JOIN kept s ON s.project_id = e.project_id AND s.day = e.day AND s.dim = 1 AND s.value = e.service_name
LEFT JOIN kept v ON v.project_id = e.project_id AND v.day = e.day AND v.dim = 2 AND v.value = e.service_version
LEFT JOIN kept t ON t.project_id = e.project_id AND t.day = e.day AND t.dim = 3 AND t.value = e.event_type
LEFT JOIN kept n ON n.project_id = e.project_id AND n.day = e.day AND n.dim = 4
                 AND n.value = e.event_type || chr(31) || e.name
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;
-- +goose StatementEnd

CREATE UNIQUE INDEX daily_event_counts_key ON daily_event_counts
    (project_id, day, service_name, service_version, event_type, name, os, arch, ci, go_version, success, error_kind,
     shard)
    NULLS NOT DISTINCT;

-- +goose Down
DROP INDEX daily_event_counts_key;
DELETE FROM rollup_values WHERE dim = 7;
DELETE FROM rollup_value_counts WHERE dim = 7;
-- +goose StatementBegin
WITH rows AS (
    DELETE FROM daily_event_counts RETURNING *
)
INSERT INTO daily_event_counts (project_id, day, service_name, service_version, event_type, name, os, arch, ci,
                                success, error_kind, shard, events, duration_ms_sum, duration_count, users, durations,
                                first_at, last_at)
SELECT project_id, day, service_name, service_version, event_type, name, os, arch, ci, success, error_kind, 0,
       sum(events), sum(duration_ms_sum), sum(duration_count), hll_union_agg(users), tdigest(durations),
       min(first_at), max(last_at)
FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
-- +goose StatementEnd
ALTER TABLE daily_event_counts DROP COLUMN go_version;
CREATE UNIQUE INDEX daily_event_counts_key ON daily_event_counts
    (project_id, day, service_name, service_version, event_type, name, os, arch, ci, success, error_kind, shard)
    NULLS NOT DISTINCT;
