-- +goose Up

-- Flag usage: how many runs of a command set a flag, per UTC day and
-- version, and for a flag whose value the author collects, per value.
-- Updated in the same transaction as the events insert, from the events
-- actually inserted, by the rule in docs/server.md ("Rollups"): for each
-- command_executed event, the distinct names in metadata.flags of 1 to 64
-- characters, the first 32 of them, each with its metadata.flag_values
-- string of 1 to 64 characters, if any (else value is NULL). Sharded by
-- database connection like daily_event_counts: readers sum over shard.
CREATE TABLE daily_flag_counts (
    project_id      integer  NOT NULL,
    day             date     NOT NULL, -- UTC day of occurred_at
    service_name    text     NOT NULL,
    service_version text     NOT NULL,
    command         text     NOT NULL, -- events.name of the command_executed event
    flag            text     NOT NULL,
    value           text,
    shard           smallint NOT NULL DEFAULT 0,
    events          bigint   NOT NULL
);
CREATE UNIQUE INDEX daily_flag_counts_key ON daily_flag_counts
    (project_id, day, service_name, service_version, command, flag, value, shard) NULLS NOT DISTINCT;

-- The events stored before this table existed, by the same rule.
INSERT INTO daily_flag_counts (project_id, day, service_name, service_version, command, flag, value, events)
SELECT e.project_id, (e.occurred_at AT TIME ZONE 'UTC')::date, e.service_name, e.service_version, e.name, f.flag,
       CASE WHEN jsonb_typeof(e.metadata->'flag_values'->f.flag) = 'string'
             AND char_length(e.metadata->'flag_values'->>f.flag) BETWEEN 1 AND 64
            THEN e.metadata->'flag_values'->>f.flag END,
       count(*)
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
GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- +goose Down
DROP TABLE daily_flag_counts;
