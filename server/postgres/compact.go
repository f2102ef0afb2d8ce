package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Compaction.
//
// Ingest adds to the rollup row of its connection's shard (1–16), so that
// concurrent requests of one busy project do not wait for each other; a
// key of a day so has up to 16 rows, and every question over the rollups
// reads them all. Once a day is closed, few events still arrive for it:
// CompactRollups merges the rows of each key into shard 0, which only it
// writes, so that the rollups hold about one row per key and questions
// read a sixteenth at best. Events that arrive late add rows in their
// shard again, which the next compaction merges (and adds to the built
// periods, see periods.go).

// compaction is how one sharded rollup is compacted: its key columns (the
// unique key but the shard), and for each value column how rows merge in
// an aggregate (agg, over the compacted rows) and in an upsert (merge, of
// the row c and excluded).
type compaction struct {
	table string
	key   string
	cols  []mergedCol
	// periods: the rows merged into shard 0 are added to the built
	// periods (see periods.go).
	periods bool
}

type mergedCol struct{ name, agg, merge string }

const maxInt8 = "9223372036854775807"

// sumCol adds a bigint column up, saturating as tk_add does.
func sumCol(name string) mergedCol {
	return mergedCol{name, "least(sum(" + name + "), " + maxInt8 + ")::bigint", "tk_add(c." + name + ", excluded." + name + ")"}
}

var compactions = []compaction{
	{
		table: "daily_event_counts",
		key:   "project_id, day, service_name, service_version, event_type, name, os, arch, ci, go_version, success, error_kind",
		cols: []mergedCol{
			sumCol("events"), sumCol("duration_ms_sum"), sumCol("duration_count"),
			{"users", "hll_union_agg(users)", "hll_union(c.users, excluded.users)"},
			{"durations", "tdigest(durations)", "CASE WHEN excluded.durations IS NULL THEN c.durations " +
				"ELSE tdigest_union(c.durations, excluded.durations) END"},
			{"first_at", "min(first_at)", "least(c.first_at, excluded.first_at)"},
			{"last_at", "max(last_at)", "greatest(c.last_at, excluded.last_at)"},
		},
		periods: true,
	},
	{
		table: "daily_platform_counts",
		key:   "project_id, day, service_name, service_version, os, arch, ci, go_version",
		cols: []mergedCol{
			sumCol("events"), sumCol("successes"), sumCol("outcomes"), sumCol("duration_ms_sum"),
			sumCol("duration_count"),
			{"users", "hll_union_agg(users)", "hll_union(c.users, excluded.users)"},
		},
	},
	{
		table: "daily_flag_counts",
		key:   "project_id, day, service_name, service_version, command, flag, value, os, arch, ci",
		cols: []mergedCol{
			sumCol("events"),
			{"users", "hll_union_agg(users)", "hll_union(c.users, excluded.users)"},
		},
		periods: true,
	},
	{
		table: "daily_folds",
		key:   "project_id, day, dimension",
		cols:  []mergedCol{sumCol("events")},
	},
}

// statement returns the statement that compacts the rows of one project
// ($1) and day ($2): it deletes the rows of the shards but 0 and adds
// them to the key's row of shard 0. The rows it deletes stay locked until
// it commits: an ingest that adds to one of them then finds it gone and
// inserts a new row, so nothing is lost.
func (c compaction) statement() string {
	var names, aggs, merges string
	for i, col := range c.cols {
		sep := ", "
		if i == 0 {
			sep = ""
		}
		names += sep + col.name
		aggs += sep + col.agg
		merges += sep + col.name + " = " + col.merge
	}
	// The rows merged into shard 0 are added to the built periods first,
	// in data-modifying CTEs over the same deleted rows.
	sql := `WITH gone AS (
    DELETE FROM %[1]s WHERE project_id = $1 AND day = $2::date AND shard <> 0 RETURNING *
)`
	if c.periods {
		for i, pr := range periodRollups {
			if pr.daily == c.table {
				sql += fmt.Sprintf(", period%d AS (\n%s\n)", i, pr.compactInto())
			}
		}
	}
	sql += `
INSERT INTO %[1]s AS c (%[2]s, shard, %[3]s)
SELECT %[2]s, 0, %[4]s FROM gone GROUP BY %[2]s ORDER BY %[2]s
ON CONFLICT (%[2]s, shard) DO UPDATE SET %[5]s`
	return fmt.Sprintf(sql, c.table, c.key, names, aggs, merges)
}

// CompactRollups merges the shards of the rollup rows of every day before
// yesterday (UTC) into one row per key, a day and table per transaction.
// It returns how many days it compacted. It is safe to run from several
// servers at once, and alongside ingest.
func (db *DB) CompactRollups(ctx context.Context) (int, error) {
	before := db.cfg.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	n := 0
	for _, c := range compactions {
		rows, err := db.pool.Query(ctx, `SELECT DISTINCT project_id, day FROM `+c.table+
			` WHERE shard <> 0 AND day < $1::date ORDER BY 1, 2`, before)
		if err != nil {
			return n, fmt.Errorf("postgres: compaction: %w", err)
		}
		type projectDay struct {
			Project int64
			Day     time.Time
		}
		days, err := pgx.CollectRows(rows, pgx.RowToStructByPos[projectDay])
		if err != nil {
			return n, fmt.Errorf("postgres: compaction: %w", err)
		}
		stmt := c.statement()
		for _, d := range days {
			err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
				if !c.periods {
					_, err := tx.Exec(ctx, stmt, d.Project, d.Day.Format(time.DateOnly))
					return err
				}
				bt, err := lockPeriods(ctx, tx, d.Project)
				if err != nil {
					return err
				}
				var built *string
				if !bt.IsZero() {
					s := bt.Format(time.DateOnly)
					built = &s
				}
				_, err = tx.Exec(ctx, stmt, d.Project, d.Day.Format(time.DateOnly), built)
				return err
			})
			if err != nil {
				return n, fmt.Errorf("postgres: compaction of %s: %w", c.table, err)
			}
			n++
		}
	}
	return n, nil
}
