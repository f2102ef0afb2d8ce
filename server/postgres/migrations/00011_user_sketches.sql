-- +goose Up

-- Distinct users as HyperLogLog sketches (the hll extension,
-- github.com/citusdata/postgresql-hll) in each row of the two counting
-- rollups, so that the query API counts users by any of their dimensions
-- and over any range of days by merging the sketches of the rows it reads
-- (hll_union_agg) instead of reading the events. A sketch holds the users
-- exactly up to about 160 of them and estimates beyond (standard error
-- 2.3% at the default log2m 11); merging is exact, so shards and retries
-- never count a user twice. Ingest adds each row's users with hll_union.
CREATE EXTENSION IF NOT EXISTS hll;

ALTER TABLE daily_event_counts ADD COLUMN users hll NOT NULL DEFAULT hll_empty();
ALTER TABLE daily_flag_counts ADD COLUMN users hll NOT NULL DEFAULT hll_empty();

-- The rows stored before are counted again from the events, sketches
-- included, by 00014 (daily_event_counts) and 00017 (daily_flag_counts).

-- +goose Down
ALTER TABLE daily_flag_counts DROP COLUMN users;
ALTER TABLE daily_event_counts DROP COLUMN users;
