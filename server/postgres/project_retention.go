package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// retentionOf is the storage window of a project whose retention_days is
// days (nil: the server's).
func (db *DB) retentionOf(days *int32) time.Duration {
	if days == nil {
		return db.cfg.Retention
	}
	return min(time.Duration(*days)*24*time.Hour, db.cfg.Retention)
}

// SetRetention sets a project's storage window to days, or back to the
// server's with 0. A window longer than the server's keeps the server's:
// partitions are dropped for all projects at once. The next maintenance
// deletes what lies before the window.
func (db *DB) SetRetention(ctx context.Context, project int64, days int) error {
	var arg any
	if days > 0 {
		arg = days
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE projects SET retention_days = $2 WHERE id = $1`, project, arg)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("project %d: %w", project, ErrNotFound)
		}
		detail, _ := json.Marshal(map[string]int{"days": days})
		return db.audit(ctx, tx, project, commandLine, server.AuditRetention, detail)
	})
	if err != nil {
		return fmt.Errorf("postgres: set retention: %w", err)
	}
	return nil
}

// pruneProjects deletes, for each project with a window shorter than the
// server's, its events and per-day rows of the days before its window, as
// Maintain does for the server's window. It returns the events deleted.
func (db *DB) pruneProjects(ctx context.Context, now time.Time) (int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, retention_days FROM projects
		WHERE retention_days IS NOT NULL AND retention_days * interval '1 day' < $1::interval`, db.cfg.Retention)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" {
		return 0, nil // a database not migrated to its version yet
	}
	if err != nil {
		return 0, err
	}
	type window struct {
		project int64
		days    int32
	}
	windows, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (window, error) {
		var w window
		return w, row.Scan(&w.project, &w.days)
	})
	if err != nil {
		return 0, err
	}
	var deleted int64
	for _, w := range windows {
		oldest := now.Add(-time.Duration(w.days) * 24 * time.Hour)
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM events WHERE project_id = $1 AND occurred_at < $2`, w.project, oldest)
			if err != nil {
				return err
			}
			deleted += tag.RowsAffected()
			pruned, err := pruneRollups(ctx, tx, oldest, w.project)
			if err != nil {
				return err
			}
			if pruned {
				_, err = tx.Exec(ctx, `DELETE FROM retention_built WHERE project_id = $1`, w.project)
			}
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("postgres: prune project %d: %w", w.project, err)
		}
	}
	return deleted, nil
}
