package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func open(t *testing.T, cfg postgres.Config) *postgres.DB {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pgtest.New(t)
	}
	db, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// openMaintained is open with the partitions made.
func openMaintained(t *testing.T, cfg postgres.Config) *postgres.DB {
	t.Helper()
	db := open(t, cfg)
	if _, err := db.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func partitions(t *testing.T, db *postgres.DB) []string {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(),
		`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		 WHERE i.inhparent = 'events'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

// project creates a project with one write key and returns that key.
func project(t *testing.T, db *postgres.DB, name string) server.Key {
	t.Helper()
	_, w, _ := server.NewKey(server.KeyWrite)
	_, keys, err := db.CreateProject(context.Background(), name, []server.Key{w})
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

func eventAt(t time.Time, user byte) server.Event {
	id, _ := uuid.NewV7()
	ms := t.UnixMilli()
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	var u [32]byte
	u[0] = user
	return server.Event{EventID: id, Timestamp: t, ServiceName: "cli", EventType: "command_executed",
		UserID: u, SessionID: id, Metadata: []byte(`{}`)}
}

// Maintenance keeps monthly partitions from the oldest retained month to
// two months ahead, and drops the partitions (and their events) that fall
// out of the retention window as time passes.
func TestMaintainCreatesAndDropsPartitions(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db := open(t, postgres.Config{Retention: 60 * 24 * time.Hour, Now: clock})
	ctx := context.Background()
	m, err := db.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"events_p2026_01", "events_p2026_02", "events_p2026_03", "events_p2026_04", "events_p2026_05"}
	if got := partitions(t, db); !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	if len(m.Created) != 5 || len(m.Dropped) != 0 {
		t.Fatalf("%+v", m)
	}
	if _, err := db.Maintain(ctx); err != nil {
		t.Fatalf("second run: %v", err)
	}

	key := project(t, db, "retention")
	jan := eventAt(time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC), 1)
	mar := eventAt(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), 2)
	res, err := db.Ingest(ctx, key, []server.Event{jan, mar}, 0)
	if err != nil || res.Accepted != 2 {
		t.Fatalf("ingest: %+v %v", res, err)
	}

	// Two months later, January and February are past the window.
	now = time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)
	m, err = db.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m.Dropped)
	if !slices.Equal(m.Dropped, []string{"events_p2026_01", "events_p2026_02"}) {
		t.Fatalf("dropped %v", m.Dropped)
	}
	want = []string{"events_p2026_03", "events_p2026_04", "events_p2026_05", "events_p2026_06", "events_p2026_07"}
	if got := partitions(t, db); !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	var n int
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d events left, want 1 (March)", n)
	}
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM daily_users`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d daily_users rows left, want 1 (March)", n)
	}
}

