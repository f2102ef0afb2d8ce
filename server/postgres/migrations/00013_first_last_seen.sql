-- +goose Up

-- The first and last event time of each row of daily_event_counts, so that
-- the query API answers first_seen and last_seen ("when was this method
-- last called?") from the rollup. Merged with least and greatest, which a
-- retried request cannot move.
ALTER TABLE daily_event_counts ADD COLUMN first_at timestamptz, ADD COLUMN last_at timestamptz;

-- The rows stored before are counted again from the events, times
-- included, by 00014.

-- +goose Down
ALTER TABLE daily_event_counts DROP COLUMN first_at, DROP COLUMN last_at;
