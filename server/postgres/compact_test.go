package postgres_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// Compaction merges the shards of closed days into one row per key, and
// every answer stays as it was; today's rows are left alone; events that
// arrive afterwards for a compacted day still count.
func TestCompactRollupsKeepsAnswers(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	ctx := context.Background()
	key := project(t, db, "compact")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	// 16 concurrent requests (on different connections, so different
	// shards) of the same commands, flags and users over 5 days.
	var wg sync.WaitGroup
	for r := 0; r < 16; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var evs []server.Event
			for d := 0; d < 5; d++ {
				for u := 0; u < 20; u++ {
					e := command(today.AddDate(0, 0, -d).Add(time.Duration(r*100+u)*time.Second), "1.0.0",
						fmt.Sprintf("cmd%d", u%3), "watch", "output=json")
					binary.BigEndian.PutUint32(e.UserID[:], uint32(r*7+u))
					ms := int64(r*20 + u)
					e.DurationMS = &ms
					evs = append(evs, e)
				}
			}
			if _, err := db.Ingest(ctx, key, evs, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rng := fmt.Sprintf(`["%s", "%s"]`, today.AddDate(0, 0, -4).Format(time.DateOnly), today.Format(time.DateOnly))
	questions := []string{
		`{"metrics": ["events", "users", "duration_avg", "first_seen", "last_seen"], "dimensions": ["time:day", "command"], "date_range": ` + rng + `}`,
		`{"metrics": ["events", "users"], "dimensions": ["flag", "flag_value"], "date_range": ` + rng + `}`,
		`{"metrics": ["users"], "date_range": ` + rng + `}`,
	}
	answers := func() []string {
		var out []string
		for _, q := range questions {
			out = append(out, fmt.Sprint(mustQuery(t, db, key.ProjectID, q).Rows))
		}
		return out
	}
	rowsOf := func(table string) (rows, keys int64) {
		t.Helper()
		err := db.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT (day, `+map[string]string{
			"daily_event_counts": "name", "daily_flag_counts": "command, flag, value"}[table]+`)) FROM `+table+
			` WHERE project_id = $1 AND day < $2::date`, key.ProjectID, today.AddDate(0, 0, -1).Format(time.DateOnly)).
			Scan(&rows, &keys)
		if err != nil {
			t.Fatal(err)
		}
		return rows, keys
	}
	before := answers()
	if rows, keys := rowsOf("daily_event_counts"); rows <= keys {
		t.Fatalf("%d rows for %d keys before compaction: the requests all used one shard", rows, keys)
	}
	var p50 float64
	db.Pool().QueryRow(ctx, `SELECT tdigest_percentile(durations, 0.5) FROM daily_event_counts WHERE project_id = $1`,
		key.ProjectID).Scan(&p50)

	n, err := db.CompactRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing compacted")
	}
	for _, table := range []string{"daily_event_counts", "daily_flag_counts"} {
		if rows, keys := rowsOf(table); rows != keys {
			t.Errorf("%s: %d rows for %d keys of the closed days after compaction", table, rows, keys)
		}
	}
	var todayShards int64
	db.Pool().QueryRow(ctx, `SELECT count(DISTINCT shard) FROM daily_event_counts WHERE project_id = $1 AND day = $2::date`,
		key.ProjectID, today.Format(time.DateOnly)).Scan(&todayShards)
	if todayShards < 2 {
		t.Errorf("today's rows are in %d shard(s): today must not be compacted", todayShards)
	}
	after := answers()
	for i := range questions {
		if before[i] != after[i] {
			t.Errorf("%s\nbefore: %s\nafter:  %s", questions[i], before[i], after[i])
		}
	}
	var p50After float64
	db.Pool().QueryRow(ctx, `SELECT tdigest_percentile(durations, 0.5) FROM daily_event_counts WHERE project_id = $1`,
		key.ProjectID).Scan(&p50After)
	if p50 < 150 || p50 > 170 || p50After < 150 || p50After > 170 {
		t.Errorf("median duration %v before, %v after compaction; want about 160 (durations 0–319)", p50, p50After)
	}
	// Again: nothing left to do.
	if n, err := db.CompactRollups(ctx); err != nil || n != 0 {
		t.Errorf("second compaction: %d days, %v; want 0", n, err)
	}
	// A late event for a compacted day counts.
	late := command(today.AddDate(0, 0, -3).Add(time.Hour), "1.0.0", "cmd0")
	if _, err := db.Ingest(ctx, key, []server.Event{late}, 0); err != nil {
		t.Fatal(err)
	}
	res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events"], "date_range": `+rng+`}`)
	if res.Rows[0].Metrics[0] != int64(16*5*20+1) {
		t.Errorf("%v events after a late one, want %d", res.Rows[0].Metrics[0], 16*5*20+1)
	}
}

// Compaction racing with ingest of the days it compacts loses and doubles
// nothing.
func TestCompactRollupsRacesIngest(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	ctx := context.Background()
	key := project(t, db, "compact-race")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	const writers, requests, each = 6, 15, 20
	stop := make(chan struct{})
	compacted := make(chan int)
	go func() {
		total := 0
		for {
			select {
			case <-stop:
				compacted <- total
				return
			default:
			}
			n, err := db.CompactRollups(ctx)
			if err != nil {
				t.Error(err)
			}
			total += n
			if _, err := db.BuildPeriods(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < requests; r++ {
				var evs []server.Event
				for i := 0; i < each; i++ {
					e := command(today.AddDate(0, 0, -2-i%3).Add(time.Duration(w*1000+r*each+i)*time.Second), "1.0.0", "build", "watch")
					binary.BigEndian.PutUint32(e.UserID[:], uint32(w))
					evs = append(evs, e)
				}
				if _, err := db.Ingest(ctx, key, evs, 0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if n := <-compacted; n == 0 {
		t.Log("no compaction ran during the ingest")
	}
	var events, flags, users int64
	err := db.Pool().QueryRow(ctx, `SELECT
		(SELECT sum(events) FROM daily_event_counts WHERE project_id = $1),
		(SELECT sum(events) FROM daily_flag_counts WHERE project_id = $1),
		(SELECT hll_cardinality(hll_union_agg(users)) FROM daily_event_counts WHERE project_id = $1)`, key.ProjectID).
		Scan(&events, &flags, &users)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(writers * requests * each); events != want || flags != want || users != writers {
		t.Errorf("%d events, %d flags, %d users counted; want %d, %d and %d", events, flags, users, want, want, writers)
	}
	// The days are built periods now, which the compaction raced with:
	// the answer from them (and what is left in shards 1–16) is exact.
	var built int64
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM period_counts WHERE project_id = $1 AND period = 'd'`,
		key.ProjectID).Scan(&built)
	if built != 3 {
		t.Errorf("%d day rows built, want 3", built)
	}
	for _, final := range []bool{false, true} {
		if final {
			if _, err := db.CompactRollups(ctx); err != nil {
				t.Fatal(err)
			}
		}
		res := mustQuery(t, db, key.ProjectID, fmt.Sprintf(`{"metrics": ["events", "users"], "dimensions": ["command"],
			"date_range": ["%s", "%s"]}`, today.AddDate(0, 0, -4).Format(time.DateOnly), today.Format(time.DateOnly)))
		if len(res.Rows) != 1 || res.Rows[0].Metrics[0] != int64(writers*requests*each) || res.Rows[0].Metrics[1] != int64(writers) {
			t.Errorf("compacted %v: answer %v, want %d runs of %d users", final, res.Rows, writers*requests*each, writers)
		}
	}
}
