package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// weeklyDims are the columns of weekly_users that retention filters on.
var weeklyDims = map[server.Dimension]string{
	server.DimService: "w.service_name",
	server.DimVersion: "w.service_version",
	server.DimOS:      "w.os",
	server.DimArch:    "w.arch",
	server.DimCI:      "w.ci",
}

// Retention answers q over project's events: a user's first week is the
// week of their first event that the filters keep, over all the stored
// history, so that a user first seen before the range is never new in it.
// When the filters are on weeklyDims only, the users' weeks come from
// weekly_users instead of the events.
func (db *DB) Retention(ctx context.Context, project int64, q server.RetentionQuery) (server.Retention, error) {
	return db.retention(ctx, project, q, true)
}

// userWeeks is, from act (a row per user and week active, wk), each
// user's weeks in order with the user's first week and the next after
// each.
const userWeeks = `
    SELECT wk, first_value(wk) OVER w AS first, lead(wk) OVER w AS next
    FROM act WINDOW w AS (PARTITION BY user_id ORDER BY wk)
`

// retentionStmt is the statement that answers q from the users' weeks
// (weekly_users when weekly is set, else the events). built is the last
// week counted ahead, zero when there is none: the versions that a
// version filter compares are those counted then and those of the weeks
// after it.
func retentionStmt(project int64, q server.RetentionQuery, weekly bool, built time.Time) stmt {
	var s stmt
	end := q.To.AddDate(0, 0, 7*q.Weeks)
	if weekly {
		s.exprs = weeklyDims
		fmt.Fprintf(&s.sql, `WITH act AS (
    SELECT w.user_id, w.week AS wk
    FROM weekly_users w
    WHERE w.project_id = %s AND w.week < %s::date`, s.projectArg(project), s.arg(end.Format(time.DateOnly)))
		s.versions = fmt.Sprintf(`SELECT DISTINCT wv.service_version FROM weekly_users wv
    WHERE wv.project_id = %s AND wv.week < $%d::date`, s.project, len(s.args))
		if !built.IsZero() {
			// A scan of a few weeks, not of the whole history.
			endArg := len(s.args)
			s.versions = fmt.Sprintf(`SELECT rv.service_version FROM retention_versions rv WHERE rv.project_id = %s
    UNION SELECT DISTINCT wv.service_version FROM weekly_users wv
    WHERE wv.project_id = %s AND wv.week > %s::date AND wv.week < $%d::date`, s.project, s.project,
				s.arg(built.Format(time.DateOnly)), endArg)
		}
	} else {
		fmt.Fprintf(&s.sql, `WITH act AS (
    SELECT e.user_id, date_trunc('week', e.occurred_at AT TIME ZONE 'UTC')::date AS wk
    FROM events e
    WHERE e.project_id = %s AND e.occurred_at < %s`, s.projectArg(project), s.arg(end))
		s.versions = fmt.Sprintf(`SELECT DISTINCT ev.service_version FROM events ev
    WHERE ev.project_id = %s AND ev.occurred_at < $%d`, s.project, len(s.args))
	}
	for _, f := range q.Filters {
		s.sql.WriteString(" AND ")
		s.filter(f, false)
	}
	from, to := s.arg(q.From), s.arg(q.To)
	fmt.Fprintf(&s.sql, `
    GROUP BY 1, 2
), x AS (`+userWeeks+`)
SELECT 'c', first, (wk - first) / 7, count(*)
FROM x
WHERE first BETWEEN %[1]s AND %[2]s AND wk - first < 7 * %[3]s
GROUP BY 2, 3
UNION ALL
SELECT 'a', wk, CASE WHEN first = wk THEN 0 ELSE 1 END, count(*)
FROM x
WHERE wk BETWEEN %[1]s AND %[2]s
GROUP BY 2, 3
UNION ALL
SELECT 'd', wk + 7, 0, count(*)
FROM x
WHERE wk + 7 BETWEEN %[1]s AND %[2]s AND next IS DISTINCT FROM wk + 7
GROUP BY 2`, from, to, s.arg(q.Weeks))

	return s
}