// The maintenance loop of a running server keeps the partitions as time
// passes: the months ahead appear, the expired ones go.
func TestRunMaintenance(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	db := open(t, postgres.Config{Retention: 60 * 24 * time.Hour, Now: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		db.RunMaintenance(ctx, 20*time.Millisecond)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := partitions(t, db); !slices.Equal(got, want); got = partitions(t, db) {
			if time.Now().After(deadline) {
				t.Fatalf("partitions %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor([]string{"events_p2026_01", "events_p2026_02", "events_p2026_03", "events_p2026_04", "events_p2026_05"})
	now.Store(time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC).UnixNano())
	waitFor([]string{"events_p2026_03", "events_p2026_04", "events_p2026_05", "events_p2026_06", "events_p2026_07"})
}

// An ingest that finds its partition missing creates it and succeeds.
func TestIngestCreatesMissingPartition(t *testing.T) {
	db := open(t, postgres.Config{})
	ctx := context.Background()
	key := project(t, db, "missing")
	res, err := db.Ingest(ctx, key, []server.Event{eventAt(time.Now(), 1)}, 0)
	if err != nil || res.Accepted != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if len(partitions(t, db)) == 0 {
		t.Fatal("no partitions")
	}
}

// Ingest checks the key in its transaction: a key that is not (or no
// longer) a valid write key of the project stores nothing, on the COPY path
// and on the statement path alike.
func TestIngestChecksKey(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	ctx := context.Background()
	key := project(t, db, "checked")
	other := project(t, db, "other")
	known := eventAt(time.Now(), 1)
	if res, err := db.Ingest(ctx, key, []server.Event{known}, 0); err != nil || res.Accepted != 1 {
		t.Fatalf("valid key: %+v %v", res, err)
	}
	_, r, _ := server.NewKey(server.KeyRead)
	r.ProjectID = key.ProjectID
	read, err := db.CreateKey(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	wrongProject := other
	wrongProject.ProjectID = key.ProjectID
	unknown := key
	unknown.ID = 999999
	cases := []struct {
		name string
		key  server.Key
		want error
	}{
		{"read key", read, server.ErrNotWriteKey},
		{"key of another project", wrongProject, server.ErrKeyNotFound},
		{"unknown key", unknown, server.ErrKeyNotFound},
	}
	for _, c := range cases {
		for _, evs := range [][]server.Event{{eventAt(time.Now(), 2)}, {eventAt(time.Now(), 3), known}} {
			if res, err := db.Ingest(ctx, c.key, evs, 5); !errors.Is(err, c.want) {
				t.Fatalf("%s, %d events: %+v %v, want %v", c.name, len(evs), res, err, c.want)
			}
		}
	}
	if err := db.RevokeKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	for _, evs := range [][]server.Event{{eventAt(time.Now(), 2)}, {eventAt(time.Now(), 3), known}, nil} {
		if res, err := db.Ingest(ctx, key, evs, 5); !errors.Is(err, server.ErrKeyRevoked) {
			t.Fatalf("revoked, %d events: %+v %v", len(evs), res, err)
		}
	}
	var n, users, counted, dropped int
	db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM daily_users),
		(SELECT coalesce(sum(events), 0) FROM daily_event_counts), (SELECT coalesce(sum(dropped), 0) FROM daily_data_loss)`).
		Scan(&n, &users, &counted, &dropped)
	if n != 1 || users != 1 || counted != 1 || dropped != 0 {
		t.Fatalf("stored %d events, %d users, %d counted, %d dropped; want 1, 1, 1, 0", n, users, counted, dropped)
	}
}

// One connection goes through a success, a batch with a known event, a
// refused key and a request that times out while waiting for a lock; it
// stores and counts exactly the events acknowledged, and the pool keeps
// working.
func TestIngestConnectionReuse(t *testing.T) {
	db := openMaintained(t, postgres.Config{MaxConns: 1})
	ctx := context.Background()
	key := project(t, db, "reuse")
	known := eventAt(time.Now(), 1)
	acked := 0
	ingest := func(ctx context.Context, k server.Key, evs ...server.Event) (server.IngestResult, error) {
		res, err := db.Ingest(ctx, k, evs, 0)
		if err == nil {
			acked += res.Accepted
		}
		return res, err
	}
	if res, err := ingest(ctx, key, known, eventAt(time.Now(), 2)); err != nil || res.Accepted != 2 {
		t.Fatalf("first: %+v %v", res, err)
	}
	if res, err := ingest(ctx, key, eventAt(time.Now(), 3), known); err != nil || res.Accepted != 1 || res.Duplicates != 1 {
		t.Fatalf("with a known event: %+v %v", res, err)
	}
	bad := key
	bad.ID = 999999
	if _, err := ingest(ctx, bad, eventAt(time.Now(), 4)); !errors.Is(err, server.ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}

	// Another session holds a lock the rollups need: the request times out.
	tx := lockTable(t, db, `LOCK TABLE daily_users IN EXCLUSIVE MODE`)
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := ingest(tctx, key, eventAt(time.Now(), 5))
	cancel()
	if err == nil {
		t.Fatal("ingest under a lock: no error")
	}
	tx.Rollback(ctx)

	if res, err := ingest(ctx, key, eventAt(time.Now(), 6), eventAt(time.Now(), 7)); err != nil || res.Accepted != 2 {
		t.Fatalf("after the timeout: %+v %v", res, err)
	}
	// Wait for the timed-out request's backend to finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var busy int
		db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&busy)
		if busy == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n, counted int
	db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT coalesce(sum(events), 0) FROM daily_event_counts)`).
		Scan(&n, &counted)
	if n != acked || counted != acked {
		t.Fatalf("stored %d, counted %d, acknowledged %d", n, counted, acked)
	}
}

// lockTable runs lock (a LOCK TABLE statement) in a transaction of a
// session of its own and returns that transaction; the session ends with
// the test.
func lockTable(t *testing.T, db *postgres.DB, lock string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, db.Pool().Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locker.Close(ctx) })
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lock); err != nil {
		t.Fatal(err)
	}
	return tx
}

