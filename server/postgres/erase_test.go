package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
	"github.com/telemetry-kit/telemetry-kit/server/synth"
)

// userRows counts the rows that hold user (its id, or its hash in a
// sketch of the explicit form) in every table of the schema with a
// user_id column, and in every user sketch.
func userRows(t *testing.T, db *postgres.DB, project int64, user [32]byte) map[string]int64 {
	t.Helper()
	found := map[string]int64{}
	for table, n := range countIn(t, db, "c.column_name = 'user_id'", 4, "project_id = $1 AND user_id = $2", project, user[:]) {
		found[table] = n
	}
	for table, n := range countIn(t, db, "c.udt_name = 'hll'", 6, "project_id = $1 AND tk_sketch_has(users, $2)", project, postgres.UserHash(user)) {
		found[table+" sketches"] = n
	}
	return found
}

// countIn counts the rows matching where in each table (not a partition)
// with a column matching column, at least min tables of them, and returns
// the counts above zero by table.
func countIn(t *testing.T, db *postgres.DB, column string, min int, where string, args ...any) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Pool().Query(ctx, `SELECT c.table_name FROM information_schema.columns c
		JOIN pg_class r ON r.relname = c.table_name AND NOT r.relispartition
		WHERE c.table_schema = 'public' AND `+column)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < min {
		t.Fatalf("tables with %s: %v %v", column, tables, err)
	}
	found := map[string]int64{}
	for _, table := range tables {
		var n int64
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()+` WHERE `+where, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			found[table] = n
		}
	}
	return found
}

