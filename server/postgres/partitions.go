package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maintenanceLock is the advisory lock key that serialises maintenance
// between servers sharing a database.
const maintenanceLock = 0x746b6d61696e74 // "tkmaint"

// monthsAhead is how many months after the current one get a partition.
const monthsAhead = 2

// Maintenance says what [DB.Maintain] did.
type Maintenance struct {
	Created []string // partitions created
	Dropped []string // partitions dropped past the retention window
	// ProjectEvents counts the events deleted past the windows of
	// projects whose own window is shorter than the server's.
	ProjectEvents int64
}

// monthStart returns the first instant of t's month in UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// uuidAt returns the smallest UUIDv7 of the millisecond t: a partition
// bound.
func uuidAt(t time.Time) string {
	var u uuid.UUID
	ms := t.UnixMilli()
	for i := 5; i >= 0; i-- {
		u[i] = byte(ms)
		ms >>= 8
	}
	return u.String()
}

func partitionName(m time.Time) string {
	return fmt.Sprintf("events_p%04d_%02d", m.Year(), int(m.Month()))
}

// rollupTables are the tables of rows per day that Maintain prunes with
// the retention window.
var rollupTables = []string{"daily_users", "daily_event_counts", "daily_flag_counts", "daily_data_loss",
	"daily_folds", "rollup_values", "rollup_value_counts", "rollup_additions", "daily_rejections", "weekly_users", "daily_platform_counts", "period_counts",
	"period_error_counts", "period_flag_counts"}

// pruneRollups deletes the rows of rollupTables of the days before oldest,
// of one project, or of all when project is 0. It reports whether it
// deleted rows of weekly_users, which the retention counted ahead counted.
func pruneRollups(ctx context.Context, tx pgx.Tx, oldest time.Time, project int64) (weekly bool, err error) {
	for _, table := range rollupTables {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
			return false, err
		}
		if !exists {
			continue // a database not migrated to its version yet
		}
		cond := `day < ($1::timestamptz AT TIME ZONE 'UTC')::date`
		if table == "weekly_users" {
			// The weeks that end before the window.
			cond = `week < ($1::timestamptz AT TIME ZONE 'UTC')::date - 6`
		}
		if strings.HasPrefix(table, "period_") {
			// Questions read no period that starts before the window
			// (periodPieces).
			cond = `start < ($1::timestamptz AT TIME ZONE 'UTC')::date`
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+cond+` AND ($2 = 0 OR project_id = $2)`, oldest, project)
		if err != nil {
			return false, fmt.Errorf("prune %s: %w", table, err)
		}
		if table == "weekly_users" && tag.RowsAffected() > 0 {
			weekly = true
		}
	}
	return weekly, nil
}

// Maintain creates the monthly events partitions from the oldest month of
// the retention window to [monthsAhead] months ahead, drops the partitions
// that lie wholly before the retention window, and deletes the rollup rows
// of days before it. It is safe to run from several servers at once.
func (db *DB) Maintain(ctx context.Context) (Maintenance, error) {
	var m Maintenance
	now := db.cfg.Now().UTC()
	oldest := now.Add(-db.cfg.Retention)
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(maintenanceLock)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'events'::regclass`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		existing := make(map[string]bool, len(names))
		for _, n := range names {
			existing[n] = true
		}
		end := monthStart(now).AddDate(0, monthsAhead+1, 0)
		for mo := monthStart(oldest); mo.Before(end); mo = mo.AddDate(0, 1, 0) {
			name := partitionName(mo)
			if existing[name] {
				delete(existing, name)
				continue
			}
			sql := fmt.Sprintf(`CREATE TABLE %s PARTITION OF events FOR VALUES FROM ('%s') TO ('%s')`,
				pgx.Identifier{name}.Sanitize(), uuidAt(mo), uuidAt(mo.AddDate(0, 1, 0)))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("create partition %s: %w", name, err)
			}
			m.Created = append(m.Created, name)
		}
		// What is left in existing lies outside the window: drop what is
		// wholly before it.
		for name := range existing {
			var y, mon int
			if _, err := fmt.Sscanf(name, "events_p%04d_%02d", &y, &mon); err != nil {
				continue // not ours
			}
			next := time.Date(y, time.Month(mon), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
			if next.After(oldest) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
				return fmt.Errorf("drop partition %s: %w", name, err)
			}
			m.Dropped = append(m.Dropped, name)
		}
		// The rollups of the days before the window go with their events.
		pruned, err := pruneRollups(ctx, tx, oldest, 0)
		if err != nil {
			return err
		}
		if pruned {
			// The retention counted ahead counted them: count anew.
			if _, err := tx.Exec(ctx, `DELETE FROM retention_built`); err != nil {
				return fmt.Errorf("prune weekly_users: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return Maintenance{}, fmt.Errorf("postgres: maintenance: %w", err)
	}
	if m.ProjectEvents, err = db.pruneProjects(ctx, now); err != nil {
		return m, fmt.Errorf("postgres: maintenance: %w", err)
	}
	for _, n := range m.Created {
		db.log.Info("partition created", "partition", n)
	}
	for _, n := range m.Dropped {
		db.log.Info("partition dropped", "partition", n)
	}
	return m, nil
}

// RunMaintenance calls [DB.Maintain], [DB.CompactRollups],
// [DB.BuildPeriods] and [DB.BuildRetention] every interval until ctx is
// done, logging failures. Zero interval means one hour.
func (db *DB) RunMaintenance(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := db.Maintain(ctx); err != nil && ctx.Err() == nil {
				db.log.Error("maintenance failed", "error", err)
			}
			if n, err := db.CompactRollups(ctx); err != nil && ctx.Err() == nil {
				db.log.Error("rollup compaction failed", "error", err)
			} else if n > 0 {
				db.log.Info("rollups compacted", "days", n)
			}
			if n, err := db.BuildPeriods(ctx); err != nil && ctx.Err() == nil {
				db.log.Error("building the period rollups failed", "error", err)
			} else if n > 0 {
				db.log.Info("period rollups built", "days", n)
			}
			if n, err := db.BuildRetention(ctx); err != nil && ctx.Err() == nil {
				db.log.Error("counting the retention ahead failed", "error", err)
			} else if n > 0 {
				db.log.Info("retention counted ahead", "projects", n)
			}
			if n, err := db.pruneSessions(ctx); err != nil && ctx.Err() == nil {
				db.log.Error("pruning the expired dashboard sessions failed", "error", err)
			} else if n > 0 {
				db.log.Info("expired dashboard sessions deleted", "sessions", n)
			}
			if err := db.pruneErasures(ctx, db.cfg.Retention); err != nil && ctx.Err() == nil {
				db.log.Error("pruning the erasures past the storage window failed", "error", err)
			}
		}
	}
}
