package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// Period rollups.
//
// The questions by command, feature and method read period_counts: a row
// per closed day, ISO week or month and key (service, version, type, name,
// OS, arch, CI), with events, outcomes, durations, users and first and
// last times. A question over a range reads the whole months in it from
// the month rows, the whole weeks of what is left from the week rows, the
// rest from the day rows, and the days not built yet (yesterday and
// today) from daily_event_counts.
//
// The rows are exact: BuildPeriods makes a period's rows from shard 0 of
// daily_event_counts, which only the compaction writes (ingest writes
// shards 1–16), once every day of the period is closed; the compaction,
// when it merges late rows of such a day into shard 0, adds them to the
// day's, week's and month's rows in the same transaction; and until it
// has, a question reads those rows of shards 1–16 beside the periods.
// A lock per project serialises the builder and the compactions.

// periodLockClass is the first key of the advisory lock (the project its
// second) that serialises building a project's periods and compacting
// its days.
const periodLockClass = 0x746b7064 // "tkpd"

// lockPeriods takes the period lock of project for tx's transaction and
// returns the last day whose periods are built, zero when none is.
func lockPeriods(ctx context.Context, tx pgx.Tx, project int64) (time.Time, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(periodLockClass), int32(project)); err != nil {
		return time.Time{}, err
	}
	return builtThrough(ctx, tx, project)
}

// builtThrough returns the last day whose periods are built for project,
// zero when none is.
func builtThrough(ctx context.Context, tx pgx.Tx, project int64) (time.Time, error) {
	var d time.Time
	err := tx.QueryRow(ctx, `SELECT built_through FROM period_rollups WHERE project_id = $1`, project).Scan(&d)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return d, err
}

// periodRollup is one rollup of periods: its table, key columns (but
// the project, period and start) and value columns, and how its values
// aggregate from rows of daily_event_counts and from its own rows, merge
// in an upsert (of c and excluded), and read from a row of
// daily_event_counts.
type periodRollup struct {
	table, daily, key, values      string
	fromCounts, fromPeriods, merge string
	counts                         string
	// What questions read of it (see periodSource): dimensions and
	// metrics besides the time, events and users, the event type's
	// column, and whether it has a row per flag.
	dims      map[server.Dimension]string
	metrics   map[server.Metric]string
	eventType string
	flagRows  bool
}

// periodCounts is period_counts: events, outcomes, durations, users and
// first and last times.
var periodCounts = periodRollup{
	table:  "period_counts",
	daily:  "daily_event_counts",
	key:    "service_name, service_version, event_type, name, os, arch, ci",
	values: "events, successes, outcomes, duration_ms_sum, duration_count, users, durations, first_at, last_at",
	fromCounts: `least(sum(events), ` + maxInt8 + `)::bigint,
    least(coalesce(sum(events) FILTER (WHERE success), 0), ` + maxInt8 + `)::bigint,
    least(coalesce(sum(events) FILTER (WHERE success IS NOT NULL), 0), ` + maxInt8 + `)::bigint,
    least(sum(duration_ms_sum), ` + maxInt8 + `)::bigint, least(sum(duration_count), ` + maxInt8 + `)::bigint,
    hll_union_agg(users), tdigest(durations), min(first_at), max(last_at)`,
	fromPeriods: `least(sum(events), ` + maxInt8 + `)::bigint, least(sum(successes), ` + maxInt8 + `)::bigint,
    least(sum(outcomes), ` + maxInt8 + `)::bigint, least(sum(duration_ms_sum), ` + maxInt8 + `)::bigint,
    least(sum(duration_count), ` + maxInt8 + `)::bigint, hll_union_agg(users), tdigest(durations), min(first_at),
    max(last_at)`,
	merge: `events = tk_add(c.events, excluded.events), successes = tk_add(c.successes, excluded.successes),
    outcomes = tk_add(c.outcomes, excluded.outcomes), duration_ms_sum = tk_add(c.duration_ms_sum, excluded.duration_ms_sum),
    duration_count = tk_add(c.duration_count, excluded.duration_count), users = hll_union(c.users, excluded.users),
    durations = CASE WHEN excluded.durations IS NULL THEN c.durations WHEN c.durations IS NULL THEN excluded.durations
                     ELSE tdigest_union(c.durations, excluded.durations) END,
    first_at = least(c.first_at, excluded.first_at), last_at = greatest(c.last_at, excluded.last_at)`,
	counts: `events, CASE WHEN success THEN events ELSE 0 END, CASE WHEN success IS NULL THEN 0 ELSE events END,
    duration_ms_sum, duration_count, users, durations, first_at, last_at`,
	dims:      periodDims,
	metrics:   periodMetrics,
	eventType: "c.event_type",
}