// retention answers q, from the retention counted ahead when ahead is set
// and it can, else from the users' weeks.
func (db *DB) retention(ctx context.Context, project int64, q server.RetentionQuery, ahead bool) (server.Retention, error) {
	weekly := true
	for _, f := range q.Filters {
		if _, ok := weeklyDims[f.Dimension]; !ok {
			weekly = false
		}
	}
	thisWeek := server.Monday(db.cfg.Now())
	cohorts := map[time.Time]*server.Cohort{}
	weeks := map[time.Time]*server.WeekActivity{}
	week := func(t time.Time) *server.WeekActivity {
		w := weeks[t]
		if w == nil {
			w = &server.WeekActivity{Week: t}
			weeks[t] = w
		}
		return w
	}
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		var built time.Time
		if ahead && weekly {
			var err error
			if built, err = retentionBuilt(ctx, tx, project); err != nil {
				return err
			}
		}
		var sql string
		var args []any
		if len(q.Filters) == 0 && !built.IsZero() {
			sql, args = retentionAhead(project, q, built)
		} else {
			s := retentionStmt(project, q, weekly, built)
			sql, args = s.sql.String(), s.args
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind string
			var wk time.Time
			var k int32
			var n int64
			if err := rows.Scan(&kind, &wk, &k, &n); err != nil {
				return err
			}
			wk = wk.UTC()
			switch kind {
			case "c":
				c := cohorts[wk]
				if c == nil {
					c = &server.Cohort{Week: wk}
					cohorts[wk] = c
				}
				for len(c.Active) <= int(k) {
					c.Active = append(c.Active, 0)
				}
				c.Active[k] = n
			case "a":
				w := week(wk)
				w.Active += n
				if k == 0 {
					w.New = n
				} else {
					w.Returning = n
				}
			case "d":
				week(wk).Dormant = n
			}
		}
		return rows.Err()
	})
	if err != nil {
		return server.Retention{}, err
	}
	var res server.Retention
	for wk := q.From; !wk.After(q.To) && !wk.After(thisWeek); wk = wk.AddDate(0, 0, 7) {
		c := server.Cohort{Week: wk}
		if got := cohorts[wk]; got != nil {
			c = *got
		}
		// Every week since the cohort's that has begun has a count.
		n := min(q.Weeks, int(thisWeek.Sub(wk)/(7*24*time.Hour))+1)
		for len(c.Active) < n {
			c.Active = append(c.Active, 0)
		}
		c.Active = c.Active[:n]
		if len(c.Active) > 0 {
			c.Users = c.Active[0]
		}
		res.Cohorts = append(res.Cohorts, c)
		w := server.WeekActivity{Week: wk}
		if got := weeks[wk]; got != nil {
			w = *got
		}
		res.Weeks = append(res.Weeks, w)
	}
	return res, nil
}

// Retention counted ahead.
//
// Without filters, retention is counted from every user's weeks over the
// whole history: 175 thousand of them at 10 million events, too many to
// read for each question. BuildRetention counts ahead, for the weeks up
// to the week before last (built_week), every user's first week
// (retention_users), the cohorts' cells (retention_cells) and each week's
// active, new and dormant users (retention_weeks); a question reads those
// and counts the weeks after built_week from weekly_users. Ingest notes
// in retention_late each week before the current one to which it adds a
// user's week; while such a week is built, questions count from the
// users' weeks alone, and the next build counts anew. The prune of the
// retention window drops what was counted.

// retentionBuilt returns the last week counted ahead for project, zero
// when there is none or a week of it has changed since.
func retentionBuilt(ctx context.Context, tx pgx.Tx, project int64) (time.Time, error) {
	var built *time.Time
	var late bool
	err := tx.QueryRow(ctx, `SELECT r.built_week, EXISTS (SELECT FROM retention_late l
        WHERE l.project_id = r.project_id AND l.week <= r.built_week)
    FROM retention_built r WHERE r.project_id = $1`, project).Scan(&built, &late)
	if errors.Is(err, pgx.ErrNoRows) || late || built == nil {
		return time.Time{}, nil
	}
	return *built, err
}

