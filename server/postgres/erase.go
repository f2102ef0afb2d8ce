package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// Erasing a user races with ingest of the same user, which this order
// makes safe without holding up ingest for the time the erasure takes:
//
//  1. The tombstone (a row of erasures) is committed. An ingest
//     transaction takes the project's erasure lock shared before it
//     looks for tombstones, and keeps it to its commit (see
//     erasureCheckSQL); one that looks after this commit discards the
//     user's events.
//  2. The erasure lock is taken exclusively and let go at once: this
//     waits for the ingest transactions that may have looked before the
//     tombstone was there, and only for those.
//  3. The user's rows are deleted, none of which can appear again.

// erasureLockClass is the first key of the advisory lock (the project its
// second) that ingest holds shared and an erasure takes exclusively.
const erasureLockClass = 0x746b6572 // "tker"

// commandLine is the actor of what is done with tk-server's commands.
const commandLine = "command line"

// sketchTables are the rollups with a user sketch, and the column that
// says which day or period a row counts.
var sketchTables = []struct{ table, period string }{
	{"daily_event_counts", "day"},
	{"daily_flag_counts", "day"},
	{"daily_platform_counts", "day"},
	{"period_counts", "start"},
	{"period_error_counts", "start"},
	{"period_flag_counts", "start"},
}

// EraseUser implements [server.Rights].
func (db *DB) EraseUser(ctx context.Context, r server.EraseRequest) (server.Erasure, error) {
	now := time.Now()
	before := r.Before
	if before.IsZero() || before.After(now) {
		before = now
	}
	actor := r.Actor
	if actor == "" {
		actor = commandLine
	}
	var e server.Erasure
	// 1. The tombstone.
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if r.ByWriteKey {
			// Serialise the count of today's erasures per project.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(erasureLockClass+1), int32(r.ProjectID)); err != nil {
				return err
			}
			var today int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM erasures WHERE project_id = $1 AND by_write_key
				AND requested_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`, r.ProjectID).Scan(&today); err != nil {
				return err
			}
			if today >= server.WriteKeyErasuresPerDay {
				return server.ErrTooManyErasures
			}
		}
		return tx.QueryRow(ctx, `
			INSERT INTO erasures AS x (project_id, user_hash, erased_before, by_write_key) VALUES ($1, $2, $3, $4)
			ON CONFLICT (project_id, user_hash) DO UPDATE
			SET erased_before = greatest(x.erased_before, excluded.erased_before), requested_at = now(),
			    by_write_key = excluded.by_write_key
			RETURNING erased_before`, r.ProjectID, tombstone(r.UserID), before, r.ByWriteKey).Scan(&e.ErasedBefore)
	})
	if err != nil {
		if errors.Is(err, server.ErrTooManyErasures) {
			return e, err
		}
		return e, fmt.Errorf("postgres: erase user: %w", err)
	}
	// 2. The barrier.
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(erasureLockClass), int32(r.ProjectID))
		return err
	})
	if err != nil {
		return e, fmt.Errorf("postgres: erase user: %w", err)
	}
	// 3. The rows, in one transaction. The days and weeks the user was
	// active say where the events and sketches are. The sketches come
	// last, under the lock that serialises compaction and the periods'
	// build (which move sketches between rows), so that the rollup rows
	// ingest may also update are held only briefly.
	user := r.UserID[:]
	hash := userHash(r.UserID)
	for attempt := 0; ; attempt++ {
		err = db.eraseRows(ctx, r.ProjectID, user, hash, &e)
		var pgErr *pgconn.PgError
		if attempt < 9 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			// A deadlock with ingest, which updates the same rollup rows
			// in its own order: nothing was committed, and the erasure
			// is the same again.
			time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
			continue
		}
		break
	}
	if err != nil {
		return e, fmt.Errorf("postgres: erase user: %w", err)
	}
	detail, _ := json.Marshal(e)
	if err := db.audit(ctx, db.pool, r.ProjectID, actor, server.AuditUserErase, detail); err != nil {
		return e, fmt.Errorf("postgres: erase user: %w", err)
	}
	return e, nil
}

// eraseRows deletes a user's rows and sketch entries in one transaction,
// and sets e's counts.
func (db *DB) eraseRows(ctx context.Context, project int64, user []byte, hash int64, e *server.Erasure) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		e.Events, e.UserRows, e.Sketches = 0, 0, 0
		var days, weeks []time.Time
		if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT day), '{}') FROM daily_users
			WHERE project_id = $1 AND user_id = $2`, project, user).Scan(&days); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT week), '{}') FROM weekly_users
			WHERE project_id = $1 AND user_id = $2`, project, user).Scan(&weeks); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM events e USING unnest($3::date[]) AS d(day)
			WHERE e.project_id = $1 AND e.user_id = $2
			  AND e.occurred_at >= d.day::timestamp AT TIME ZONE 'UTC'
			  AND e.occurred_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'`, project, user, days)
		if err != nil {
			return err
		}
		e.Events = tag.RowsAffected()
		for _, table := range []string{"daily_users", "weekly_users", "retention_users"} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE project_id = $1 AND user_id = $2`, project, user)
			if err != nil {
				return err
			}
			e.UserRows += tag.RowsAffected()
		}
		// The counted retention of those weeks no longer holds: recount.
		if _, err := tx.Exec(ctx, `INSERT INTO retention_late (project_id, week)
			SELECT $1, w FROM unnest($2::date[]) AS w ON CONFLICT DO NOTHING`, project, weeks); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(periodLockClass), int32(project)); err != nil {
			return err
		}
		for _, t := range sketchTables {
			// A day's row, or the day's, week's or month's period.
			tag, err := tx.Exec(ctx, `UPDATE `+t.table+` SET users = tk_sketch_without(users, $2)
				WHERE project_id = $1 AND `+t.period+` IN (SELECT DISTINCT p FROM unnest($3::date[]) AS d(day),
				      LATERAL (VALUES (d.day), (date_trunc('week', d.day)::date), (date_trunc('month', d.day)::date)) AS v(p))
				  AND tk_sketch_has(users, $2)`, project, hash, days)
			if err != nil {
				return err
			}
			e.Sketches += tag.RowsAffected()
		}
		return nil
	})
}

// tombstone is how erasures holds a user: the SHA-256 of the id.
func tombstone(user [32]byte) []byte {
	h := sha256.Sum256(user[:])
	return h[:]
}

// audit adds an entry to a project's audit log.
func (db *DB) audit(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, project int64, actor, action string, detail []byte) error {
	if detail == nil {
		detail = []byte("{}")
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_log (project_id, actor, action, detail) VALUES ($1, $2, $3, $4)`,
		project, actor, action, string(detail))
	return err
}

