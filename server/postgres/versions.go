package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// Versions answers q over project's events. A version's first day is that
// of its first event in all the stored history, whatever the filters (from
// the daily rollup: when it came out, as far as the server knows); the
// days on which half of the active users had it (or a later version) are
// looked for in the range.
func (db *DB) Versions(ctx context.Context, project int64, q server.VersionsQuery) ([]server.VersionAdoption, error) {
	var s stmt
	p, from, to := s.projectArg(project), s.arg(q.From), s.arg(q.To.AddDate(0, 0, 1))
	filters := stmt{args: s.args, project: s.project}
	for _, f := range q.Filters {
		filters.sql.WriteString(" AND ")
		filters.filter(f, false)
	}
	s.args = filters.args
	cond := filters.sql.String()
	fmt.Fprintf(&s.sql, `WITH uv AS (
    SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.user_id, max(tk_version_key(e.service_version)) AS k
    FROM events e
    WHERE e.project_id = %[1]s AND e.occurred_at >= %[2]s AND e.occurred_at < %[3]s%[4]s
    GROUP BY 1, 2
), days AS (
    SELECT day, count(*) AS dau FROM uv GROUP BY 1
), vers AS (
    SELECT e.service_version AS v, tk_version_key(e.service_version) AS k,
           count(DISTINCT e.user_id) AS users, count(*) AS events
    FROM events e
    WHERE e.project_id = %[1]s AND e.occurred_at >= %[2]s AND e.occurred_at < %[3]s%[4]s
    GROUP BY 1
), firsts AS (
    SELECT c.service_version AS v, min(c.day) AS first_day
    FROM daily_event_counts c
    WHERE c.project_id = %[1]s AND c.service_version IN (SELECT v FROM vers)
    GROUP BY 1
)
SELECT v.v, f.first_day, v.users, v.events,
       CASE WHEN v.k IS NULL THEN NULL ELSE (
           SELECT min(uv.day) FROM uv JOIN days d USING (day)
           WHERE uv.day >= f.first_day
           GROUP BY uv.day, d.dau
           HAVING 2 * count(*) FILTER (WHERE uv.k >= v.k) >= d.dau
           ORDER BY uv.day LIMIT 1) END
FROM vers v JOIN firsts f USING (v)
ORDER BY v.k DESC NULLS LAST, v.v COLLATE "C" DESC`, p, from, to, cond)
	var out []server.VersionAdoption
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.sql.String(), s.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v server.VersionAdoption
			var half *time.Time
			if err := rows.Scan(&v.Version, &v.FirstSeen, &v.Users, &v.Events, &half); err != nil {
				return err
			}
			v.FirstSeen = v.FirstSeen.UTC()
			if half != nil {
				h := half.UTC()
				v.HalfReached = &h
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}
