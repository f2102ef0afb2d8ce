package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// churnHistory makes users that arrive over days and stay for a while:
// user u starts on a random day and is active on random days of a
// lifetime with a heavy tail. It returns the events and, per user, the
// days they were active.
func churnHistory(seed uint64, from time.Time, days, users int) ([]server.Event, map[int][]time.Time) {
	r := rand.New(rand.NewPCG(seed, 11))
	var evs []server.Event
	active := map[int][]time.Time{}
	for u := 0; u < users; u++ {
		start := r.IntN(days)
		life := 1 + int(r.ExpFloat64()*20)
		for d := start; d < min(days, start+life); d++ {
			if r.IntN(3) != 0 {
				continue
			}
			at := from.AddDate(0, 0, d).Add(time.Duration(r.Int64N(int64(24 * time.Hour)))).Truncate(time.Millisecond)
			e := eventAtUser(at, u)
			e.ServiceName, e.ServiceVersion, e.EventType, e.Name = "cli", "1.0.0", "command_executed", "build"
			e.OS = []string{"linux", "darwin"}[u%2]
			e.Arch, e.GoVersion, e.SDKName, e.SDKVersion = "amd64", "go1.23.4", "telemetry-kit-go", "0.1.0"
			e.Metadata, _ = json.Marshal(map[string]any{"command": "build"})
			evs = append(evs, e)
			active[u] = append(active[u], at)
		}
	}
	return evs, active
}

func TestRetentionMatchesGeneratedHistory(t *testing.T) {
	now := time.Now()
	db := openMaintained(t, postgres.Config{Now: func() time.Time { return now }})
	thisWeek := server.Monday(now)
	from := thisWeek.AddDate(0, 0, -7*11) // 12 weeks of history
	evs, active := churnHistory(9, from, 7*12, 300)
	key := project(t, db, "retention")
	ingestHistory(t, db, key, &history{events: evs})
	ingestHistory(t, db, project(t, db, "retention-other"), &history{events: evs[:len(evs)/2]})

	// Truth, in Go: each user's weeks, first week, and linux only.
	type weeks map[time.Time]bool
	userWeeks := map[int]weeks{}
	first := map[int]time.Time{}
	for u, days := range active {
		if u%2 != 0 { // the filter keeps linux, even users
			continue
		}
		for _, d := range days {
			w := server.Monday(d)
			if userWeeks[u] == nil {
				userWeeks[u] = weeks{}
			}
			userWeeks[u][w] = true
			if f, ok := first[u]; !ok || w.Before(f) {
				first[u] = w
			}
		}
	}
	q := server.RetentionQuery{From: from.AddDate(0, 0, 14), To: thisWeek.AddDate(0, 0, -7), Weeks: 6,
		Filters: []server.Filter{{Op: server.OpIs, Dimension: server.DimOS, Values: []any{"linux"}}}}
	res, err := db.Retention(context.Background(), key.ProjectID, q)
	if err != nil {
		t.Fatal(err)
	}
	// weekly_users answers as the events do (a filter on the CI's name,
	// which it lacks, that keeps every event, makes Retention read the
	// events).
	for _, extra := range [][]server.Filter{nil, {{Op: server.OpGTE, Dimension: server.DimVersion, Values: []any{"1.0.0"}}}} {
		qw := q
		qw.Filters = append(append([]server.Filter{}, q.Filters...), extra...)
		qe := qw
		qe.Filters = append(append([]server.Filter{}, qw.Filters...),
			server.Filter{Op: server.OpIsNot, Dimension: server.DimCIName, Values: []any{"no such CI"}})
		fromWeeks, err := db.Retention(context.Background(), key.ProjectID, qw)
		if err != nil {
			t.Fatal(err)
		}
		fromEvents, err := db.Retention(context.Background(), key.ProjectID, qe)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fromWeeks) != fmt.Sprint(fromEvents) {
			t.Errorf("filters %v: from weekly_users\n%v\nfrom the events\n%v", qw.Filters, fromWeeks, fromEvents)
		}
	}
	if len(res.Cohorts) != 9 || len(res.Weeks) != 9 {
		t.Fatalf("%d cohorts and %d weeks, want 9 each (weeks 3 to 11)", len(res.Cohorts), len(res.Weeks))
	}
	sawReturn := false
	for _, c := range res.Cohorts {
		n := min(q.Weeks, int(thisWeek.Sub(c.Week)/(7*24*time.Hour))+1)
		want := make([]int64, n)
		for u, f := range first {
			if !f.Equal(c.Week) {
				continue
			}
			for k := range want {
				if userWeeks[u][c.Week.AddDate(0, 0, 7*k)] {
					want[k]++
				}
			}
		}
		if c.Users != want[0] || len(c.Active) != n {
			t.Fatalf("cohort %s: %d users, %d weeks; want %d, %d", c.Week.Format(time.DateOnly), c.Users, len(c.Active), want[0], n)
		}
		for k := range want {
			if c.Active[k] != want[k] {
				t.Errorf("cohort %s week %d: %d active, want %d", c.Week.Format(time.DateOnly), k, c.Active[k], want[k])
			}
			if k > 0 && want[k] > 0 {
				sawReturn = true
			}
		}
	}
	if !sawReturn {
		t.Error("the history has no returning users: the test proves little")
	}
	for _, w := range res.Weeks {
		var act, nw, ret, dorm int64
		prev := w.Week.AddDate(0, 0, -7)
		for u, ws := range userWeeks {
			if ws[w.Week] {
				act++
				if first[u].Equal(w.Week) {
					nw++
				} else {
					ret++
				}
			} else if ws[prev] {
				dorm++
			}
		}
		if w.Active != act || w.New != nw || w.Returning != ret || w.Dormant != dorm {
			t.Errorf("week %s: %+v, want active %d new %d returning %d dormant %d", w.Week.Format(time.DateOnly), w, act, nw, ret, dorm)
		}
	}
}