// erasureHistory is a project with a generated history, its rollups
// compacted and its periods and retention counted.
func erasureHistory(t *testing.T, db *postgres.DB, name string, seed int64) server.Key {
	t.Helper()
	ctx := context.Background()
	key := project(t, db, name)
	g, err := synth.New(synth.Config{Seed: seed, Users: 150, Days: 40, Events: 6000})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Batches(500, func(body []byte, _ int) error {
		b, err := decode.Batch(body, time.Now(), 0)
		if err != nil {
			return err
		}
		_, err = db.Ingest(ctx, key, b.Events, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CompactRollups(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BuildPeriods(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BuildRetention(ctx); err != nil {
		t.Fatal(err)
	}
	return key
}

// busiestUser returns the user of project with the most events, and how
// many.
func busiestUser(t *testing.T, db *postgres.DB, project int64) ([32]byte, int64) {
	t.Helper()
	var u []byte
	var n int64
	if err := db.Pool().QueryRow(context.Background(), `SELECT user_id, count(*) FROM events WHERE project_id = $1
		GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`, project).Scan(&u, &n); err != nil {
		t.Fatal(err)
	}
	var user [32]byte
	copy(user[:], u)
	return user, n
}

// totals are the counts that hold no user: they stay after an erasure.
func totals(t *testing.T, db *postgres.DB, project int64) (events, users, counted int64) {
	t.Helper()
	if err := db.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events WHERE project_id = $1),
		(SELECT count(DISTINCT user_id) FROM events WHERE project_id = $1),
		(SELECT sum(events) FROM daily_event_counts WHERE project_id = $1)`, project).Scan(&events, &users, &counted); err != nil {
		t.Fatal(err)
	}
	return
}

// Erasing a user removes every row and sketch entry of the user, and only
// those; events of the user recorded before the erasure that arrive later
// are discarded, and those recorded after it are kept.
func TestEraseUser(t *testing.T) {
	ctx := context.Background()
	db := openMaintained(t, postgres.Config{})
	key := erasureHistory(t, db, "erase", 7)
	other := erasureHistory(t, db, "neighbour", 7) // the same history in another project
	user, n := busiestUser(t, db, key.ProjectID)
	if found := userRows(t, db, key.ProjectID, user); found["events"] != n || found["daily_users"] == 0 ||
		found["weekly_users"] == 0 || found["retention_users"] != 1 || len(found) < 8 {
		t.Fatalf("before the erasure, the user is in %v", found)
	}
	events, users, counted := totals(t, db, key.ProjectID)
	otherBefore := userRows(t, db, other.ProjectID, user)

	start := time.Now()
	e, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: user, Actor: "tk_a_test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("erased %+v in %v", e, time.Since(start))
	if e.Events != n || e.UserRows == 0 || e.Sketches == 0 || time.Since(e.ErasedBefore) > time.Minute {
		t.Errorf("erasure %+v, want %d events", e, n)
	}
	if found := userRows(t, db, key.ProjectID, user); len(found) > 0 {
		t.Fatalf("after the erasure, the user is still in %v", found)
	}
	if ev, us, co := totals(t, db, key.ProjectID); ev != events-n || us != users-1 || co != counted {
		t.Errorf("after: %d events, %d users, %d counted; want %d, %d, %d", ev, us, co, events-n, users-1, counted)
	}
	if after := userRows(t, db, other.ProjectID, user); len(after) != len(otherBefore) || after["events"] != otherBefore["events"] {
		t.Errorf("the other project's rows of the same id changed: %v, were %v", after, otherBefore)
	}
	// Sketches still count the others: the rollups' users equal the
	// events' for each day (exact below 160 users).
	var wrong int64
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM (
		SELECT day, hll_cardinality(hll_union_agg(users)) AS sketched FROM daily_platform_counts WHERE project_id = $1 GROUP BY 1) s
		JOIN (SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(DISTINCT user_id) AS users FROM events
		      WHERE project_id = $1 GROUP BY 1) x USING (day)
		WHERE round(s.sketched) <> x.users`, key.ProjectID).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong > 0 {
		t.Errorf("%d days whose sketched users differ from the events' after the erasure", wrong)
	}

	// Late arrivals: recorded before the erasure, discarded; after, kept.
	before, after := eventAt(e.ErasedBefore.Add(-time.Hour), 0), eventAt(time.Now().Add(time.Second), 0)
	before.UserID, after.UserID = user, user
	time.Sleep(1100 * time.Millisecond)
	res, err := db.Ingest(ctx, key, []server.Event{before, after}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Erased != 1 || res.Duplicates != 0 {
		t.Errorf("late events: %+v, want 1 accepted, 1 erased", res)
	}
	if found := userRows(t, db, key.ProjectID, user); found["events"] != 1 {
		t.Errorf("after the late events, the user is in %v; want the event after the erasure only", found)
	}
	// Erasing again takes the event recorded since, and nothing else.
	if e, err = db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: user}); err != nil || e.Events != 1 {
		t.Errorf("erasing again: %+v, %v", e, err)
	}
	log, err := db.AuditLog(ctx, key.ProjectID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var erasures []server.AuditEntry
	for _, a := range log {
		if a.Action == server.AuditUserErase {
			erasures = append(erasures, a)
		}
	}
	if len(erasures) != 2 || erasures[0].Actor != "tk_a_test" || erasures[1].Actor != "command line" {
		t.Errorf("audit log %+v", log)
	}
}

// A write key may ask for a bounded number of erasures a day; admin and
// command-line erasures are not counted.
func TestWriteKeyErasuresAreBounded(t *testing.T) {
	ctx := context.Background()
	db := openMaintained(t, postgres.Config{})
	key := project(t, db, "bounded")
	var u [32]byte
	for i := 0; i < server.WriteKeyErasuresPerDay; i++ {
		u[0], u[1] = byte(i), byte(i>>8)
		if _, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: u, ByWriteKey: true}); err != nil {
			t.Fatal(i, err)
		}
	}
	u[2] = 1
	if _, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: u, ByWriteKey: true}); err != server.ErrTooManyErasures {
		t.Fatalf("erasure past the allowance: %v", err)
	}
	if _, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: u}); err != nil {
		t.Fatalf("an admin erasure past the write keys' allowance: %v", err)
	}
}

