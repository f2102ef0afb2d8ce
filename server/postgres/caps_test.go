package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// command returns a command_executed event at t with the given version,
// command and flags (a flag "name=value" has its value collected).
// commandSeq orders the ids of the events command makes.
var commandSeq atomic.Uint32

// command makes a command_executed event at at. Events made in the same
// millisecond of at sort by id in the order they were made, as the caps
// admit values in id order: a test that expects the first versions to be
// admitted does not depend on the random bits of the ids.
func command(at time.Time, version, name string, flags ...string) server.Event {
	e := eventAt(at, 1)
	seq := commandSeq.Add(1)
	e.EventID[6] = 0x70 | byte(seq>>22)&0x0f
	e.EventID[7] = byte(seq >> 14)
	e.EventID[8] = 0x80 | byte(seq>>8)&0x3f
	e.EventID[9] = byte(seq)
	e.ServiceVersion, e.Name = version, name
	ok := true
	e.Success = &ok
	for _, f := range flags {
		fl := server.Flag{Name: f}
		for i := range f {
			if f[i] == '=' {
				fl = server.Flag{Name: f[:i], Value: f[i+1:], HasValue: true}
			}
		}
		e.Flags = append(e.Flags, fl)
	}
	return e
}

// sums returns, per key (day|service|version|type|name), the events a
// rollup counts; from the rollup when fromEvents is false, else from the
// stored events of project.
func sums(t *testing.T, db *postgres.DB, project int64, query string) map[string]int64 {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), query, project)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		m[k] = n
	}
	return m
}

const (
	countsByKey = `SELECT concat_ws('|', day, service_name, service_version, event_type, name), sum(events)::bigint
		FROM daily_event_counts WHERE project_id = $1 GROUP BY 1`
	eventsByKey = `SELECT concat_ws('|', (occurred_at AT TIME ZONE 'UTC')::date, service_name, service_version, event_type, name),
		count(*) FROM events WHERE project_id = $1 GROUP BY 1`
	foldsByDim = `SELECT dimension, sum(events)::bigint FROM daily_folds WHERE project_id = $1 GROUP BY 1`
)