// retentionAhead is the statement that answers q from the retention
// counted ahead through the week built, and the users' weeks after it:
// rows as the statement from the users' weeks gives.
func retentionAhead(project int64, q server.RetentionQuery, built time.Time) (string, []any) {
	date := func(t time.Time) string { return t.Format(time.DateOnly) }
	end := q.To.AddDate(0, 0, 7*q.Weeks)
	return `WITH l AS (
    SELECT DISTINCT user_id, week FROM weekly_users
    WHERE project_id = $1 AND week >= $2::date AND week < $6::date
), x AS (
    -- Users first seen after the built week have no first week counted.
    SELECT l.week, coalesce(ru.first_week, min(l.week) OVER (PARTITION BY l.user_id)) AS first,
           lead(l.week) OVER (PARTITION BY l.user_id ORDER BY l.week) AS next
    FROM l LEFT JOIN retention_users ru ON ru.project_id = $1 AND ru.user_id = l.user_id
)
SELECT 'c', cohort, k, users FROM retention_cells
WHERE project_id = $1 AND cohort BETWEEN $3::date AND $4::date AND k < $5 AND cohort + 7 * k <= $2::date
UNION ALL
SELECT 'a', week, 0, new FROM retention_weeks WHERE project_id = $1 AND week BETWEEN $3::date AND $4::date
UNION ALL
SELECT 'a', week, 1, active - new FROM retention_weeks WHERE project_id = $1 AND week BETWEEN $3::date AND $4::date
UNION ALL
SELECT 'd', week, 0, dormant FROM retention_weeks WHERE project_id = $1 AND week BETWEEN $3::date AND $4::date
UNION ALL
SELECT 'c', first, (week - first) / 7, count(*) FROM x
WHERE week > $2::date AND first BETWEEN $3::date AND $4::date AND week - first < 7 * $5
GROUP BY 2, 3
UNION ALL
SELECT 'a', week, CASE WHEN first = week THEN 0 ELSE 1 END, count(*) FROM x
WHERE week > $2::date AND week BETWEEN $3::date AND $4::date
GROUP BY 2, 3
UNION ALL
SELECT 'd', week + 7, 0, count(*) FROM x
WHERE week + 7 > $2::date AND week + 7 BETWEEN $3::date AND $4::date AND next IS DISTINCT FROM week + 7
GROUP BY 2`, []any{project, date(built), date(q.From), date(q.To), q.Weeks, date(end)}
}

// BuildRetention counts the retention of every project ahead through the
// week before last (UTC), when that week or one before it has changed
// since the last count. It returns how many projects it counted. It is
// safe to run from several servers at once, and alongside ingest.
func (db *DB) BuildRetention(ctx context.Context) (int, error) {
	built := server.Monday(db.cfg.Now()).AddDate(0, 0, -14)
	return db.eachProject(ctx, "retention", func(tx pgx.Tx, project int64) (int, error) {
		counted, err := buildRetention(ctx, tx, project, built)
		if counted {
			return 1, err
		}
		return 0, err
	})
}

// buildRetention counts project's retention ahead through the week
// built, unless it is counted already and unchanged.
func buildRetention(ctx context.Context, tx pgx.Tx, project int64, built time.Time) (bool, error) {
	if _, err := lockPeriods(ctx, tx, project); err != nil {
		return false, err
	}
	b := built.Format(time.DateOnly)
	var current bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM retention_built WHERE project_id = $1 AND built_week = $2::date)
    AND NOT EXISTS (SELECT FROM retention_late WHERE project_id = $1 AND week <= $2::date)`, project, b).
		Scan(&current); err != nil || current {
		return false, err
	}
	for _, sql := range []string{
		`DELETE FROM retention_users WHERE project_id = $1`,
		`DELETE FROM retention_cells WHERE project_id = $1`,
		`DELETE FROM retention_weeks WHERE project_id = $1`,
		// The weeks changed that this count takes in.
		`DELETE FROM retention_late WHERE project_id = $1 AND week <= $2::date`,
		`DELETE FROM retention_versions WHERE project_id = $1`,
		`INSERT INTO retention_versions (project_id, service_version)
    SELECT DISTINCT $1::integer, service_version FROM weekly_users WHERE project_id = $1 AND week <= $2::date`,
		`INSERT INTO retention_users (project_id, user_id, first_week)
    SELECT $1, user_id, min(week) FROM weekly_users WHERE project_id = $1 AND week <= $2::date GROUP BY user_id`,
		`WITH act AS (
    SELECT DISTINCT user_id, week AS wk FROM weekly_users WHERE project_id = $1 AND week <= $2::date
), x AS (` + userWeeks + `), cells AS (
    INSERT INTO retention_cells (project_id, cohort, k, users)
    SELECT $1, first, (wk - first) / 7, count(*) FROM x
    WHERE wk - first < 7 * ` + fmt.Sprint(server.MaxRetentionWeeks) + ` GROUP BY 2, 3
)
INSERT INTO retention_weeks (project_id, week, active, new, dormant)
SELECT $1, wk, coalesce(a.active, 0), coalesce(a.new, 0), coalesce(d.dormant, 0)
FROM (SELECT wk, count(*) AS active, count(*) FILTER (WHERE first = wk) AS new FROM x GROUP BY wk) a
FULL JOIN (SELECT wk + 7 AS wk, count(*) AS dormant FROM x
           WHERE next IS DISTINCT FROM wk + 7 AND wk + 7 <= $2::date GROUP BY 1) d USING (wk)`,
		`INSERT INTO retention_built (project_id, built_week) VALUES ($1, $2::date)
    ON CONFLICT (project_id) DO UPDATE SET built_week = excluded.built_week`,
	} {
		args := []any{project, b}
		if !strings.Contains(sql, "$2") {
			args = args[:1]
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return false, err
		}
	}
	return true, nil
}