// Erasure races ingest of the same user, from many connections: once the
// erasure has returned and the batches in flight are answered, no row of
// the user is left, and every event of the other users is stored.
func TestEraseRacesIngest(t *testing.T) {
	ctx := context.Background()
	db := openMaintained(t, postgres.Config{})
	key := project(t, db, "race")
	var user [32]byte
	user[0] = 0xee
	var stop atomic.Bool
	var others, accepted, erasedEvents atomic.Int64
	var wg sync.WaitGroup
	recorded := time.Now().Add(-time.Minute)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				batch := make([]server.Event, 0, 20)
				for j := 0; j < 20; j++ {
					e := eventAt(recorded, byte(c))
					e.Name = "build"
					if j%2 == 0 {
						e.UserID = user
					} else {
						e.UserID[1] = byte(i)
					}
					batch = append(batch, e)
				}
				res, err := db.Ingest(ctx, key, batch, 0)
				if err != nil {
					t.Error(err)
					return
				}
				others.Add(10)
				accepted.Add(int64(res.Accepted))
				erasedEvents.Add(int64(res.Erased))
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	e, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: user})
	if err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if found := userRows(t, db, key.ProjectID, user); len(found) > 0 {
		t.Fatalf("after the erasure and the ingest, the user is in %v", found)
	}
	var stored int64
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE project_id = $1`, key.ProjectID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != others.Load() || e.Events == 0 || erasedEvents.Load() == 0 {
		t.Errorf("stored %d, the other users sent %d; the erasure took %d, ingest discarded %d",
			stored, others.Load(), e.Events, erasedEvents.Load())
	}
	t.Logf("erased %d events stored before, %d discarded after; %d of the others stored", e.Events, erasedEvents.Load(), stored)
}

// An ingest transaction that looked for tombstones before the erasure's
// was committed, and commits after it: the erasure waits for it, and then
// deletes what it stored. The transaction is played by hand, holding the
// lock ingest holds, so that it sits in that window for as long as the
// test needs.
func TestErasureWaitsForIngestInFlight(t *testing.T) {
	ctx := context.Background()
	db := openMaintained(t, postgres.Config{})
	key := project(t, db, "in-flight")
	var user [32]byte
	user[0] = 0xab
	ev := eventAt(time.Now().Add(-time.Minute), 0)
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1, $2)`, int32(postgres.ErasureLockClass), int32(key.ProjectID)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (project_id, event_id, occurred_at, service_name, service_version, event_type,
		name, user_id, session_id, sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata)
		VALUES ($1, $2, $3, 'cli', '1.0.0', 'command_executed', 'build', $4, $2, 'telemetry-kit-go', '0.1.0', 'linux', 'amd64',
		        false, '', 'go1.26.8', '{}')`, key.ProjectID, ev.EventID, ev.Timestamp, user[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO daily_users (project_id, day, service_name, user_id, service_version, os, arch, ci)
		VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC')::date, 'cli', $3, '1.0.0', 'linux', 'amd64', false)`,
		key.ProjectID, ev.Timestamp, user[:]); err != nil {
		t.Fatal(err)
	}
	done := make(chan server.Erasure, 1)
	go func() {
		e, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: key.ProjectID, UserID: user})
		if err != nil {
			t.Error(err)
		}
		done <- e
	}()
	select {
	case e := <-done:
		t.Fatalf("the erasure returned (%+v) while an ingest transaction that may hold the user was open", e)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if e := <-done; e.Events != 1 {
		t.Errorf("the erasure took %d events, want the one committed meanwhile", e.Events)
	}
	if found := userRows(t, db, key.ProjectID, user); len(found) > 0 {
		t.Errorf("after the erasure, the user is in %v", found)
	}
}

