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

-- The rows stored before are counted again from the events, digests
-- included, by 00014.

-- +goose Down
ALTER TABLE daily_event_counts DROP COLUMN durations;
