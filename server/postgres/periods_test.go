package postgres_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// The questions answered from the period rollups (whole months, weeks and
// days, and the open days from daily_event_counts) give the answers of
// plain SQL over the events: before the periods are built, after, with
// late events for built days before and after their compaction.
func TestPeriodRollupsMatchEvents(t *testing.T) {
	clock := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	db := openMaintained(t, postgres.Config{Now: func() time.Time { return clock }})
	ctx := context.Background()
	key := project(t, db, "periods")
	first := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	h := genHistory(11, first, 99, 60, 6000) // to 2026-03-09, yesterday
	ingestHistory(t, db, key, h)
	other := project(t, db, "periods-other")
	ingestHistory(t, db, other, genHistory(12, first, 99, 30, 1500))

	ranges := [][2]string{
		{"2025-12-01", "2026-03-09"}, // three whole months, a week, days and the open day
		{"2025-12-15", "2026-02-10"},
		{"2026-01-05", "2026-01-25"}, // whole weeks
		{"2026-02-27", "2026-03-10"}, // days across a month, the open days
		{"2026-01-14", "2026-01-14"},
	}
	questions := []string{
		`{"metrics": ["events", "users", "success_rate", "failure_rate", "duration_avg", "first_seen", "last_seen"], "dimensions": ["command"]`,
		`{"metrics": ["events", "users", "success_rate"], "dimensions": ["command"], "filters": [["is", "os", ["linux"]], ["is", "ci", [false]], ["gte", "version", "1.2.0"]]`,
		`{"metrics": ["events", "users"], "dimensions": ["time:week", "feature"]`,
		`{"metrics": ["events", "users", "last_seen"], "dimensions": ["method", "version"]`,
		`{"metrics": ["events", "users", "users_share"], "dimensions": ["time:month", "command"]`,
		`{"metrics": ["events", "users", "success_rate"], "dimensions": ["time:day", "command"], "filters": [["is", "command", ["build"]], ["is_not", "arch", ["arm64"]]]`,
		`{"metrics": ["events", "users", "failure_rate"], "dimensions": ["name", "os"], "include": {"comparison": "previous_period"}`,
		// From period_flag_counts.
		`{"metrics": ["events", "users"], "dimensions": ["flag"], "filters": [["is", "command", ["build"]], ["is", "ci", [false]]]`,
		`{"metrics": ["events", "users"], "dimensions": ["time:month", "flag", "flag_value"], "filters": [["is", "flag", ["--auth"]]]`,
		// From period_error_counts.
		`{"metrics": ["events", "users"], "dimensions": ["command", "error_kind"], "filters": [["is_not", "error_kind", ["timeout"]]]`,
		`{"metrics": ["events"], "dimensions": ["time:week", "error_kind"], "filters": [["is", "os", ["windows"]], ["lt", "version", "1.2.0"]]`,
	}
	check := func(stage string) {
		t.Helper()
		for _, r := range ranges {
			for _, qs := range questions {
				body := qs + fmt.Sprintf(`, "date_range": ["%s", "%s"]}`, r[0], r[1])
				q, err := server.ParseQuery([]byte(body), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				want := "period_counts"
				switch {
				case strings.Contains(body, "error_kind"):
					want = "period_error_counts"
				case strings.Contains(body, "flag"):
					want = "period_flag_counts"
				}
				if src := postgres.SourceOf(q); src != want {
					t.Fatalf("%s: answered from %s, want %s", body, src, want)
				}
				got, err := db.Query(ctx, key.ProjectID, q)
				if err != nil {
					t.Fatalf("%s: %v", body, err)
				}
				exact, err := db.QueryEvents(ctx, key.ProjectID, q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := diffRows(got.Rows, exact.Rows); diff != "" {
					t.Errorf("%s, %s: %s", stage, body, diff)
				}
			}
		}
	}
	check("before the periods are built")

	if _, err := db.CompactRollups(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := db.BuildPeriods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*98 { // 2025-12-01 to 2026-03-08, the day before yesterday, of two projects
		t.Errorf("built %d days, want 2×98", n)
	}
	for _, table := range []string{"period_counts", "period_error_counts", "period_flag_counts"} {
		var months, weeks, days int64
		db.Pool().QueryRow(ctx, `SELECT count(DISTINCT start) FILTER (WHERE period = 'm'),
			count(DISTINCT start) FILTER (WHERE period = 'w'), count(DISTINCT start) FILTER (WHERE period = 'd')
			FROM `+table+` WHERE project_id = $1`, key.ProjectID).Scan(&months, &weeks, &days)
		if months != 3 || weeks != 14 || days != 98 {
			// Whole weeks from Monday 2025-12-01 to Sunday 2026-03-08.
			t.Errorf("%s: %d months, %d weeks, %d days built; want 3, 14 and 98", table, months, weeks, days)
		}
	}
	check("built")

	// Late events for built days land in shards 1–16, read beside the
	// periods until the compaction adds them.
	var late []server.Event
	for i := 0; i < 40; i++ {
		at := time.Date(2026, 1, 14, 10, 0, i, 0, time.UTC)
		if i%2 == 1 {
			at = time.Date(2026, 2, 28, 23, 59, i, 0, time.UTC)
		}
		e := command(at, "1.10.0", []string{"build", "legacy-export"}[i%2], "watch")
		e.UserID[0], e.UserID[1] = 0xee, byte(i%7) // users of their own
		e.OS, e.Arch = "linux", "amd64"
		e.Metadata = []byte(`{"flags": ["watch"]}`) // what the events' answers read
		ok := i%3 > 0
		e.Success = &ok
		if !ok {
			kind := []string{"network", "timeout"}[i%2]
			e.ErrorKind = &kind
		}
		late = append(late, e)
	}
	if _, err := db.Ingest(ctx, key, late, 0); err != nil {
		t.Fatal(err)
	}
	check("late events not compacted")
	if n, err := db.CompactRollups(ctx); err != nil || n == 0 {
		t.Fatalf("compaction of the late days: %d, %v", n, err)
	}
	var shards int64
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM daily_event_counts WHERE project_id = $1 AND shard <> 0
		AND day <= '2026-03-08'`, key.ProjectID).Scan(&shards)
	if shards != 0 {
		t.Errorf("%d rows of built days left in shards 1–16", shards)
	}
	check("late events compacted")
	if n, err := db.BuildPeriods(ctx); err != nil || n != 0 {
		t.Errorf("second build: %d days, %v; want 0", n, err)
	}

	// A day later, the next day is built, and its week (ending on
	// Sunday 2026-03-08 already) is not built twice.
	clock = clock.AddDate(0, 0, 1)
	if n, err := db.BuildPeriods(ctx); err != nil || n != 2 {
		t.Errorf("next day's build: %d days, %v; want one of each project", n, err)
	}
	check("a day later")
}

// diffRows describes the first difference between two answers: counts,
// times and dimensions equal, rates and means within 1e-9.
func diffRows(got, want []server.Row) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if fmt.Sprint(g.Dimensions) != fmt.Sprint(w.Dimensions) {
			return fmt.Sprintf("row %d: %v, want %v", i, g.Dimensions, w.Dimensions)
		}
		for _, pair := range [][2][]any{{g.Metrics, w.Metrics}, {g.Previous, w.Previous}} {
			for j := range pair[1] {
				a, b := pair[0][j], pair[1][j]
				if fa, ok := a.(float64); ok {
					if fb, ok := b.(float64); ok && math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Abs(fb)) {
						continue
					}
				}
				if fmt.Sprint(a) != fmt.Sprint(b) {
					return fmt.Sprintf("row %d %v: metrics %v, want %v", i, g.Dimensions, pair[0], pair[1])
				}
			}
		}
	}
	return ""
}