// A request whose COPY waits for a lock, with more data than the socket
// buffers hold, so that writing it blocks too, ends with its context:
// nothing of it is stored, and the next request is stored as usual.
func TestIngestCanceledWhileCopyWaits(t *testing.T) {
	db := openMaintained(t, postgres.Config{MaxConns: 1})
	ctx := context.Background()
	key := project(t, db, "blocked")
	tx := lockTable(t, db, `LOCK TABLE events IN SHARE MODE`)
	// 100 events of 80 KB each: 8 MB of COPY data.
	pad := []byte(`{"pad":"` + strings.Repeat("x", 80<<10) + `"}`)
	var big []server.Event
	for i := range 100 {
		e := eventAt(time.Now(), byte(i))
		e.Metadata = pad
		big = append(big, e)
	}
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := db.Ingest(tctx, key, big, 0)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ingest under a lock: no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ingest under a lock did not end with its context")
	}
	cancel()
	tx.Rollback(ctx)

	if res, err := db.Ingest(ctx, key, []server.Event{eventAt(time.Now(), 1), eventAt(time.Now(), 2)}, 0); err != nil || res.Accepted != 2 {
		t.Fatalf("after the timeout: %+v %v", res, err)
	}
	var n, counted int
	db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT coalesce(sum(events), 0) FROM daily_event_counts)`).
		Scan(&n, &counted)
	if n != 2 || counted != 2 {
		t.Fatalf("stored %d, counted %d, want 2", n, counted)
	}
}

// Concurrent requests share transactions; a shared transaction that fails
// (a known event, a revoked key, an event sent by two requests at once)
// leaves each of its requests to be stored on its own, with the outcome it
// would have had alone.
func TestSharedTransactions(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	ctx := context.Background()
	key := project(t, db, "shared")
	other := project(t, db, "shared-other")
	_, w, _ := server.NewKey(server.KeyWrite)
	w.ProjectID = key.ProjectID
	revoked, err := db.CreateKey(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	known := eventAt(time.Now(), 1)
	if _, err := db.Ingest(ctx, key, []server.Event{known}, 0); err != nil {
		t.Fatal(err)
	}
	want := map[int64]int{key.ProjectID: 1, other.ProjectID: 0}
	var mu sync.Mutex
	for round := 0; round < 50 && (round < 3 || db.SharedTransactions() == 0); round++ {
		const requests = 32
		twice := eventAt(time.Now(), 2) // sent by several requests
		twiceAccepted := 0
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < requests; i++ {
			k, evs := key, make([]server.Event, 0, 21)
			for j := 0; j < 20; j++ {
				evs = append(evs, eventAt(time.Now(), byte(j)))
			}
			switch i % 8 {
			case 1:
				evs = append(evs, known)
			case 2:
				k = revoked
			case 3:
				k = other
			case 4:
				evs = append(evs, twice)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := db.Ingest(ctx, k, evs, 1)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case k == revoked:
					if !errors.Is(err, server.ErrKeyRevoked) {
						t.Errorf("revoked key: %+v %v", res, err)
					}
				case err != nil:
					t.Errorf("request %d: %v", i, err)
				case i%8 == 1 && (res.Accepted != 20 || res.Duplicates != 1):
					t.Errorf("with a known event: %+v", res)
				case i%8 != 1 && i%8 != 4 && (res.Accepted != len(evs) || res.Duplicates != 0):
					t.Errorf("request %d: %+v", i, res)
				default:
					want[k.ProjectID] += res.Accepted
					if i%8 == 4 {
						twiceAccepted += res.Accepted
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if twiceAccepted != 20*(requests/8)+1 {
			t.Fatalf("the requests with an event sent twice accepted %d events, want %d", twiceAccepted, 20*(requests/8)+1)
		}
	}
	if db.SharedTransactions() == 0 {
		t.Fatal("no transaction was shared")
	}
	for p, n := range want {
		var stored, counted, users int
		db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events WHERE project_id = $1),
			(SELECT coalesce(sum(events), 0) FROM daily_event_counts WHERE project_id = $1),
			(SELECT count(*) FROM daily_users WHERE project_id = $1)`, p).Scan(&stored, &counted, &users)
		if stored != n || counted != n {
			t.Errorf("project %d: stored %d, counted %d, want %d", p, stored, counted, n)
		}
		if users == 0 || users%20 != 0 { // 20 per UTC day
			t.Errorf("project %d: %d users, want 20 a day", p, users)
		}
	}
}