// Past the cap of versions of a day, new versions are counted under
// "(other)": the rollup still counts every event, the admitted versions
// exactly as stored, and daily_folds what was folded; another project and
// another day have caps of their own; the raw events keep every value.
func TestCapsFoldVersions(t *testing.T) {
	db := openMaintained(t, postgres.Config{Caps: postgres.Caps{Versions: 3}})
	ctx := context.Background()
	key, other := project(t, db, "caps"), project(t, db, "caps-other")
	now := time.Now().UTC()
	yesterday := now.Add(-24 * time.Hour)
	var evs []server.Event
	for i := 0; i < 6; i++ {
		evs = append(evs, command(now, "v"+strconv.Itoa(i), "build"))
	}
	evs = append(evs, command(now, "v0", "build"), command(yesterday, "v5", "build"))
	res, err := db.Ingest(ctx, key, evs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != len(evs) || res.Folded["version"] != 3 {
		t.Fatalf("result %+v, want %d accepted and 3 versions folded", res, len(evs))
	}
	day, yday := now.Format("2006-01-02"), yesterday.Format("2006-01-02")
	want := map[string]int64{
		day + "|cli|v0|command_executed|build":      2,
		day + "|cli|v1|command_executed|build":      1,
		day + "|cli|v2|command_executed|build":      1,
		day + "|cli|(other)|command_executed|build": 3,
		yday + "|cli|v5|command_executed|build":     1,
	}
	if got := sums(t, db, key.ProjectID, countsByKey); !maps.Equal(got, want) {
		t.Fatalf("rollup\n got %v\nwant %v", got, want)
	}
	if got := sums(t, db, key.ProjectID, foldsByDim); !maps.Equal(got, map[string]int64{"version": 3}) {
		t.Fatalf("folds %v", got)
	}
	// The events are stored as sent.
	if got := sums(t, db, key.ProjectID, eventsByKey); got[day+"|cli|v5|command_executed|build"] != 1 {
		t.Fatalf("stored events %v", got)
	}
	// A known version stays counted as itself, a new one is folded, also
	// on the statement path (a known event with new ones).
	more := []server.Event{command(now, "v1", "build"), command(now, "v9", "build"), evs[0]}
	res, err = db.Ingest(ctx, key, more, 0)
	if err != nil || res.Accepted != 2 || res.Duplicates != 1 || res.Folded["version"] != 1 {
		t.Fatalf("statement path: %+v %v", res, err)
	}
	want[day+"|cli|v1|command_executed|build"]++
	want[day+"|cli|(other)|command_executed|build"]++
	if got := sums(t, db, key.ProjectID, countsByKey); !maps.Equal(got, want) {
		t.Fatalf("after the statement path\n got %v\nwant %v", got, want)
	}
	// Another project has its own caps.
	if res, err := db.Ingest(ctx, other, evs[3:6], 0); err != nil || res.Folded != nil {
		t.Fatalf("other project: %+v %v", res, err)
	}
	// A server with an empty cache (a restart, another replica) decides
	// the same.
	db2 := open(t, postgres.Config{URL: db.Pool().Config().ConnString(), Caps: postgres.Caps{Versions: 3}})
	res, err = db2.Ingest(ctx, key, []server.Event{command(now, "v2", "build"), command(now, "v7", "build")}, 0)
	if err != nil || res.Folded["version"] != 1 {
		t.Fatalf("fresh cache: %+v %v", res, err)
	}
	want[day+"|cli|v2|command_executed|build"]++
	want[day+"|cli|(other)|command_executed|build"]++
	if got := sums(t, db, key.ProjectID, countsByKey); !maps.Equal(got, want) {
		t.Fatalf("after a fresh cache\n got %v\nwant %v", got, want)
	}
}

// Many requests at once with new values: the cap holds exactly, and every
// event is counted once.
func TestCapsHoldUnderConcurrency(t *testing.T) {
	db := openMaintained(t, postgres.Config{Caps: postgres.Caps{Names: 10, Flags: 5}})
	ctx := context.Background()
	key := project(t, db, "caps-concurrent")
	now := time.Now().UTC()
	warmConnections(db)
	var wg sync.WaitGroup
	start := make(chan struct{})
	const requests, each = 32, 10
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var evs []server.Event
			for j := 0; j < each; j++ {
				evs = append(evs, command(now, "1.0", fmt.Sprintf("cmd%d-%d", i, j), fmt.Sprintf("f%d", i*each+j), "watch"))
			}
			if _, err := db.Ingest(ctx, key, evs, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	var names, flags, counted, flagged int64
	err := db.Pool().QueryRow(ctx, `SELECT
		(SELECT count(DISTINCT name) FILTER (WHERE name <> '(other)') FROM daily_event_counts WHERE project_id = $1),
		(SELECT count(DISTINCT flag) FILTER (WHERE flag <> '(other)') FROM daily_flag_counts WHERE project_id = $1),
		(SELECT sum(events) FROM daily_event_counts WHERE project_id = $1),
		(SELECT sum(events) FROM daily_flag_counts WHERE project_id = $1)`, key.ProjectID).
		Scan(&names, &flags, &counted, &flagged)
	if err != nil {
		t.Fatal(err)
	}
	if names != 10 || flags != 5 || counted != requests*each || flagged != 2*requests*each {
		t.Fatalf("%d names, %d flags, %d events and %d flags counted; want 10, 5, %d and %d",
			names, flags, counted, flagged, requests*each, 2*requests*each)
	}
	checkAdmissionCounts(t, db, key.ProjectID)
}

// Requests that need admissions while one is at work share the next
// one's transaction; a request whose key was revoked meanwhile fails
// alone, and the others are stored with their values.
func TestAdmissionsAreShared(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	ctx := context.Background()
	_, w1, _ := server.NewKey(server.KeyWrite)
	_, w2, _ := server.NewKey(server.KeyWrite)
	_, keys, err := db.CreateProject(ctx, "shared-admissions", []server.Key{w1, w2})
	if err != nil {
		t.Fatal(err)
	}
	good, revoked := keys[0], keys[1]
	if err := db.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	warmConnections(db)
	const requests = 24
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := good
			if i == 5 {
				key = revoked
			}
			<-start
			// Each request with values of its own: every one needs an
			// admission.
			_, errs[i] = db.Ingest(ctx, key, []server.Event{
				command(now, "v"+strconv.Itoa(i), "c"+strconv.Itoa(i), "f"+strconv.Itoa(i)),
			}, 0)
		}()
	}
	txs := db.AdmissionTransactions()
	close(start)
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == 5 && !errors.Is(err, server.ErrKeyRevoked):
			t.Errorf("request with the revoked key: %v, want ErrKeyRevoked", err)
		case i != 5 && err != nil:
			t.Errorf("request %d: %v", i, err)
		}
	}
	n := db.AdmissionTransactions() - txs
	t.Logf("%d requests, %d admission transactions", requests, n)
	if n >= requests {
		t.Errorf("%d admission transactions for %d requests: none shared", n, requests)
	}
	var versions, counted int64
	db.Pool().QueryRow(ctx, `SELECT count(DISTINCT service_version), sum(events) FROM daily_event_counts
		WHERE project_id = $1`, good.ProjectID).Scan(&versions, &counted)
	if versions != requests-1 || counted != requests-1 {
		t.Errorf("%d versions and %d events counted, want %d of each", versions, counted, requests-1)
	}
	checkAdmissionCounts(t, db, good.ProjectID)
}