// periodErrors is period_error_counts: events and users by error kind.
var periodErrors = periodRollup{
	table:       "period_error_counts",
	daily:       "daily_event_counts",
	key:         periodCounts.key + ", error_kind",
	values:      "events, users",
	fromCounts:  `least(sum(events), ` + maxInt8 + `)::bigint, hll_union_agg(users)`,
	fromPeriods: `least(sum(events), ` + maxInt8 + `)::bigint, hll_union_agg(users)`,
	merge:       `events = tk_add(c.events, excluded.events), users = hll_union(c.users, excluded.users)`,
	counts:      "events, users",
	dims:        errorDims,
	metrics:     map[server.Metric]string{},
	eventType:   "c.event_type",
}

// periodFlags is period_flag_counts: the command runs that set each
// flag (or a flag to a value), and their users.
var periodFlags = periodRollup{
	table:       "period_flag_counts",
	daily:       "daily_flag_counts",
	key:         "service_name, service_version, command, flag, value, os, arch, ci",
	values:      periodErrors.values,
	fromCounts:  periodErrors.fromCounts,
	fromPeriods: periodErrors.fromPeriods,
	merge:       periodErrors.merge,
	counts:      periodErrors.counts,
	dims:        flagsSource.dims,
	metrics:     map[server.Metric]string{},
	eventType:   flagsSource.eventType,
	flagRows:    true,
}

// periodRollups are the rollups of periods, built and compacted together.
var periodRollups = []periodRollup{periodCounts, periodErrors, periodFlags}

// BuildPeriods builds the period rows of every project up to the last
// closed day (the day before yesterday, UTC, as for the compaction): the
// days after the last built one, and the weeks and months that end among
// them. It returns how many days it built. It is safe to run from several
// servers at once, and alongside ingest and compaction.
func (db *DB) BuildPeriods(ctx context.Context) (int, error) {
	closed := db.cfg.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	return db.eachProject(ctx, "periods", func(tx pgx.Tx, project int64) (int, error) {
		return buildPeriods(ctx, tx, project, closed)
	})
}

// eachProject calls fn for every project, each in a transaction of its
// own, and returns the sum of what the calls return.
func (db *DB) eachProject(ctx context.Context, what string, fn func(tx pgx.Tx, project int64) (int, error)) (int, error) {
	rows, err := db.pool.Query(ctx, `SELECT id FROM projects ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", what, err)
	}
	projects, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", what, err)
	}
	n := 0
	for _, p := range projects {
		var done int
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var err error
			done, err = fn(tx, p)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("postgres: %s of project %d: %w", what, p, err)
		}
		n += done
	}
	return n, nil
}

// buildPeriods builds project's periods through the day closed, and
// returns how many days that was.
func buildPeriods(ctx context.Context, tx pgx.Tx, project int64, closed time.Time) (int, error) {
	bt, err := lockPeriods(ctx, tx, project)
	if err != nil {
		return 0, err
	}
	if bt.IsZero() {
		// The first build starts from the first day with rows.
		var first *time.Time
		if err := tx.QueryRow(ctx, `SELECT min(day) FROM daily_event_counts WHERE project_id = $1`, project).
			Scan(&first); err != nil {
			return 0, err
		}
		if first == nil || first.After(closed) {
			bt = closed
		} else {
			bt = first.AddDate(0, 0, -1)
		}
	}
	if !bt.Before(closed) {
		_, err := tx.Exec(ctx, `INSERT INTO period_rollups (project_id, built_through) VALUES ($1, $2::date)
    ON CONFLICT (project_id) DO NOTHING`, project, bt.Format(time.DateOnly))
		return 0, err
	}
	from := bt.AddDate(0, 0, 1)
	// The weeks and months that end in [from, closed].
	weeks, weeksEnd := mondayOf(from), lastSunday(closed)
	months, monthsEnd := monthStart(from), monthStart(closed.AddDate(0, 0, 1)).AddDate(0, 0, -1)
	date := func(t time.Time) string { return t.Format(time.DateOnly) }
	for _, pr := range periodRollups {
		steps := []struct {
			period   string
			from, to time.Time
			sql      string
		}{
			{"d", from, closed, `SELECT project_id, 'd', day, ` + pr.key + `, ` + pr.fromCounts + `
    FROM ` + pr.daily + ` WHERE project_id = $1 AND day BETWEEN $2::date AND $3::date AND shard = 0
    GROUP BY project_id, day, ` + pr.key},
			{"w", weeks, weeksEnd, `SELECT project_id, 'w', date_trunc('week', start)::date, ` + pr.key + `, ` + pr.fromPeriods + `
    FROM ` + pr.table + ` WHERE project_id = $1 AND period = 'd' AND start BETWEEN $2::date AND $3::date
    GROUP BY project_id, date_trunc('week', start)::date, ` + pr.key},
			{"m", months, monthsEnd, `SELECT project_id, 'm', date_trunc('month', start)::date, ` + pr.key + `, ` + pr.fromPeriods + `
    FROM ` + pr.table + ` WHERE project_id = $1 AND period = 'd' AND start BETWEEN $2::date AND $3::date
    GROUP BY project_id, date_trunc('month', start)::date, ` + pr.key},
		}
		for _, s := range steps {
			if s.to.Before(s.from) {
				continue
			}
			// Rows of these periods can only be left by a build that a
			// retention prune cut short: they are made anew.
			if _, err := tx.Exec(ctx, `DELETE FROM `+pr.table+` WHERE project_id = $1 AND period = $2
    AND start BETWEEN $3::date AND $4::date`, project, s.period, date(s.from), date(s.to)); err != nil {
				return 0, err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+pr.table+` (project_id, period, start, `+pr.key+`, `+pr.values+`)
`+s.sql, project, date(s.from), date(s.to)); err != nil {
				return 0, fmt.Errorf("build the %s rows of %s: %w", s.period, pr.table, err)
			}
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO period_rollups (project_id, built_through) VALUES ($1, $2::date)
    ON CONFLICT (project_id) DO UPDATE SET built_through = excluded.built_through`, project, date(closed))
	return int(closed.Sub(bt) / (24 * time.Hour)), err
}

