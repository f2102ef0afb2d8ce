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

-- The rows stored before: the users of each row's events. Every shard of
-- a row gets the row's sketch (a merge counts a user once). The rows the
-- caps counted under "(other)" keep an empty sketch.
-- +goose StatementBegin
WITH s AS (
    SELECT project_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, service_name, service_version, event_type,
           name, os, arch, ci, success, error_kind, hll_add_agg(hll_hash_bytea(user_id)) AS users
    FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)
UPDATE daily_event_counts c SET users = s.users FROM s
WHERE c.project_id = s.project_id AND c.day = s.day AND c.service_name = s.service_name
  AND c.service_version = s.service_version AND c.event_type = s.event_type AND c.name = s.name
  AND c.os = s.os AND c.arch = s.arch AND c.ci = s.ci AND c.success IS NOT DISTINCT FROM s.success
  AND c.error_kind IS NOT DISTINCT FROM s.error_kind;
-- +goose StatementEnd

-- +goose StatementBegin
WITH s AS (
    SELECT e.project_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.service_name, e.service_version,
           e.name AS command, f.flag,
           CASE WHEN jsonb_typeof(e.metadata->'flag_values'->f.flag) = 'string'
                 AND char_length(e.metadata->'flag_values'->>f.flag) BETWEEN 1 AND 64
                THEN e.metadata->'flag_values'->>f.flag END AS value,
           hll_add_agg(hll_hash_bytea(e.user_id)) AS users
    FROM events e
    CROSS JOIN LATERAL (
        SELECT t.elem #>> '{}' AS flag
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.metadata->'flags') = 'array'
                                       THEN e.metadata->'flags' ELSE '[]' END) WITH ORDINALITY AS t(elem, ord)
        WHERE jsonb_typeof(t.elem) = 'string' AND char_length(t.elem #>> '{}') BETWEEN 1 AND 64
        GROUP BY 1
        ORDER BY min(t.ord)
        LIMIT 32
    ) f
    WHERE e.event_type = 'command_executed'
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)
UPDATE daily_flag_counts c SET users = s.users FROM s
WHERE c.project_id = s.project_id AND c.day = s.day AND c.service_name = s.service_name
  AND c.service_version = s.service_version AND c.command = s.command AND c.flag = s.flag
  AND c.value IS NOT DISTINCT FROM s.value;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE daily_flag_counts DROP COLUMN users;
ALTER TABLE daily_event_counts DROP COLUMN users;