// warmConnections opens connections of db's pool, so that the requests of
// a test meet in the database rather than wait for connections.
func warmConnections(db *postgres.DB) {
	var warm sync.WaitGroup
	for range 10 {
		warm.Add(1)
		go func() {
			defer warm.Done()
			db.Pool().Exec(context.Background(), `SELECT pg_sleep(0.05)`)
		}()
	}
	warm.Wait()
}

// checkAdmissionCounts fails t unless the admissions' counters of a
// project equal what rollup_values holds.
func checkAdmissionCounts(t *testing.T, db *postgres.DB, project int64) {
	t.Helper()
	var wrong int64
	err := db.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM (SELECT day, dim, count(*) AS n FROM rollup_values WHERE project_id = $1 GROUP BY 1, 2) v
		 FULL JOIN (SELECT day, dim, n FROM rollup_value_counts WHERE project_id = $1) c USING (day, dim)
		 WHERE v.n IS DISTINCT FROM c.n) +
		(SELECT count(*) FROM (SELECT added AS day, count(*) AS n FROM rollup_values WHERE project_id = $1 GROUP BY 1) v
		 FULL JOIN (SELECT day, n FROM rollup_additions WHERE project_id = $1) c USING (day)
		 WHERE v.n IS DISTINCT FROM c.n)`, project).Scan(&wrong)
	if err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Fatalf("%d admission counters differ from rollup_values", wrong)
	}
}

// Past the cap of rows of a day, new rows are counted in one row of
// "(other)" values; and past the cap of values added on one day, new
// values are folded whatever the day of their events.
func TestCapsRowsAndDailyAdditions(t *testing.T) {
	db := openMaintained(t, postgres.Config{Caps: postgres.Caps{EventRows: 4, NewPerDay: 30}})
	ctx := context.Background()
	key := project(t, db, "caps-rows")
	now := time.Now().UTC()
	var evs []server.Event
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			evs = append(evs, command(now, "v"+strconv.Itoa(i), "c"+strconv.Itoa(j)))
		}
	}
	res, err := db.Ingest(ctx, key, evs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Folded["event_row"] != 5 {
		t.Fatalf("folded %v, want 5 events in event_row", res.Folded)
	}
	var rows, total, other int64
	db.Pool().QueryRow(ctx, `SELECT count(DISTINCT (service_version, name)), sum(events),
		sum(events) FILTER (WHERE service_name = '(other)' AND service_version = '(other)' AND name = '(other)')
		FROM daily_event_counts WHERE project_id = $1`, key.ProjectID).Scan(&rows, &total, &other)
	if rows != 5 || total != 9 || other != 5 {
		t.Fatalf("%d rows, %d events, %d under (other); want 5 (4 and the (other) row), 9 and 5", rows, total, other)
	}
	// Events of 20 past days, each with values new on its day: the
	// project may add 30 values in all today.
	var old []server.Event
	for d := 1; d <= 20; d++ {
		old = append(old, command(now.AddDate(0, 0, -d), "v", "c"))
	}
	if _, err := db.Ingest(ctx, key, old, 0); err != nil {
		t.Fatal(err)
	}
	var added int64
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM rollup_values WHERE project_id = $1
		AND added = (now() AT TIME ZONE 'UTC')::date`, key.ProjectID).Scan(&added)
	if added > 30 {
		t.Fatalf("%d values added today, over the cap of 30", added)
	}
	var counted int64
	db.Pool().QueryRow(ctx, `SELECT sum(events) FROM daily_event_counts WHERE project_id = $1`, key.ProjectID).Scan(&counted)
	if counted != 29 {
		t.Fatalf("%d events counted, want 29", counted)
	}
	checkAdmissionCounts(t, db, key.ProjectID)
}