// compactInto is the part of the compaction statement of pr.daily (see
// compaction.statement) that adds the rows it merges (gone) to pr's rows of their day, week and month that are built
// ($3, the last built day; null when none is).
func (pr periodRollup) compactInto() string {
	return `INSERT INTO ` + pr.table + ` AS c (project_id, period, start, ` + pr.key + `, ` + pr.values + `)
SELECT project_id, p.period, p.start, ` + pr.key + `, ` + pr.fromCounts + `
FROM gone CROSS JOIN LATERAL (VALUES ('d'::"char", gone.day), ('w', date_trunc('week', gone.day)::date),
                                     ('m', date_trunc('month', gone.day)::date)) AS p(period, start)
WHERE CASE p.period WHEN 'd' THEN p.start WHEN 'w' THEN p.start + 6
      ELSE (p.start + interval '1 month')::date - 1 END <= $3::date
GROUP BY project_id, p.period, p.start, ` + pr.key + `
ORDER BY project_id, p.period, p.start, ` + pr.key + `
ON CONFLICT (project_id, period, start, ` + pr.key + `) DO UPDATE SET ` + pr.merge
}

// periodPieces returns the periods whose rows answer the days of [from,
// to] up to builtThrough and from floor (the first day the retention
// keeps) on, each within one bucket of the time dimension: whole months
// (unless by week or day), then whole weeks of what is left (unless by
// day; within one month unless by week), then days.
func periodPieces(from, to, builtThrough, floor time.Time, timeDim server.Dimension) (months, weeks, days []time.Time) {
	if from.Before(floor) {
		from = floor
	}
	if to.After(builtThrough) {
		to = builtThrough
	}
	useMonths := timeDim != server.DimWeek && timeDim != server.DimDay
	for t := from; !t.After(to); {
		if useMonths && t.Day() == 1 && !t.AddDate(0, 1, -1).After(to) {
			months = append(months, t)
			t = t.AddDate(0, 1, 0)
			continue
		}
		if end := t.AddDate(0, 0, 6); timeDim != server.DimDay && t.Weekday() == time.Monday && !end.After(to) &&
			(timeDim == server.DimWeek || end.Month() == t.Month()) {
			weeks = append(weeks, t)
			t = end.AddDate(0, 0, 1)
			continue
		}
		days = append(days, t)
		t = t.AddDate(0, 0, 1)
	}
	return months, weeks, days
}

// retentionFloor is the first day whose rollup rows the retention keeps.
func (db *DB) retentionFloor() time.Time {
	return db.cfg.Now().UTC().Add(-db.cfg.Retention).Truncate(24 * time.Hour)
}

// mondayOf returns the Monday of t's ISO week.
func mondayOf(t time.Time) time.Time {
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
}

// lastSunday returns the last Sunday on or before t.
func lastSunday(t time.Time) time.Time {
	return t.AddDate(0, 0, -int(t.Weekday()))
}