// Deleting a project removes every row of it in every table with a
// project_id, keeps the other projects' and the audit log, and its keys
// stop working.
func TestDeleteProject(t *testing.T) {
	ctx := context.Background()
	db := openMaintained(t, postgres.Config{})
	gone := erasureHistory(t, db, "gone", 3)
	kept := erasureHistory(t, db, "kept", 3)
	count := func(project int64) map[string]int64 {
		n := countIn(t, db, "c.column_name = 'project_id'", 20, "project_id = $1", project)
		var p int64
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM projects WHERE id = $1`, project).Scan(&p); err != nil {
			t.Fatal(err)
		}
		if p > 0 {
			n["projects"] = p
		}
		return n
	}
	before, keptBefore := count(gone.ProjectID), count(kept.ProjectID)
	if before["events"] == 0 || before["period_counts"] == 0 || before["api_keys"] == 0 || before["retention_users"] == 0 {
		t.Fatalf("before: %v", before)
	}
	removed, err := db.DeleteProject(ctx, gone.ProjectID, "")
	if err != nil {
		t.Fatal(err)
	}
	if removed["events"] != before["events"] || removed["api_keys"] != before["api_keys"] {
		t.Errorf("removed %v, there were %v", removed, before)
	}
	after := count(gone.ProjectID)
	if len(after) != 1 || after["audit_log"] == 0 {
		t.Errorf("after deleting the project, its rows: %v (only the audit log may stay)", after)
	}
	if k := count(kept.ProjectID); len(k) != len(keptBefore) || k["events"] != keptBefore["events"] {
		t.Errorf("the other project changed: %v, was %v", k, keptBefore)
	}
	if _, err := db.Ingest(ctx, gone, []server.Event{eventAt(time.Now(), 1)}, 0); err == nil {
		t.Error("the deleted project's write key still ingests")
	}
	log, _ := db.AuditLog(ctx, gone.ProjectID, 0, 1000)
	if last := log[len(log)-1]; last.Action != server.AuditProjectDelete || !strings.Contains(string(last.Detail), `"name": "gone"`) {
		t.Errorf("last audit entry %+v", last)
	}
	if _, err := db.DeleteProject(ctx, gone.ProjectID, ""); !errors.Is(err, postgres.ErrNotFound) {
		t.Errorf("deleting it again: %v", err)
	}
}

// A project's own storage window: the maintenance deletes its events and
// per-day rows before it, and leaves other projects' alone; dashboard
// sessions see the window.
func TestProjectRetention(t *testing.T) {
	ctx := context.Background()
	db := openMaintained(t, postgres.Config{})
	short := erasureHistory(t, db, "short", 5)
	long := erasureHistory(t, db, "long", 5)
	oldest := func(project int64, table, col string) time.Time {
		var at time.Time
		if err := db.Pool().QueryRow(ctx, `SELECT min(`+col+`)::timestamptz FROM `+table+` WHERE project_id = $1`, project).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	longBefore := oldest(long.ProjectID, "events", "occurred_at")
	if time.Since(longBefore) < 30*24*time.Hour {
		t.Fatalf("the history starts %v", longBefore)
	}
	if err := db.SetRetention(ctx, short.ProjectID, 10); err != nil {
		t.Fatal(err)
	}
	m, err := db.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-10 * 24 * time.Hour)
	if m.ProjectEvents == 0 {
		t.Error("the maintenance deleted no event of the short window")
	}
	for _, tc := range []struct{ table, col string }{{"events", "occurred_at"}, {"daily_users", "day"},
		{"daily_event_counts", "day"}, {"daily_platform_counts", "day"}} {
		if at := oldest(short.ProjectID, tc.table, tc.col); at.Before(cutoff.Truncate(24 * time.Hour)) {
			t.Errorf("%s of the short window start %v, before %v", tc.table, at, cutoff)
		}
	}
	if at := oldest(long.ProjectID, "events", "occurred_at"); !at.Equal(longBefore) {
		t.Errorf("the other project's events now start %v, were %v", at, longBefore)
	}
	ps, _ := db.Projects(ctx)
	for _, p := range ps {
		if want := map[int64]int{short.ProjectID: 10, long.ProjectID: 0}[p.ID]; p.RetentionDays != want {
			t.Errorf("project %s: retention %d days, want %d", p.Name, p.RetentionDays, want)
		}
	}
	if err := db.SetRetention(ctx, 999999, 10); !errors.Is(err, postgres.ErrNotFound) {
		t.Errorf("a missing project's retention: %v", err)
	}
}

// Every primary key and unique index of a table with a project_id is led
// by project_id, so that the schema can be distributed by project (see
// docs/self-hosting.md, "Beyond one primary"). The tables without
// project_id, or keyed otherwise, are the small ones a distributed
// database would keep whole on every node.
func TestUniqueIndexesLedByProject(t *testing.T) {
	ctx := context.Background()
	db := open(t, postgres.Config{})
	reference := map[string]bool{"projects": true, "api_keys": true, "dashboard_sessions": true,
		"dashboard_session_keys": true, "goose_db_version": true}
	rows, err := db.Pool().Query(ctx, `SELECT c.relname, pg_get_indexdef(x.indexrelid)
		FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
		WHERE x.indisunique AND c.relnamespace = 'public'::regnamespace AND NOT c.relispartition`)
	if err != nil {
		t.Fatal(err)
	}
	type index struct{ table, def string }
	indexes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var i index
		return i, r.Scan(&i.table, &i.def)
	})
	if err != nil || len(indexes) < 20 {
		t.Fatalf("%d unique indexes: %v", len(indexes), err)
	}
	for _, i := range indexes {
		if !reference[i.table] && !strings.Contains(i.def, "(project_id") {
			t.Errorf("%s: %s is not led by project_id", i.table, i.def)
		}
	}
}