// Retention without filters, counted ahead for the closed weeks, answers
// as the users' weeks do: after the count, with late events for counted
// weeks (until and after the next count), and a week later.
func TestRetentionCountedAhead(t *testing.T) {
	clock := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC) // a Wednesday
	db := openMaintained(t, postgres.Config{Now: func() time.Time { return clock }})
	ctx := context.Background()
	key := project(t, db, "ahead")
	evs, _ := churnHistory(31, time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC), 128, 400) // to 2026-03-10
	for i := 0; i < len(evs); i += 500 {
		if _, err := db.Ingest(ctx, key, evs[i:min(i+500, len(evs))], 0); err != nil {
			t.Fatal(err)
		}
	}
	queries := []server.RetentionQuery{
		{From: server.Monday(time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC)), To: server.Monday(clock), Weeks: 12},
		{From: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 23, 0, 0, 0, 0, time.UTC), Weeks: 4},
		{From: time.Date(2026, 2, 16, 0, 0, 0, 0, time.UTC), To: server.Monday(clock), Weeks: 52},
		// With filters: from weekly_users, the versions listed from those
		// counted and the weeks after them.
		{From: server.Monday(time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC)), To: server.Monday(clock), Weeks: 12,
			Filters: []server.Filter{{Dimension: server.DimVersion, Op: server.OpGTE, Values: []any{"1.5.0"}}}},
		{From: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), To: server.Monday(clock), Weeks: 12,
			Filters: []server.Filter{{Dimension: server.DimOS, Op: server.OpIs, Values: []any{"linux"}},
				{Dimension: server.DimVersion, Op: server.OpLT, Values: []any{"2.5.0"}}}},
	}
	check := func(stage string) {
		t.Helper()
		for _, q := range queries {
			got, err := db.Retention(ctx, key.ProjectID, q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.RetentionFromWeeks(ctx, key.ProjectID, q)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
				t.Errorf("%s, %s..%s by %d weeks:\n got  %s\n want %s", stage, q.From.Format(time.DateOnly),
					q.To.Format(time.DateOnly), q.Weeks, g, w)
			}
		}
	}
	check("not counted")
	if n, err := db.BuildRetention(ctx); err != nil || n != 1 {
		t.Fatalf("count: %d projects, %v", n, err)
	}
	var built time.Time
	var cells int64
	db.Pool().QueryRow(ctx, `SELECT built_week, (SELECT count(*) FROM retention_cells WHERE project_id = $1)
		FROM retention_built WHERE project_id = $1`, key.ProjectID).Scan(&built, &cells)
	if !built.Equal(time.Date(2026, 2, 23, 0, 0, 0, 0, time.UTC)) || cells == 0 {
		t.Fatalf("counted through %v, %d cells; want the week of 2026-02-23", built, cells)
	}
	check("counted")
	// The answer is read from the cells: a wrong cell shows.
	db.Pool().Exec(ctx, `UPDATE retention_cells SET users = users + 1 WHERE project_id = $1`, key.ProjectID)
	q := queries[0]
	got, _ := db.Retention(ctx, key.ProjectID, q)
	want, _ := db.RetentionFromWeeks(ctx, key.ProjectID, q)
	if fmt.Sprint(got) == fmt.Sprint(want) {
		t.Fatal("the answer does not read the counted cells")
	}
	db.Pool().Exec(ctx, `UPDATE retention_cells SET users = users - 1 WHERE project_id = $1`, key.ProjectID)
	if n, err := db.BuildRetention(ctx); err != nil || n != 0 {
		t.Errorf("a count with nothing changed: %d projects, %v; want none", n, err)
	}

	// Late events for counted weeks: a new user, and an old one's new week.
	late := []server.Event{eventAtUser(time.Date(2026, 1, 14, 9, 0, 0, 0, time.UTC), 1000),
		eventAtUser(time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC), 7), eventAtUser(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), 1000)}
	for i := range late {
		late[i].ServiceName, late[i].EventType, late[i].Name = "cli", "command_executed", "build"
		// Versions no counted week had: one in a counted week, one after.
		late[i].ServiceVersion, late[i].OS = []string{"2.0.0", "1.0.0", "3.0.0"}[i], "linux"
	}
	if _, err := db.Ingest(ctx, key, late, 0); err != nil {
		t.Fatal(err)
	}
	check("late events, not counted again")
	if n, err := db.BuildRetention(ctx); err != nil || n != 1 {
		t.Errorf("count after late events: %d projects, %v; want 1", n, err)
	}
	check("late events counted")

	clock = clock.AddDate(0, 0, 7)
	queries = append(queries, server.RetentionQuery{From: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), To: server.Monday(clock), Weeks: 8})
	if n, err := db.BuildRetention(ctx); err != nil || n != 1 {
		t.Errorf("count a week later: %d projects, %v; want 1", n, err)
	}
	check("a week later")
}

