-- +goose Up

-- daily_flag_counts gains the platform (os, arch, ci), so that the flags
-- questions filtered by OS or CI ("does anyone on Windows use --watch?")
-- are answered from it. Its rows stay capped per project and day
-- (Caps.FlagRows). The rows are counted again from the events, each value
-- the caps had folded staying folded, in shard 0.
ALTER TABLE daily_flag_counts
    ADD COLUMN os   text    NOT NULL DEFAULT '',
    ADD COLUMN arch text    NOT NULL DEFAULT '',
    ADD COLUMN ci   boolean NOT NULL DEFAULT false;
DROP INDEX daily_flag_counts_key;
DELETE FROM daily_flag_counts;
-- The admitted rows of the old form no longer name rows.
DELETE FROM rollup_values WHERE dim = 8;
DELETE FROM rollup_value_counts WHERE dim = 8;

-- tk_folded: see 00014_event_counts_go_version.sql.
-- +goose StatementBegin
WITH f AS (
    SELECT e.project_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.service_name, e.service_version,
           e.name AS command, e.os, e.arch, e.ci, e.user_id, x.flag,
           CASE WHEN jsonb_typeof(e.metadata->'flag_values'->x.flag) = 'string'
                 AND char_length(e.metadata->'flag_values'->>x.flag) BETWEEN 1 AND 64
                THEN e.metadata->'flag_values'->>x.flag END AS value
    FROM events e
    CROSS JOIN LATERAL (
        SELECT t.elem #>> '{}' AS flag
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.metadata->'flags') = 'array'
                                       THEN e.metadata->'flags' ELSE '[]' END) WITH ORDINALITY AS t(elem, ord)
        WHERE jsonb_typeof(t.elem) = 'string' AND char_length(t.elem #>> '{}') BETWEEN 1 AND 64
        GROUP BY 1
        ORDER BY min(t.ord)
        LIMIT 32
    ) x
    WHERE e.event_type = 'command_executed'
)
INSERT INTO daily_flag_counts (project_id, day, service_name, service_version, command, flag, value, os, arch, ci,
                               shard, events, users)
SELECT f.project_id, f.day,
       CASE WHEN s.folded THEN '(other)' ELSE f.service_name END,
       CASE WHEN v.folded THEN '(other)' ELSE f.service_version END,
       CASE WHEN n.folded THEN '(other)' ELSE f.command END,
       CASE WHEN fl.folded THEN '(other)' ELSE f.flag END,
       CASE WHEN fl.folded OR f.value IS NULL THEN NULL WHEN fv.folded THEN '(other)' ELSE f.value END,
       f.os, f.arch, f.ci, 0, count(*), hll_add_agg(hll_hash_bytea(f.user_id))
FROM f
CROSS JOIN LATERAL tk_folded(f.project_id, f.day, 1, f.service_name) s
CROSS JOIN LATERAL tk_folded(f.project_id, f.day, 2, f.service_version) v
CROSS JOIN LATERAL tk_folded(f.project_id, f.day, 4, 'command_executed' || chr(31) || f.command) n
CROSS JOIN LATERAL tk_folded(f.project_id, f.day, 5, f.flag) fl
CROSS JOIN LATERAL tk_folded(f.project_id, f.day, 6, f.flag || chr(31) || f.value) fv
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
-- +goose StatementEnd

DROP FUNCTION tk_folded;

CREATE UNIQUE INDEX daily_flag_counts_key ON daily_flag_counts
    (project_id, day, service_name, service_version, command, flag, value, os, arch, ci, shard) NULLS NOT DISTINCT;

-- +goose Down
DROP INDEX daily_flag_counts_key;
DELETE FROM rollup_values WHERE dim = 8;
DELETE FROM rollup_value_counts WHERE dim = 8;
-- +goose StatementBegin
WITH rows AS (
    DELETE FROM daily_flag_counts RETURNING *
)
INSERT INTO daily_flag_counts (project_id, day, service_name, service_version, command, flag, value, shard, events,
                               users)
SELECT project_id, day, service_name, service_version, command, flag, value, 0, sum(events), hll_union_agg(users)
FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7;
-- +goose StatementEnd
ALTER TABLE daily_flag_counts DROP COLUMN os, DROP COLUMN arch, DROP COLUMN ci;
CREATE UNIQUE INDEX daily_flag_counts_key ON daily_flag_counts
    (project_id, day, service_name, service_version, command, flag, value, shard) NULLS NOT DISTINCT;
