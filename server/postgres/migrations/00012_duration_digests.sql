-- +goose Up

-- Durations as t-digests (the tdigest extension,
-- github.com/tvondra/tdigest) in each row of daily_event_counts, so that
-- the query API answers duration percentiles (p50, p90, p95, p99) by any
-- of the rollup's dimensions and over any range of days by merging the
-- digests of the rows it reads (tdigest_percentile) instead of reading the
-- events. A digest of compression 100 keeps at most about 200 centroids
-- whatever the number of durations: percentiles are exact for few
-- durations and close estimates beyond (tightest at the tails). NULL: the
-- row has no duration. Ingest merges each row's digest with tdigest_union.
CREATE EXTENSION IF NOT EXISTS tdigest;

ALTER TABLE daily_event_counts ADD COLUMN durations tdigest;

-- +goose StatementBegin
WITH s AS (
    SELECT project_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, service_name, service_version, event_type,
           name, os, arch, ci, success, error_kind, tdigest(duration_ms::float8, 100) AS durations
    FROM events WHERE duration_ms IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
), r AS (
    -- One shard of each row holds its digest, lest merging count its
    -- durations once per shard.
    SELECT DISTINCT ON (project_id, day, service_name, service_version, event_type, name, os, arch, ci, success,
                        error_kind)
           ctid, project_id, day, service_name, service_version, event_type, name, os, arch, ci, success, error_kind
    FROM daily_event_counts
    ORDER BY project_id, day, service_name, service_version, event_type, name, os, arch, ci, success, error_kind, shard
)
UPDATE daily_event_counts c SET durations = s.durations FROM r, s
WHERE c.ctid = r.ctid AND r.project_id = s.project_id AND r.day = s.day AND r.service_name = s.service_name
  AND r.service_version = s.service_version AND r.event_type = s.event_type AND r.name = s.name
  AND r.os = s.os AND r.arch = s.arch AND r.ci = s.ci AND r.success IS NOT DISTINCT FROM s.success
  AND r.error_kind IS NOT DISTINCT FROM s.error_kind;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE daily_event_counts DROP COLUMN durations;
