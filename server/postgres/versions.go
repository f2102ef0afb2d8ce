package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	filters := stmt{args: s.args, project: s.project, versions: fmt.Sprintf(eventVersions, p, from, to)}
	for _, f := range q.Filters {
		filters.sql.WriteString(" AND ")
		filters.filter(f, false)
	}
	s.args = filters.args
	cond := filters.sql.String()
	// uv is each user's versions of each day; the versions' keys are
	// computed once per version, not per event.
	fmt.Fprintf(&s.sql, `WITH uv AS (
    SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.user_id, e.service_version AS v,
           count(*) AS events
    FROM events e
    WHERE e.project_id = %[1]s AND e.occurred_at >= %[2]s AND e.occurred_at < %[3]s%[4]s
    GROUP BY 1, 2, 3
), keys AS (
    SELECT v, tk_version_key(v) AS k FROM (SELECT DISTINCT v FROM uv) x
), vers AS (
    SELECT uv.v, count(DISTINCT uv.user_id) AS users, sum(uv.events)::bigint AS events FROM uv GROUP BY 1
), firsts AS (
    SELECT c.service_version AS v, min(c.day) AS first_day
    FROM daily_event_counts c
    WHERE c.project_id = %[1]s AND c.service_version IN (SELECT v FROM vers)
    GROUP BY 1
), newest AS (
    SELECT uv.day, uv.user_id, max(k.k) AS k FROM uv JOIN keys k USING (v) GROUP BY 1, 2
)
SELECT 'v', v.v, coalesce(f.first_day, (SELECT min(uv.day) FROM uv WHERE uv.v = v.v)), v.users, v.events, k.k
FROM vers v JOIN keys k USING (v) LEFT JOIN firsts f USING (v)
UNION ALL
SELECT 'd', '', day, count(*), 0, k FROM newest GROUP BY day, k`, p, from, to, cond)
	var out []server.VersionAdoption
	var keys [][]int64
	type dayKey struct {
		day   time.Time
		key   []int64
		users int64
	}
	var days []dayKey
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.sql.String(), s.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind, version string
			var day time.Time
			var users, events int64
			var key []int64
			if err := rows.Scan(&kind, &version, &day, &users, &events, &key); err != nil {
				return err
			}
			if kind == "d" {
				days = append(days, dayKey{day.UTC(), key, users})
				continue
			}
			out = append(out, server.VersionAdoption{Version: version, FirstSeen: day.UTC(), Users: users, Events: events})
			keys = append(keys, key)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// A day's active users, and those whose newest version of the day is
	// each key or later: the first day, from the version's first, on which
	// those are at least half is when half of the users had it.
	active := map[time.Time]int64{}
	for _, d := range days {
		active[d.day] += d.users
	}
	for i := range out {
		if keys[i] == nil {
			continue
		}
		atLeast := map[time.Time]int64{}
		for _, d := range days {
			if d.key != nil && slices.Compare(d.key, keys[i]) >= 0 {
				atLeast[d.day] += d.users
			}
		}
		day := out[i].FirstSeen
		if day.Before(q.From) {
			day = q.From
		}
		for ; !day.After(q.To); day = day.AddDate(0, 0, 1) {
			if n := active[day]; n > 0 && 2*atLeast[day] >= n {
				h := day
				out[i].HalfReached = &h
				break
			}
		}
	}
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	// Newest first by semantic version, the others last by name.
	slices.SortFunc(order, func(a, b int) int {
		switch ka, kb := keys[a], keys[b]; {
		case ka != nil && kb != nil:
			if c := slices.Compare(kb, ka); c != 0 {
				return c
			}
		case ka != nil:
			return -1
		case kb != nil:
			return 1
		}
		return strings.Compare(out[b].Version, out[a].Version)
	})
	sorted := make([]server.VersionAdoption, len(out))
	for i, j := range order {
		sorted[i] = out[j]
	}
	return sorted, nil
}