// AuditLog implements [server.Rights].
func (db *DB) AuditLog(ctx context.Context, project, after int64, limit int) ([]server.AuditEntry, error) {
	return db.auditEntries(ctx, `SELECT id, project_id, at, actor, action, detail::text FROM audit_log
		WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, project, after, limit)
}

// LatestAudit implements [server.Rights].
func (db *DB) LatestAudit(ctx context.Context, project int64, limit int) ([]server.AuditEntry, error) {
	return db.auditEntries(ctx, `SELECT id, project_id, at, actor, action, detail::text FROM audit_log
		WHERE project_id = $1 ORDER BY id DESC LIMIT $2`, project, limit)
}

// auditEntries runs a query of audit_log's columns.
func (db *DB) auditEntries(ctx context.Context, sql string, args ...any) ([]server.AuditEntry, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit log: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (server.AuditEntry, error) {
		var a server.AuditEntry
		var detail string
		err := row.Scan(&a.ID, &a.ProjectID, &a.At, &a.Actor, &a.Action, &detail)
		a.Detail = json.RawMessage(detail)
		return a, err
	})
}

// pruneErasures drops the tombstones older than the storage window: no
// event recorded before them is accepted any more.
func (db *DB) pruneErasures(ctx context.Context, retention time.Duration) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM erasures WHERE erased_before < now() - $1::interval`, retention)
	return err
}

// DeleteProject removes a project: its events, rollups, caps, retention,
// erasures, keys and dashboard sessions' access, every row of every table
// with a project_id column but the audit log, which keeps the project's
// history and gets a last entry. It holds the project's erasure lock
// exclusively, so that no ingest of the project is in flight or starts
// until it commits (then the project's keys are gone). It returns the
// number of rows removed by table, with ErrNotFound when there is no such
// project.
func (db *DB) DeleteProject(ctx context.Context, project int64, actor string) (map[string]int64, error) {
	if actor == "" {
		actor = commandLine
	}
	removed := map[string]int64{}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(erasureLockClass), int32(project)); err != nil {
			return err
		}
		var name string
		if err := tx.QueryRow(ctx, `SELECT name FROM projects WHERE id = $1 FOR UPDATE`, project).Scan(&name); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("project %d: %w", project, ErrNotFound)
			}
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.table_name FROM information_schema.columns c
			JOIN pg_class r ON r.relname = c.table_name AND r.relnamespace = 'public'::regnamespace AND NOT r.relispartition
			WHERE c.table_schema = 'public' AND c.column_name = 'project_id'
			  AND c.table_name NOT IN ('audit_log', 'api_keys', 'dashboard_session_keys')
			ORDER BY 1`)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		// The keys last (sessions go with them).
		for _, table := range append(tables, "dashboard_session_keys", "api_keys") {
			tag, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{table}.Sanitize()+` WHERE project_id = $1`, project)
			if err != nil {
				return err
			}
			if n := tag.RowsAffected(); n > 0 {
				removed[table] = n
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projects WHERE id = $1`, project); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"name": name, "removed": removed})
		return db.audit(ctx, tx, project, actor, server.AuditProjectDelete, detail)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete project: %w", err)
	}
	return removed, nil
}