// A project has at most two ingest transactions at work, and a project
// whose transactions are held up holds up no other project: while a lock
// keeps a project's transactions waiting, its further requests wait in the
// server (no third transaction reaches PostgreSQL) and another project's
// requests are stored at once.
func TestProjectTransactions(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	ctx := context.Background()
	held, free := project(t, db, "held"), project(t, db, "free")
	// A data-loss row for held's day, for a transaction of the test to lock:
	// every ingest of held below reports a loss and so must update it.
	if _, err := db.Ingest(ctx, held, []server.Event{eventAt(time.Now(), 1)}, 1); err != nil {
		t.Fatal(err)
	}
	lock, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `SELECT * FROM daily_data_loss WHERE project_id = $1 FOR UPDATE`, held.ProjectID); err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		var n int
		db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return n
	}
	results := make(chan error, 3)
	ingestHeld := func() {
		_, err := db.Ingest(ctx, held, []server.Event{eventAt(time.Now(), 2), eventAt(time.Now(), 3)}, 1)
		results <- err
	}
	go ingestHeld()
	deadline := time.Now().Add(10 * time.Second)
	for waiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first request for the held project never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	go ingestHeld()
	go ingestHeld()
	for waiting() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second transaction of the held project never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The other project is not held up.
	for i := range 5 {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := db.Ingest(fctx, free, []server.Event{eventAt(time.Now(), byte(i))}, 0)
		cancel()
		if err != nil || res.Accepted != 1 {
			t.Fatalf("request %d for the other project while one is held: %+v %v", i, res, err)
		}
	}
	// Time for a third transaction to reach the lock, were there one.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if n := waiting(); n != 2 {
			t.Fatalf("%d sessions wait for the lock, want 2: the held project's third request must wait in the server", n)
		}
	}
	select {
	case err := <-results:
		t.Fatalf("a request for the held project ended while it was held: %v", err)
	default:
	}

	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	var stored, dropped int
	db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events WHERE project_id = $1),
		(SELECT sum(dropped) FROM daily_data_loss WHERE project_id = $1)`, held.ProjectID).Scan(&stored, &dropped)
	if stored != 7 || dropped != 4 {
		t.Errorf("held project: %d events, %d dropped; want 7 and 4", stored, dropped)
	}
}

func TestKeys(t *testing.T) {
	db := open(t, postgres.Config{})
	ctx := context.Background()
	ws, w, _ := server.NewKey(server.KeyWrite)
	p, keys, err := db.CreateProject(ctx, "keys", []server.Key{w})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateProject(ctx, "keys", nil); !errors.Is(err, postgres.ErrExists) {
		t.Fatalf("duplicate project: %v", err)
	}
	k, err := db.KeyByHash(ctx, server.HashKey(ws))
	if err != nil || k.ID != keys[0].ID || k.ProjectID != p.ID || k.Kind != server.KeyWrite || k.RevokedAt != nil {
		t.Fatalf("%+v %v", k, err)
	}
	if !strings.HasPrefix(ws, k.Prefix) || len(k.Prefix) >= len(ws) {
		t.Fatalf("prefix %q of %q", k.Prefix, ws)
	}
	if _, err := db.KeyByHash(ctx, server.HashKey(ws+"x")); !errors.Is(err, server.ErrKeyNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	_, r, _ := server.NewKey(server.KeyRead)
	r.ProjectID = p.ID
	if _, err := db.CreateKey(ctx, r); err != nil {
		t.Fatal(err)
	}
	_, r2, _ := server.NewKey(server.KeyRead)
	r2.ProjectID = 999999
	if _, err := db.CreateKey(ctx, r2); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("key for missing project: %v", err)
	}
	if err := db.RevokeKey(ctx, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeKey(ctx, 999999); !errors.Is(err, postgres.ErrNotFound) {
		t.Fatalf("revoke missing: %v", err)
	}
	all, err := db.Keys(ctx, p.ID)
	if err != nil || len(all) != 2 || all[0].RevokedAt == nil || all[1].RevokedAt != nil {
		t.Fatalf("%+v %v", all, err)
	}
	// The key is stored as its SHA-256 hash (computed here by
	// PostgreSQL), and no column holds the key or the part of it after
	// the displayed prefix.
	var hashed, clear int
	err = db.Pool().QueryRow(ctx, `SELECT
		(SELECT count(*) FROM api_keys WHERE id = $1 AND hash = sha256(convert_to($2, 'UTF8'))),
		(SELECT count(*) FROM api_keys a WHERE strpos(row_to_json(a)::text, $2) > 0 OR strpos(row_to_json(a)::text, $3) > 0)`,
		keys[0].ID, ws, ws[len(k.Prefix):]).Scan(&hashed, &clear)
	if err != nil || hashed != 1 || clear != 0 {
		t.Fatalf("stored as its hash: %d row(s); rows holding the key: %d; %v", hashed, clear, err)
	}
}

// Migrations from several processes at once apply once.
func TestConcurrentMigrate(t *testing.T) {
	url := pgtest.New(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			db, err := postgres.Open(context.Background(), postgres.Config{URL: url})
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			if err := db.Migrate(context.Background()); err != nil {
				errs <- err
				return
			}
			_, err = db.Maintain(context.Background())
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// The migration that adds the flag rollup fills it from the events stored
// before, by the rule the server applies at ingest (server.Event.Flags).
func TestFlagRollupMigrationCountsStoredEvents(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: pgtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.MigrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", wire.MaxFlagChars)
	many := make([]string, wire.MaxRollupFlags+3)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("f%d", i))
	}
	metadata := []struct{ eventType, md string }{
		{"command_executed", `{"command":"build","flags":["watch","output"],"flag_values":{"output":"json"}}`},
		{"command_executed", `{"command":"build","flags":["watch","watch","",7,null,"` + long + `","` + long + `y"]}`},
		{"command_executed", `{"command":"build","flags":["output"],"flag_values":{"output":"` + long + `y","watch":"x"}}`},
		{"command_executed", `{"command":"build","flags":["output"],"flag_values":{"output":3}}`},
		{"command_executed", `{"command":"serve","flags":"watch"}`},
		{"command_executed", `{"command":"serve","flags":[` + strings.Join(many, ",") + `]}`},
		{"command_executed", `{"command":"serve"}`},
		{"feature_used", `{"feature":"export","flags":["watch"]}`},
	}
	// Each event through the server's decoder too, for the expected counts.
	now := time.Now().UTC().Truncate(time.Millisecond)
	want := map[string]int64{}
	for _, m := range metadata {
		id := uuid.Must(uuid.NewV7())
		body := fmt.Sprintf(`{"events":[{"event_id":%q,"schema_version":1,"service_name":"my-cli","service_version":"1.0.0",`+
			`"event_type":%q,"timestamp":%q,"user_id":"anon_%s","session_id":%q,"sdk":{"name":"go","version":"1"},`+
			`"env":{"os":"linux","arch":"amd64","ci":false,"go_version":"go1.26"},"metadata":%s}]}`,
			id, m.eventType, now.Format(time.RFC3339Nano), strings.Repeat("ab", 32), uuid.Must(uuid.NewV7()), m.md)
		b, err := decode.Batch([]byte(body), time.Now(), 0)
		if err != nil || len(b.Events) != 1 {
			t.Fatalf("decode %s: %v %+v", m.md, err, b)
		}
		ev := b.Events[0]
		for _, f := range ev.Flags {
			v := "-"
			if f.HasValue {
				v = f.Value
			}
			want[ev.Name+"|"+f.Name+"|"+v]++
		}
		_, err = db.Pool().Exec(ctx, `INSERT INTO events (project_id, event_id, occurred_at, service_name, service_version,
			event_type, name, user_id, session_id, sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata)
			VALUES (1, $1, $2, 'my-cli', '1.0.0', $3, $4, '\x00', $5, 'go', '1', 'linux', 'amd64', false, '', 'go1.26', $6)`,
			id, now, m.eventType, ev.Name, uuid.Must(uuid.NewV7()), m.md)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(want) != 4+wire.MaxRollupFlags {
		t.Fatalf("the decoder counts %d flag rows: %v", len(want), want)
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool().Query(ctx, `SELECT command, flag, coalesce(value, '-'), events FROM daily_flag_counts
		WHERE project_id = 1 AND service_name = 'my-cli' AND service_version = '1.0.0' AND day = $1`,
		now.Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for rows.Next() {
		var command, flag, value string
		var n int64
		if err := rows.Scan(&command, &flag, &value, &n); err != nil {
			t.Fatal(err)
		}
		got[command+"|"+flag+"|"+value] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("after the migration\n got %v\nwant %v", got, want)
	}
	var flagUsers float64
	if err := db.Pool().QueryRow(ctx, `SELECT hll_cardinality(hll_union_agg(users)) FROM daily_flag_counts
		WHERE project_id = 1`).Scan(&flagUsers); err != nil || flagUsers != 1 {
		t.Fatalf("the flags' users after the migration: %v %v, want 1", flagUsers, err)
	}
}

// The migration that adds the platform and the error kind to
// daily_event_counts counts the stored events again by them, keeping
// folded what the caps had folded.
func TestEventCountsPlatformMigration(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: pgtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.MigrateTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	key := project(t, db, "platform")
	now := time.Now().UTC().Truncate(time.Millisecond)
	day := now.Format(time.DateOnly)
	// Admitted: the service, the type, the name and version 1.0; not 2.0.
	if _, err := db.Pool().Exec(ctx, `INSERT INTO rollup_values (project_id, day, dim, value, added)
		VALUES ($1, $2, 1, 'cli', $2), ($1, $2, 2, '1.0', $2), ($1, $2, 3, 'command_executed', $2),
		       ($1, $2, 4, 'command_executed' || chr(31) || 'build', $2), ($1, $2, 7, 'old-row', $2)`,
		key.ProjectID, day); err != nil {
		t.Fatal(err)
	}
	for i, ev := range []struct {
		version, os string
		ci          bool
		errorKind   *string
	}{
		{"1.0", "linux", false, nil}, {"1.0", "linux", false, nil}, {"1.0", "darwin", true, nil},
		{"1.0", "linux", false, ptr("usage")}, {"2.0", "windows", false, ptr("usage")},
	} {
		id := uuid.Must(uuid.NewV7())
		if _, err := db.Pool().Exec(ctx, `INSERT INTO events (project_id, event_id, occurred_at, service_name,
			service_version, event_type, name, success, duration_ms, error_kind, user_id, session_id, sdk_name,
			sdk_version, os, arch, ci, ci_name, go_version, metadata)
			VALUES ($1, $2, $3, 'cli', $4, 'command_executed', 'build', $5, $6, $7, $8, $2, 'go', '1', $9, 'amd64', $10,
			        '', 'go1.26', '{}')`,
			key.ProjectID, id, now, ev.version, ev.errorKind == nil, 10*(i+1), ev.errorKind, make([]byte, 32), ev.os,
			ev.ci); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	got := sums(t, db, key.ProjectID, `SELECT concat_ws('|', service_version, os, arch, ci, success, coalesce(error_kind, '-'),
		duration_ms_sum), events FROM daily_event_counts WHERE project_id = $1`)
	want := map[string]int64{
		"1.0|linux|amd64|f|t|-|30":           2,
		"1.0|darwin|amd64|t|t|-|30":          1,
		"1.0|linux|amd64|f|f|usage|40":       1,
		"(other)|windows|amd64|f|f|usage|50": 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("daily_event_counts after the migration\n got %v\nwant %v", got, want)
	}
	// The sketches, digests and times of the recounted rows, and the
	// rollups made from them, hold the stored events too.
	extra := sums(t, db, key.ProjectID, `SELECT 'users', round(hll_cardinality(hll_union_agg(users)))::bigint
		FROM daily_event_counts WHERE project_id = $1
		UNION ALL SELECT 'p50', tdigest_percentile(durations, 0.5)::bigint FROM daily_event_counts WHERE project_id = $1
		UNION ALL SELECT 'timed', count(*) FROM daily_event_counts WHERE project_id = $1 AND last_at IS NOT NULL
		UNION ALL SELECT 'platform', sum(events)::bigint FROM daily_platform_counts WHERE project_id = $1
		UNION ALL SELECT 'weeks', count(*) FROM weekly_users WHERE project_id = $1`)
	if extra["users"] != 1 || extra["p50"] != 30 || extra["timed"] != 4 || extra["platform"] != 5 || extra["weeks"] != 3 {
		t.Errorf("after the migration: %v; want 1 user, a median of 30 ms, 4 rows with times, 5 events by platform, "+
			"3 user-weeks (1.0 linux, 1.0 darwin CI, 2.0 windows)", extra)
	}
	if n := sums(t, db, key.ProjectID, `SELECT 'rows', count(*) FROM rollup_values WHERE project_id = $1 AND dim = 7`); n["rows"] != 0 {
		t.Errorf("%d admitted rows of the old form left", n["rows"])
	}
}

func ptr[T any](v T) *T { return &v }