// The retention window's prune drops the periods that start before it
// and makes the retention be counted anew: until then, answers come from
// the users' weeks that are left.
func TestPruneDropsCountedAhead(t *testing.T) {
	clock := time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC)
	db := openMaintained(t, postgres.Config{Retention: 40 * 24 * time.Hour, Now: func() time.Time { return clock }})
	ctx := context.Background()
	key := project(t, db, "prune-ahead")
	evs, _ := churnHistory(41, time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), 36, 200) // to 2026-03-09
	if _, err := db.Ingest(ctx, key, evs, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CompactRollups(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BuildPeriods(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := db.BuildRetention(ctx); err != nil || n != 1 {
		t.Fatalf("count: %d, %v", n, err)
	}
	var periods int64
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM period_counts WHERE project_id = $1 AND start < '2026-02-13'`,
		key.ProjectID).Scan(&periods)
	if periods == 0 {
		t.Fatal("no period rows before 2026-02-13 were built")
	}
	clock = clock.AddDate(0, 0, 14) // the window now starts on 2026-02-13
	if _, err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	var early, built int64
	db.Pool().QueryRow(ctx, `SELECT
		(SELECT count(*) FROM period_counts WHERE project_id = $1 AND start < '2026-02-13'),
		(SELECT count(*) FROM retention_built WHERE project_id = $1)`, key.ProjectID).Scan(&early, &built)
	if early != 0 || built != 0 {
		t.Errorf("after the prune: %d period rows before the window, %d retention counts; want none", early, built)
	}
	q := server.RetentionQuery{From: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), To: server.Monday(clock), Weeks: 12}
	check := func(stage string) {
		t.Helper()
		got, err := db.Retention(ctx, key.ProjectID, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := db.RetentionFromWeeks(ctx, key.ProjectID, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got  %v\n want %v", stage, got, want)
		}
	}
	check("pruned")
	if n, err := db.BuildRetention(ctx); err != nil || n != 1 {
		t.Fatalf("count after the prune: %d, %v", n, err)
	}
	check("counted anew")
}
