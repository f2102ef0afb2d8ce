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
//
// The answer comes from the users' sketches of daily_event_counts when the
// filters are on its dimensions and the caps folded no version of the
// range, else from the events.
func (db *DB) Versions(ctx context.Context, project int64, q server.VersionsQuery) ([]server.VersionAdoption, error) {
	var out []server.VersionAdoption
	var keys [][]int64
	// atLeast returns, for a version's key, the users of each day whose
	// newest version of the day is that key or later; active those of
	// each day.
	var atLeast func(key []int64) map[time.Time]int64
	active := map[time.Time]int64{}
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		// The smallest rollup that has the filters' dimensions.
		src := platformSource
		if !holds(src, server.Query{Filters: q.Filters}) {
			src = countsSource
		}
		sketches := holds(src, server.Query{Filters: q.Filters})
		if sketches {
			var folded bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM daily_folds WHERE project_id = $1
				AND day BETWEEN $2::date AND $3::date AND dimension IN ('service', 'version', 'event_row'))`,
				project, q.From.Format(time.DateOnly), q.To.Format(time.DateOnly)).Scan(&folded)
			if err != nil {
				return err
			}
			sketches = !folded
		}
		var s stmt
		if sketches {
			if err := noParallel(ctx, tx); err != nil {
				return err
			}
			s = versionsFromSketches(project, q, src)
		} else {
			s = versionsFromEvents(project, q)
		}
		rows, err := tx.Query(ctx, s.sql.String(), s.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		type dayKey struct {
			day   time.Time
			key   []int64
			users int64
		}
		var days []dayKey
		for rows.Next() {
			var kind, version string
			var day time.Time
			var users, events int64
			var key []int64
			if err := rows.Scan(&kind, &version, &day, &users, &events, &key); err != nil {
				return err
			}
			switch kind {
			case "d":
				days = append(days, dayKey{day.UTC(), key, users})
			case "a":
				active[day.UTC()] = users
			default:
				out = append(out, server.VersionAdoption{Version: version, FirstSeen: day.UTC(), Users: users, Events: events})
				keys = append(keys, key)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if sketches {
			// days has, per day and key, the users whose versions of the
			// day include that key or a later one: for a key, that of
			// the least key of the day at or after it.
			atLeast = func(key []int64) map[time.Time]int64 {
				m := map[time.Time]int64{}
				best := map[time.Time][]int64{}
				for _, d := range days {
					if d.key == nil || slices.Compare(d.key, key) < 0 {
						continue
					}
					if b, ok := best[d.day]; !ok || slices.Compare(d.key, b) < 0 {
						best[d.day], m[d.day] = d.key, d.users
					}
				}
				return m
			}
			return nil
		}
		// days has, per day and newest key, the users.
		for _, d := range days {
			active[d.day] += d.users
		}
		atLeast = func(key []int64) map[time.Time]int64 {
			m := map[time.Time]int64{}
			for _, d := range days {
				if d.key != nil && slices.Compare(d.key, key) >= 0 {
					m[d.day] += d.users
				}
			}
			return m
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The first day, from the version's first, on which the users whose
	// newest version of the day is the version or a later one are at least
	// half of the day's active users is when half of the users had it.
	for i := range out {
		if keys[i] == nil {
			continue
		}
		atLeast := atLeast(keys[i])
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

// versionsFromEvents is the statement of Versions over the events: a row
// 'v' per version (first day, users, events, key) and a row 'd' per day
// and newest semantic version key of a user's day (users).
func versionsFromEvents(project int64, q server.VersionsQuery) stmt {
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
	return s
}

// versionsFromSketches is the statement of Versions over the users'
// sketches of daily_event_counts: a row 'v' per version, a row 'a' per day
// (its users), and a row 'd' per day and semantic version key with the
// users of the day whose versions include that key or a later one (the
// sketches merged over the keys from the newest down to it). A user's
// newest version of a day is a key or later exactly when one of their
// versions of the day is.
func versionsFromSketches(project int64, q server.VersionsQuery, src source) stmt {
	s := stmt{exprs: src.dims}
	p, from, to := s.projectArg(project), s.arg(q.From.Format(time.DateOnly)), s.arg(q.To.Format(time.DateOnly))
	s.versions = fmt.Sprintf(src.versions, p, from, to)
	fmt.Fprintf(&s.sql, `WITH dv AS (
    SELECT c.day, c.service_version AS v, hll_union_agg(c.users) AS users, sum(c.events)::bigint AS events
    FROM %[4]s
    WHERE c.project_id = %[1]s AND c.day BETWEEN %[2]s::date AND %[3]s::date`, p, from, to, src.from)
	for _, f := range q.Filters {
		s.sql.WriteString(" AND ")
		s.filter(f, false)
	}
	fmt.Fprintf(&s.sql, `
    GROUP BY 1, 2
), keys AS (
    SELECT v, tk_version_key(v) AS k FROM (SELECT DISTINCT v FROM dv) x
), firsts AS (
    SELECT c.service_version AS v, min(c.day) AS first_day
    FROM %[3]s
    WHERE c.project_id = %[1]s AND c.service_version IN (SELECT v FROM keys)
    GROUP BY 1
), dk AS (
    SELECT dv.day, k.k, hll_union_agg(dv.users) AS users FROM dv JOIN keys k USING (v)
    WHERE k.k IS NOT NULL GROUP BY 1, 2
)
SELECT 'v', dv.v, min(f.first_day), %[2]s, sum(dv.events)::bigint, min(k.k)
FROM dv JOIN keys k USING (v) LEFT JOIN firsts f USING (v) GROUP BY dv.v
UNION ALL
SELECT 'a', '', day, %[2]s, 0, NULL FROM dv GROUP BY day
UNION ALL
SELECT 'd', '', day, round(hll_cardinality(hll_union_agg(users) OVER (PARTITION BY day ORDER BY k DESC)))::bigint, 0, k
FROM dk`, p, "coalesce(round(hll_cardinality(hll_union_agg(dv.users))), 0)::bigint", src.from)
	return s
}
