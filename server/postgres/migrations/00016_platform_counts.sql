-- +goose Up

-- A smaller rollup beside daily_event_counts, without the event's type,
-- name, outcome and error kind: events, outcomes, durations and users per
-- day, service, version, OS, arch, CI and Go version. The questions that
-- need no more (usage, DAU/WAU/MAU, version adoption and shares,
-- platforms, Go versions) read it: a day has a few dozen of its rows
-- where it has thousands of daily_event_counts'. Its rows are the
-- projections of daily_event_counts' (after the caps), so they are capped
-- with them. successes and outcomes count the events whose success is true
-- and those that have one. Sharded, compacted and pruned like the others.
CREATE TABLE daily_platform_counts (
    project_id      integer  NOT NULL,
    day             date     NOT NULL,
    service_name    text     NOT NULL,
    service_version text     NOT NULL,
    os              text     NOT NULL,
    arch            text     NOT NULL,
    ci              boolean  NOT NULL,
    go_version      text     NOT NULL,
    shard           smallint NOT NULL,
    events          bigint   NOT NULL,
    successes       bigint   NOT NULL,
    outcomes        bigint   NOT NULL,
    duration_ms_sum bigint   NOT NULL,
    duration_count  bigint   NOT NULL,
    users           hll      NOT NULL,
    PRIMARY KEY (project_id, day, service_name, service_version, os, arch, ci, go_version, shard)
);

INSERT INTO daily_platform_counts (project_id, day, service_name, service_version, os, arch, ci, go_version, shard,
                                   events, successes, outcomes, duration_ms_sum, duration_count, users)
SELECT project_id, day, service_name, service_version, os, arch, ci, go_version, 0,
       least(sum(events), 9223372036854775807)::bigint,
       least(coalesce(sum(events) FILTER (WHERE success), 0), 9223372036854775807)::bigint,
       least(coalesce(sum(events) FILTER (WHERE success IS NOT NULL), 0), 9223372036854775807)::bigint,
       least(sum(duration_ms_sum), 9223372036854775807)::bigint,
       least(sum(duration_count), 9223372036854775807)::bigint,
       hll_union_agg(users)
FROM daily_event_counts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- +goose Down
DROP TABLE daily_platform_counts;
