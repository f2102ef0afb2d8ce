package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// ingestSQL inserts a batch and updates the rollups from the rows it
// inserted, in one statement (one transaction). Rows are inserted in
// event_id order and rollup rows in key order, so that concurrent batches
// take their locks in the same order; counter rows are sharded by backend
// so that concurrent batches rarely wait for each other's commit.
const ingestSQL = `
WITH input AS (
    SELECT * FROM unnest(
        $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::boolean[], $9::bigint[], $10::integer[], $11::text[], $12::bytea[], $13::uuid[],
        $14::text[], $15::text[], $16::text[], $17::text[], $18::boolean[], $19::text[], $20::text[],
        $21::text[]
    ) AS t(event_id, occurred_at, service_name, service_version, event_type, name,
           success, duration_ms, exit_code, error_kind, user_id, session_id,
           sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata)
), ins AS (
    INSERT INTO events (project_id, event_id, occurred_at, service_name, service_version, event_type, name,
                        success, duration_ms, exit_code, error_kind, user_id, session_id,
                        sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata)
    SELECT $1::integer, event_id, occurred_at, service_name, service_version, event_type, name,
           success, duration_ms, exit_code, error_kind, user_id, session_id,
           sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata::jsonb
    FROM input
    ORDER BY event_id
    ON CONFLICT (project_id, event_id) DO NOTHING
    RETURNING occurred_at, service_name, service_version, event_type, name, success, duration_ms, user_id
), counts AS (
    INSERT INTO daily_event_counts AS c (project_id, day, service_name, service_version, event_type, name,
                                         success, shard, events, duration_ms_sum, duration_count)
    SELECT $1::integer, (occurred_at AT TIME ZONE 'UTC')::date AS day, service_name, service_version, event_type, name,
           success, (pg_backend_pid() % 16)::smallint, count(*), coalesce(sum(duration_ms), 0), count(duration_ms)
    FROM ins
    GROUP BY 2, 3, 4, 5, 6, 7
    ORDER BY 2, 3, 4, 5, 6, 7
    ON CONFLICT (project_id, day, service_name, service_version, event_type, name, success, shard)
    DO UPDATE SET events = c.events + excluded.events,
                  duration_ms_sum = c.duration_ms_sum + excluded.duration_ms_sum,
                  duration_count = c.duration_count + excluded.duration_count
), users AS (
    INSERT INTO daily_users (project_id, day, service_name, user_id)
    SELECT DISTINCT $1::integer, (occurred_at AT TIME ZONE 'UTC')::date AS day, service_name, user_id
    FROM ins
    ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING
), loss AS (
    INSERT INTO daily_data_loss AS l (project_id, day, dropped)
    SELECT $1::integer, (now() AT TIME ZONE 'UTC')::date, $22::bigint
    WHERE $22::bigint > 0 AND (EXISTS (SELECT 1 FROM ins) OR cardinality($2::uuid[]) = 0)
    ON CONFLICT (project_id, day) DO UPDATE SET dropped = l.dropped + excluded.dropped
)
SELECT count(*) FROM ins`

// Ingest stores events for a project exactly once and updates the rollups
// and the data-loss counter in the same transaction. It returns after the
// commit.
//
// dropped is added to the data-loss counter only when the batch stored at
// least one new event or held none: a batch made only of duplicates is a
// replay of one already counted.
func (db *DB) Ingest(ctx context.Context, projectID int64, events []server.Event, dropped int64) (server.IngestResult, error) {
	args := ingestArgs(projectID, events, dropped)
	var inserted int
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = db.pool.QueryRow(ctx, ingestSQL, args...).Scan(&inserted)
		if err == nil {
			return server.IngestResult{Accepted: inserted, Duplicates: len(events) - inserted}, nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			break
		}
		switch {
		case pgErr.Code == "40P01" || pgErr.Code == "40001":
			// Deadlock or serialization failure: nothing was committed.
			continue
		case pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition"):
			// A partition is missing (maintenance has not run yet).
			if _, merr := db.Maintain(ctx); merr != nil {
				return server.IngestResult{}, fmt.Errorf("postgres: ingest: %w (creating partitions: %v)", err, merr)
			}
			continue
		}
		break
	}
	return server.IngestResult{}, fmt.Errorf("postgres: ingest: %w", err)
}

func ingestArgs(projectID int64, evs []server.Event, dropped int64) []any {
	n := len(evs)
	var (
		ids        = make([][16]byte, n)
		occurred   = make([]time.Time, n)
		svc        = make([]string, n)
		ver        = make([]string, n)
		typ        = make([]string, n)
		name       = make([]string, n)
		success    = make([]*bool, n)
		duration   = make([]*int64, n)
		exitCode   = make([]*int32, n)
		errKind    = make([]*string, n)
		users      = make([][]byte, n)
		sessions   = make([][16]byte, n)
		sdkName    = make([]string, n)
		sdkVersion = make([]string, n)
		osName     = make([]string, n)
		arch       = make([]string, n)
		ci         = make([]bool, n)
		ciName     = make([]string, n)
		goVersion  = make([]string, n)
		metadata   = make([]string, n)
	)
	for i := range evs {
		e := &evs[i]
		ids[i] = e.EventID
		occurred[i] = e.Timestamp
		svc[i] = e.ServiceName
		ver[i] = e.ServiceVersion
		typ[i] = e.EventType
		name[i] = e.Name
		success[i] = e.Success
		duration[i] = e.DurationMS
		exitCode[i] = e.ExitCode
		errKind[i] = e.ErrorKind
		users[i] = e.UserID[:]
		sessions[i] = e.SessionID
		sdkName[i] = e.SDKName
		sdkVersion[i] = e.SDKVersion
		osName[i] = e.OS
		arch[i] = e.Arch
		ci[i] = e.CI
		ciName[i] = e.CIName
		goVersion[i] = e.GoVersion
		metadata[i] = string(e.Metadata)
	}
	return []any{projectID, ids, occurred, svc, ver, typ, name, success, duration, exitCode, errKind,
		users, sessions, sdkName, sdkVersion, osName, arch, ci, ciName, goVersion, metadata, dropped}
}
