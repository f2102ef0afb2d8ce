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

-- A value was folded when the caps admitted values of its day and
-- dimension but not it; a day the caps never saw keeps every value.
-- +goose StatementBegin
CREATE FUNCTION tk_folded(project integer, d date, dimension integer, v text, OUT folded boolean)
LANGUAGE sql STABLE AS $$
    SELECT v IS NOT NULL
       AND EXISTS (SELECT FROM rollup_value_counts c WHERE c.project_id = project AND c.day = d AND c.dim = dimension)
       AND NOT EXISTS (SELECT FROM rollup_values r
                       WHERE r.project_id = project AND r.day = d AND r.dim = dimension AND r.value = v)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
INSERT INTO daily_event_counts (project_id, day, service_name, service_version, event_type, name, os, arch, ci,
                                go_version, success, error_kind, shard, events, duration_ms_sum, duration_count,
                                users, durations, first_at, last_at)
SELECT e.project_id, e.day,
       CASE WHEN s.folded THEN '(other)' ELSE e.service_name END,
       CASE WHEN v.folded THEN '(other)' ELSE e.service_version END,
       CASE WHEN t.folded THEN '(other)' ELSE e.event_type END,
       CASE WHEN t.folded OR n.folded THEN '(other)' ELSE e.name END,
       e.os, e.arch, e.ci, e.go_version, e.success, e.error_kind, 0,
       count(*), coalesce(sum(e.duration_ms), 0), count(e.duration_ms),
       hll_add_agg(hll_hash_bytea(e.user_id)), tdigest(e.duration_ms::float8, 100),
       min(e.occurred_at), max(e.occurred_at)
FROM (SELECT *, (occurred_at AT TIME ZONE 'UTC')::date AS day FROM events) e
CROSS JOIN LATERAL tk_folded(e.project_id, e.day, 1, e.service_name) s
CROSS JOIN LATERAL tk_folded(e.project_id, e.day, 2, e.service_version) v
CROSS JOIN LATERAL tk_folded(e.project_id, e.day, 3, e.event_type) t
CROSS JOIN LATERAL tk_folded(e.project_id, e.day, 4, e.event_type || chr(31) || e.name) n
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;
-- +goose StatementEnd

CREATE UNIQUE INDEX daily_event_counts_key ON daily_event_counts
    (project_id, day, service_name, service_version, event_type, name, os, arch, ci, go_version, success, error_kind,
     shard)
    NULLS NOT DISTINCT;

-- +goose Down
DROP FUNCTION IF EXISTS tk_folded;
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
