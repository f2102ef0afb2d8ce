package postgres

import (
	"context"
	"fmt"
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
	var s stmt
	end := q.To.AddDate(0, 0, 7*q.Weeks)
	weekly := true
	for _, f := range q.Filters {
		if _, ok := weeklyDims[f.Dimension]; !ok {
			weekly = false
		}
	}
	if weekly {
		s.exprs = weeklyDims
		fmt.Fprintf(&s.sql, `WITH act AS (
    SELECT w.user_id, w.week AS wk
    FROM weekly_users w
    WHERE w.project_id = %s AND w.week < %s::date`, s.projectArg(project), s.arg(end.Format(time.DateOnly)))
		s.versions = fmt.Sprintf(`SELECT DISTINCT wv.service_version FROM weekly_users wv
    WHERE wv.project_id = %s AND wv.week < $%d::date`, s.project, len(s.args))
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
), firsts AS (
    SELECT user_id, min(wk) AS first FROM act GROUP BY 1
)
SELECT 'c', f.first, (a.wk - f.first) / 7, count(*)
FROM act a JOIN firsts f USING (user_id)
WHERE f.first BETWEEN %[1]s AND %[2]s AND a.wk - f.first < 7 * %[3]s
GROUP BY 2, 3
UNION ALL
SELECT 'a', a.wk, CASE WHEN f.first = a.wk THEN 0 ELSE 1 END, count(*)
FROM act a JOIN firsts f USING (user_id)
WHERE a.wk BETWEEN %[1]s AND %[2]s
GROUP BY 2, 3
UNION ALL
SELECT 'd', a.wk + 7, 0, count(*)
FROM act a
WHERE a.wk + 7 BETWEEN %[1]s AND %[2]s
  AND NOT EXISTS (SELECT FROM act b WHERE b.user_id = a.user_id AND b.wk = a.wk + 7)
GROUP BY 2`, from, to, s.arg(q.Weeks))

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
		rows, err := tx.Query(ctx, s.sql.String(), s.args...)
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