// Once a project has added all it may on a day of arrival, its new values
// are folded without asking the database again until that day ends: a
// request that brings them back takes no admission transaction (and so
// never waits for the project's admission lock), and counts exactly as
// the first did. After the day, they are asked again.
func TestDayFoldsAreCached(t *testing.T) {
	now := time.Now().UTC()
	clock := now
	db := openMaintained(t, postgres.Config{Caps: postgres.Caps{NewPerDay: 12}, Now: func() time.Time { return clock }})
	ctx := context.Background()
	key := project(t, db, "day-folds")
	batch := func() []server.Event {
		var evs []server.Event
		for i := 0; i < 8; i++ {
			evs = append(evs, command(now, "v"+strconv.Itoa(i), "c"+strconv.Itoa(i)))
		}
		return evs
	}
	first, err := db.Ingest(ctx, key, batch(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Folded["version"] == 0 {
		t.Fatalf("folded %v: the test needs the cap of today's additions reached", first.Folded)
	}
	before := rowCounts(t, db, key.ProjectID)
	txs := db.AdmissionTransactions()
	again, err := db.Ingest(ctx, key, batch(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := db.AdmissionTransactions() - txs; n != 0 {
		t.Errorf("the same values again took %d admission transactions, want 0", n)
	}
	if !maps.Equal(again.Folded, first.Folded) {
		t.Errorf("folded %v the second time, %v the first", again.Folded, first.Folded)
	}
	if got := rowCounts(t, db, key.ProjectID); !maps.Equal(got, doubled(before)) {
		t.Errorf("rows after the same events twice:\n%v\nwant twice the first's:\n%v", got, before)
	}
	// A day later by tk-server's clock the values are asked again (the
	// database, still on its day, folds them again).
	clock = now.Add(25 * time.Hour)
	txs = db.AdmissionTransactions()
	if _, err := db.Ingest(ctx, key, batch(), 0); err != nil {
		t.Fatal(err)
	}
	if db.AdmissionTransactions() == txs {
		t.Error("after the day of arrival ended, the folded values were not asked again")
	}
	checkAdmissionCounts(t, db, key.ProjectID)
}

// rowCounts returns the events of each row of a project's
// daily_event_counts, its shards together.
func rowCounts(t *testing.T, db *postgres.DB, project int64) map[string]int64 {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), `SELECT concat_ws('/', day, service_name, service_version,
		event_type, name, os, arch, ci, go_version, success, error_kind), sum(events)
		FROM daily_event_counts WHERE project_id = $1 GROUP BY 1`, project)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	var k string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error { m[k] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func doubled(m map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for k, n := range m {
		d[k] = 2 * n
	}
	return d
}

// Maintenance deletes the rollup rows of the days that fall out of the
// retention window, with their events.
func TestMaintainPrunesRollups(t *testing.T) {
	now := time.Now().UTC()
	clock := now
	db := openMaintained(t, postgres.Config{Retention: 10 * 24 * time.Hour, Now: func() time.Time { return clock }})
	ctx := context.Background()
	key := project(t, db, "prune")
	evs := []server.Event{command(now.AddDate(0, 0, -8), "1", "c", "watch"), command(now, "1", "c", "watch")}
	if _, err := db.Ingest(ctx, key, evs, 3); err != nil {
		t.Fatal(err)
	}
	clock = now.AddDate(0, 0, 5)
	if _, err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	var weeks, oldWeeks int64
	db.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE week < $2::date - 6) FROM weekly_users
		WHERE project_id = $1`, key.ProjectID, now.AddDate(0, 0, -5)).Scan(&weeks, &oldWeeks)
	if weeks == 0 || oldWeeks != 0 {
		t.Fatalf("weekly_users: %d rows left, %d of weeks that end before the window", weeks, oldWeeks)
	}
	for _, table := range []string{"daily_event_counts", "daily_flag_counts", "daily_users", "rollup_values",
		"rollup_value_counts", "rollup_additions"} {
		var left, old int64
		db.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE day < $2::date) FROM `+table+
			` WHERE project_id = $1`, key.ProjectID, now.AddDate(0, 0, -5)).Scan(&left, &old)
		if left == 0 || old != 0 {
			t.Fatalf("%s: %d rows left, %d of them before the window", table, left, old)
		}
	}
}
