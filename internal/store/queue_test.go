package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// newQueue opens a queue in a fresh directory.
func newQueue(t testing.TB, opts store.Options) *store.Queue {
	t.Helper()
	q, err := store.Open(filepath.Join(t.TempDir(), "queue.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func rec(id string) store.Record {
	return store.Record{ID: id, Data: []byte(`{"event_id":"` + id + `"}`)}
}

func recs(ids ...string) []store.Record {
	out := make([]store.Record, len(ids))
	for i, id := range ids {
		out[i] = rec(id)
	}
	return out
}

// allIDs lists the queue's IDs in order.
func allIDs(t testing.TB, q *store.Queue) []string {
	t.Helper()
	var ids []string
	if err := q.All(context.Background(), func(r store.Record) error {
		ids = append(ids, r.ID)
		return nil
	}); err != nil {
		t.Fatalf("All: %v", err)
	}
	return ids
}

func mustLen(t testing.TB, q *store.Queue) int {
	t.Helper()
	n, err := q.Len(context.Background())
	if err != nil {
		t.Fatalf("Len: %v", err)
	}
	return n
}

func mustDropped(t testing.TB, q *store.Queue) uint64 {
	t.Helper()
	n, err := q.Dropped(context.Background())
	if err != nil {
		t.Fatalf("Dropped: %v", err)
	}
	return n
}

// logBuffer is a Logger whose output the test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestOpenValidates(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		opts store.Options
	}{
		{"empty path", "", store.Options{}},
		{"negative events", filepath.Join(dir, "q.db"), store.Options{MaxEvents: -1}},
		{"negative bytes", filepath.Join(dir, "q.db"), store.Options{MaxBytes: -1}},
		{"negative timeout", filepath.Join(dir, "q.db"), store.Options{LockTimeout: -time.Second}},
		{"directory", dir, store.Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := store.Open(tc.path, tc.opts); !errors.Is(err, store.ErrInvalidOptions) {
				t.Fatalf("Open: got %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestOpenCreatesPrivateDirWithoutFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc", "nested", "queue.db")
	q, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Path() != path {
		t.Errorf("Path() = %q, want %q", q.Path(), path)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %o, want 700", perm)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created or opened the queue file: %v", err)
	}
}

func TestFIFOOrder(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{})
	for _, id := range []string{"e1", "e2", "e3"} {
		if err := q.Append(ctx, rec(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Append(ctx, recs("e4", "e5", "e6")...); err != nil {
		t.Fatal(err)
	}
	want := []string{"e1", "e2", "e3", "e4", "e5", "e6"}
	if got := allIDs(t, q); !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
	b, err := q.Peek(ctx, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range b.Records {
		got = append(got, r.ID)
		if want := rec(r.ID).Data; !bytes.Equal(r.Data, want) {
			t.Errorf("%s: data %q, want %q", r.ID, r.Data, want)
		}
	}
	if !slices.Equal(got, want[:4]) {
		t.Fatalf("Peek(4) = %v, want %v", got, want[:4])
	}
	if n := mustLen(t, q); n != 6 {
		t.Fatalf("Peek removed records: Len = %d", n)
	}
}

func TestPeekByteLimit(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{})
	data := bytes.Repeat([]byte("x"), 100)
	for i := range 5 {
		if err := q.Append(ctx, store.Record{ID: fmt.Sprint("e", i), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		max      int
		maxBytes int
		want     int
	}{
		{"bytes bound", 0, 250, 2},
		{"exact fit", 0, 300, 3},
		{"at least one", 10, 10, 1},
		{"count bound", 4, 1000, 4},
		{"no bounds", 0, 0, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := q.Peek(ctx, tc.max, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Records) != tc.want {
				t.Fatalf("got %d records, want %d", len(b.Records), tc.want)
			}
			if b.Records[0].ID != "e0" {
				t.Fatalf("first record %s, want e0", b.Records[0].ID)
			}
		})
	}
}

func TestPeekEmpty(t *testing.T) {
	q := newQueue(t, store.Options{})
	b, err := q.Peek(context.Background(), 10, 0)
	if err != nil || len(b.Records) != 0 || b.Dropped != 0 {
		t.Fatalf("Peek on empty queue = %+v, %v", b, err)
	}
}

func TestDedupByID(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{})
	if err := q.Append(ctx, store.Record{ID: "a", Data: []byte("first")}, rec("b")); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, store.Record{ID: "a", Data: []byte("second")}, rec("c"), rec("c")); err != nil {
		t.Fatal(err)
	}
	if got, want := allIDs(t, q), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
	b, _ := q.Peek(ctx, 1, 0)
	if string(b.Records[0].Data) != "first" {
		t.Fatalf("duplicate replaced the data: %q", b.Records[0].Data)
	}
	// Acknowledged IDs may be queued again: the index follows the queue.
	if err := q.Ack(ctx, []string{"a"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, rec("a")); err != nil {
		t.Fatal(err)
	}
	if got, want := allIDs(t, q), []string{"b", "c", "a"}; !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
}

func TestLimitsDropOldestAndCount(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		opts        store.Options
		appends     int
		dataLen     int
		wantIDs     []string
		wantDropped uint64
	}{
		{"max events", store.Options{MaxEvents: 3}, 5, 10, []string{"e2", "e3", "e4"}, 2},
		{"max bytes", store.Options{MaxBytes: 25}, 5, 10, []string{"e3", "e4"}, 3},
		{"under limits", store.Options{MaxEvents: 5, MaxBytes: 50}, 5, 10, []string{"e0", "e1", "e2", "e3", "e4"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t, tc.opts)
			for i := range tc.appends {
				if err := q.Append(ctx, store.Record{ID: fmt.Sprint("e", i), Data: bytes.Repeat([]byte("x"), tc.dataLen)}); err != nil {
					t.Fatal(err)
				}
			}
			if got := allIDs(t, q); !slices.Equal(got, tc.wantIDs) {
				t.Fatalf("All = %v, want %v", got, tc.wantIDs)
			}
			b, err := q.Peek(ctx, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			if b.Dropped != tc.wantDropped {
				t.Fatalf("Batch.Dropped = %d, want %d", b.Dropped, tc.wantDropped)
			}
			// The count is persisted: a new Queue on the same file sees it.
			q2, err := store.Open(q.Path(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := mustDropped(t, q2); d != tc.wantDropped {
				t.Fatalf("after reopen Dropped = %d, want %d", d, tc.wantDropped)
			}
		})
	}
}

func TestLimitsOnOneBigBatch(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxEvents: 10})
	var ids []string
	for i := range 25 {
		ids = append(ids, fmt.Sprintf("e%02d", i))
	}
	if err := q.Append(ctx, recs(ids...)...); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, ids[15:]) {
		t.Fatalf("All = %v, want %v", got, ids[15:])
	}
	if d := mustDropped(t, q); d != 15 {
		t.Fatalf("Dropped = %d, want 15", d)
	}
}

func TestTooLargeRecordDroppedAndCounted(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxBytes: 64})
	err := q.Append(ctx, rec("small"), store.Record{ID: "huge", Data: make([]byte, 65)})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Append: got %v, want ErrTooLarge", err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"small"}) {
		t.Fatalf("All = %v", got)
	}
	if d := mustDropped(t, q); d != 1 {
		t.Fatalf("Dropped = %d, want 1", d)
	}
}

func TestInvalidRecordStoresNothing(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{})
	for _, bad := range []store.Record{{ID: ""}, {ID: strings.Repeat("x", store.MaxIDLen+1)}} {
		if err := q.Append(ctx, rec("ok"), bad); !errors.Is(err, store.ErrInvalidRecord) {
			t.Fatalf("Append: got %v, want ErrInvalidRecord", err)
		}
	}
	if n := mustLen(t, q); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

func TestAckDeletesAndSubtractsDropped(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxEvents: 3})
	if err := q.Append(ctx, recs("a", "b", "c", "d", "e")...); err != nil { // drops a, b
		t.Fatal(err)
	}
	b, err := q.Peek(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Dropped != 2 || len(b.Records) != 2 {
		t.Fatalf("Peek = %d records, dropped %d; want 2, 2", len(b.Records), b.Dropped)
	}
	// One more drop happens between reading and acknowledging the batch.
	if err := q.Append(ctx, rec("f")); err != nil { // drops c
		t.Fatal(err)
	}
	// c was dropped already; "nope" is unknown: both ignored.
	if err := q.Ack(ctx, []string{"c", "d", "nope"}, b.Dropped); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"e", "f"}) {
		t.Fatalf("All = %v, want [e f]", got)
	}
	if d := mustDropped(t, q); d != 1 {
		t.Fatalf("Dropped = %d, want the 1 not yet reported", d)
	}
	if n := mustLen(t, q); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	// Acknowledging more drops than counted floors at zero.
	if err := q.Ack(ctx, nil, 100); err != nil {
		t.Fatal(err)
	}
	if d := mustDropped(t, q); d != 0 {
		t.Fatalf("Dropped = %d, want 0", d)
	}
	// The byte counter follows acks: refill up to the limit without drops.
	if err := q.Ack(ctx, []string{"e", "f"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, recs("g", "h", "i")...); err != nil {
		t.Fatal(err)
	}
	if d := mustDropped(t, q); d != 0 {
		t.Fatalf("Dropped = %d after refilling an emptied queue", d)
	}
}

func TestByteCounterFollowsAck(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxBytes: 100})
	data := make([]byte, 40)
	if err := q.Append(ctx, store.Record{ID: "a", Data: data}, store.Record{ID: "b", Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, []string{"a", "b"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, store.Record{ID: "c", Data: data}, store.Record{ID: "d", Data: data}); err != nil {
		t.Fatal(err)
	}
	if d := mustDropped(t, q); d != 0 {
		t.Fatalf("Dropped = %d: acknowledged bytes still counted", d)
	}
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxEvents: 2, LockTimeout: 50 * time.Millisecond})
	if err := q.Append(ctx, recs("a", "b", "c")...); err != nil {
		t.Fatal(err)
	}
	if err := q.PutMeta(ctx, "next", []byte("later")); err != nil {
		t.Fatal(err)
	}
	holder := holdLock(t, q.Path())
	if err := q.Append(ctx, rec("spooled")); err != nil {
		t.Fatal(err)
	}
	holder.Close()

	if err := q.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mustLen(t, q); n != 0 {
		t.Fatalf("Len after Purge = %d", n)
	}
	if d := mustDropped(t, q); d != 0 {
		t.Fatalf("Dropped after Purge = %d", d)
	}
	if files := spoolFiles(t, q); len(files) != 0 {
		t.Fatalf("spool after Purge: %v", files)
	}
	if v, err := q.GetMeta(ctx, "next"); err != nil || string(v) != "later" {
		t.Fatalf("meta after Purge = %q, %v", v, err)
	}
	if err := q.Append(ctx, rec("after")); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("All = %v", got)
	}
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{})
	if v, err := q.GetMeta(ctx, "backoff"); v != nil || err != nil {
		t.Fatalf("absent key: %q, %v", v, err)
	}
	if err := q.PutMeta(ctx, "backoff", []byte("30s")); err != nil {
		t.Fatal(err)
	}
	if err := q.PutMeta(ctx, "next_attempt", []byte("2026-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	q2, err := store.Open(q.Path(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := q2.GetMeta(ctx, "backoff"); err != nil || string(v) != "30s" {
		t.Fatalf("GetMeta = %q, %v", v, err)
	}
	if err := q2.PutMeta(ctx, "backoff", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := q.GetMeta(ctx, "backoff"); v != nil || err != nil {
		t.Fatalf("deleted key: %q, %v", v, err)
	}
	if v, _ := q.GetMeta(ctx, "next_attempt"); string(v) != "2026-01-01T00:00:00Z" {
		t.Fatalf("other key: %q", v)
	}
	if n := mustLen(t, q); n != 0 {
		t.Fatalf("meta counted as events: Len = %d", n)
	}
	if _, err := q.GetMeta(ctx, ""); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("empty key: %v", err)
	}
}

func TestCanceledContextStoresNothing(t *testing.T) {
	q := newQueue(t, store.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Append(ctx, rec("a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append: %v", err)
	}
	if _, err := q.Peek(ctx, 1, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Peek: %v", err)
	}
	if n := mustLen(t, q); n != 0 {
		t.Fatalf("Len = %d", n)
	}
}

func TestAllStopsAtError(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{})
	if err := q.Append(ctx, recs("a", "b", "c")...); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	var seen []string
	err := q.All(ctx, func(r store.Record) error {
		seen = append(seen, r.ID)
		if r.ID == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("All = %v, saw %v", err, seen)
	}
}

// holdLock opens the bbolt file as another user of it would, holding its
// lock until closed.
func holdLock(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func spoolFiles(t testing.TB, q *store.Queue) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(filepath.Dir(q.Path()), "spool"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSpoolWhenLockedThenDrainedInOrder(t *testing.T) {
	ctx := context.Background()
	const timeout = 100 * time.Millisecond
	q := newQueue(t, store.Options{LockTimeout: timeout})
	if err := q.Append(ctx, recs("before-1", "before-2")...); err != nil {
		t.Fatal(err)
	}

	holder := holdLock(t, q.Path())
	weird := "Weird/ID with spaces"
	start := time.Now()
	if err := q.Append(ctx, recs("spool-0001", "before-2", weird)...); err != nil {
		t.Fatalf("Append while locked: %v", err)
	}
	if waited := time.Since(start); waited > 4*timeout {
		t.Errorf("Append waited %v with LockTimeout %v", waited, timeout)
	}
	for _, id := range []string{"spool-0002", "spool-0001", "spool-0003"} {
		if err := q.Append(ctx, rec(id)); err != nil {
			t.Fatalf("Append while locked: %v", err)
		}
	}
	files := spoolFiles(t, q)
	if len(files) != 5 { // spool-0001..3, before-2, weird: one file per ID
		t.Fatalf("spool files %v, want 5", files)
	}
	if !slices.Contains(files, "spool-0001.json") {
		t.Fatalf("spool files %v lack spool-0001.json", files)
	}
	if _, err := q.Peek(ctx, 10, 0); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Peek while locked: %v, want ErrLocked", err)
	}
	if _, err := q.Len(ctx); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Len while locked: %v, want ErrLocked", err)
	}
	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}

	// Len counts spooled records; the drain skips before-2, already queued.
	if n := mustLen(t, q); n != 6 {
		t.Fatalf("Len = %d, want 6", n)
	}
	want := []string{"before-1", "before-2", "spool-0001", weird, "spool-0002", "spool-0003"}
	if got := allIDs(t, q); !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
	if files := spoolFiles(t, q); len(files) != 0 {
		t.Fatalf("spool not emptied: %v", files)
	}
	b, err := q.Peek(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Records {
		if !bytes.Equal(r.Data, rec(r.ID).Data) {
			t.Errorf("%s: data %q after spooling", r.ID, r.Data)
		}
	}
}

func TestSpoolDrainedByReadOperation(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{LockTimeout: 50 * time.Millisecond})
	holder := holdLock(t, q.Path())
	if err := q.Append(ctx, recs("x1", "x2")...); err != nil {
		t.Fatal(err)
	}
	holder.Close()
	// A second Queue (another process, in effect) drains it on Peek.
	q2, err := store.Open(q.Path(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := q2.Peek(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 2 || b.Records[0].ID != "x1" || b.Records[1].ID != "x2" {
		t.Fatalf("Peek = %+v", b.Records)
	}
	if files := spoolFiles(t, q); len(files) != 0 {
		t.Fatalf("spool not emptied: %v", files)
	}
}

func TestSpoolFullDropsAndCounts(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxEvents: 3, LockTimeout: 20 * time.Millisecond})
	holder := holdLock(t, q.Path())
	if err := q.Append(ctx, recs("s1", "s2", "s3", "s4", "s5")...); !errors.Is(err, store.ErrNotStored) {
		t.Fatalf("Append to a full spool: %v, want ErrNotStored", err)
	}
	holder.Close()
	if got := allIDs(t, q); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Fatalf("All = %v", got)
	}
	if d := mustDropped(t, q); d != 2 {
		t.Fatalf("Dropped = %d, want 2", d)
	}
}

func TestGoroutinesShareQueue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	// Two Queues on one file in one process contend on the file lock like
	// two processes; goroutines of one Queue take turns.
	qs := make([]*store.Queue, 2)
	for i := range qs {
		q, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		qs[i] = q
	}
	const workers, per = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := qs[w%2].Append(ctx, rec(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ids := allIDs(t, qs[0])
	if len(ids) != workers*per {
		t.Fatalf("%d events stored, want %d", len(ids), workers*per)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != workers*per {
		t.Fatal("duplicates stored")
	}
}

// writeRealQueue writes n events of size bytes into a queue at path.
func writeRealQueue(t *testing.T, path string, n, size int) {
	t.Helper()
	q, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rs []store.Record
	for i := range n {
		data := make([]byte, size)
		rand.Read(data)
		rs = append(rs, store.Record{ID: fmt.Sprint("old-", i), Data: data})
	}
	if err := q.Append(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
}

// bboltMeta reads the newest meta page of a bbolt file: the root bucket's
// page, the freelist page and the high-water mark.
func bboltMeta(t *testing.T, path string) (root, freelist, pgid uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2*4096 {
		t.Fatalf("read %s: %v", path, err)
	}
	m0, m1 := b[16:], b[4096+16:] // after the page header
	m := m0
	if binary.LittleEndian.Uint64(m1[48:]) > binary.LittleEndian.Uint64(m0[48:]) { // txid
		m = m1
	}
	return binary.LittleEndian.Uint64(m[16:]), binary.LittleEndian.Uint64(m[32:]), binary.LittleEndian.Uint64(m[40:])
}

func TestCorruptFileMovedAside(t *testing.T) {
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T, path string)
		wantReason string
		// events lost with the file that it still records; counted as dropped
		wantDropped uint64
	}{
		{"garbage small", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("this is not a bbolt file"), 0o600)
		}, "invalid database", 0},
		{"garbage 64KiB", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			rand.Read(b)
			os.WriteFile(path, b, 0o600)
		}, "invalid database", 0},
		{"truncated to half", func(t *testing.T, path string) {
			writeRealQueue(t, path, 200, 1000)
			fi, _ := os.Stat(path)
			os.Truncate(path, fi.Size()/2)
		}, "", 0},
		{"truncated to one page", func(t *testing.T, path string) {
			writeRealQueue(t, path, 200, 1000)
			os.Truncate(path, 4096)
		}, "", 0},
		{"data pages overwritten", func(t *testing.T, path string) {
			writeRealQueue(t, path, 200, 1000)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			b := make([]byte, fi.Size()-2*4096) // keep both meta pages valid
			rand.Read(b)
			f.WriteAt(b, 2*4096)
		}, "", 0},
		{"truncated with the freelist kept", func(t *testing.T, path string) {
			writeRealQueue(t, path, 200, 1000)
			q, _ := store.Open(path, store.Options{})
			var ids []string
			for i := range 150 {
				ids = append(ids, fmt.Sprint("old-", i))
			}
			// Freed pages make the next commit put the freelist early.
			if err := q.Ack(context.Background(), ids, 0); err != nil {
				t.Fatal(err)
			}
			if err := q.Append(context.Background(), rec("x")); err != nil {
				t.Fatal(err)
			}
			if _, free, pgid := bboltMeta(t, path); free >= 20 || pgid <= 20 {
				t.Fatalf("freelist at page %d of %d: layout not as the test needs", free, pgid)
			}
			os.Truncate(path, 20*4096)
		}, "truncated", 51},
		{"b-tree pages overwritten", func(t *testing.T, path string) {
			writeRealQueue(t, path, 200, 1000)
			_, free, pgid := bboltMeta(t, path)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			junk := make([]byte, 4096)
			for p := uint64(2); p < pgid; p++ {
				if p != free { // bbolt opens the file; transactions panic
					rand.Read(junk)
					f.WriteAt(junk, int64(p)*4096)
				}
			}
		}, "panic in transaction", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var logs logBuffer
			path := filepath.Join(t.TempDir(), "queue.db")
			tc.damage(t, path)
			q, err := store.Open(path, store.Options{Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Append(ctx, rec("fresh")); err != nil {
				t.Fatalf("Append on damaged file: %v", err)
			}
			if got := allIDs(t, q); !slices.Equal(got, []string{"fresh"}) {
				t.Fatalf("All = %v, want [fresh]", got)
			}
			moved, _ := filepath.Glob(path + ".corrupt-*")
			if len(moved) != 1 {
				t.Fatalf("moved-aside files: %v", moved)
			}
			if !strings.Contains(logs.String(), "moved aside") || !strings.Contains(logs.String(), tc.wantReason) {
				t.Fatalf("not logged (want reason %q); log:\n%s", tc.wantReason, logs.String())
			}
			if files := spoolFiles(t, q); len(files) != 0 {
				t.Fatalf("event went to the spool: %v", files)
			}
			if d := mustDropped(t, q); d != tc.wantDropped {
				t.Fatalf("Dropped = %d, want %d", d, tc.wantDropped)
			}
		})
	}
}

func TestCorruptOnReadOperation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	writeRealQueue(t, path, 50, 1000)
	os.Truncate(path, 3*4096)
	q, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Peek(context.Background(), 10, 0)
	if err != nil || len(b.Records) != 0 {
		t.Fatalf("Peek on truncated file = %d records, %v", len(b.Records), err)
	}
}

func TestCorruptKeepsAtMostTwoMovedAside(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := os.WriteFile(path, bytes.Repeat([]byte{byte(i + 1)}, 8192), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := q.Append(ctx, rec(fmt.Sprint("e", i))); err != nil {
			t.Fatal(err)
		}
	}
	moved, _ := filepath.Glob(path + ".corrupt-*")
	if len(moved) != 2 {
		t.Fatalf("moved-aside files: %v, want 2", moved)
	}
	// The newest two are kept: their contents are the last two garbages.
	var kept []byte
	for _, m := range moved {
		b, _ := os.ReadFile(m)
		kept = append(kept, b[0])
	}
	slices.Sort(kept)
	if !slices.Equal(kept, []byte{3, 4}) {
		t.Fatalf("kept garbage generations %v, want [3 4]", kept)
	}
}

func TestEmptyFileStartsFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	var logs logBuffer
	q, err := store.Open(path, store.Options{Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(context.Background(), rec("a")); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("All = %v", got)
	}
	if !strings.Contains(logs.String(), "was empty") {
		t.Fatalf("empty old file not logged:\n%s", logs.String())
	}
}

func ExampleQueue() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "queue")
	defer os.RemoveAll(dir)

	q, _ := store.Open(filepath.Join(dir, "queue.db"), store.Options{MaxEvents: 2})
	q.Append(ctx, store.Record{ID: "e1", Data: []byte(`{"n":1}`)})
	q.Append(ctx, store.Record{ID: "e2", Data: []byte(`{"n":2}`)})
	q.Append(ctx, store.Record{ID: "e3", Data: []byte(`{"n":3}`)})

	b, _ := q.Peek(ctx, 10, 64<<10)
	for _, r := range b.Records {
		fmt.Println(r.ID, string(r.Data))
	}
	fmt.Println("dropped:", b.Dropped)

	ids := []string{b.Records[0].ID, b.Records[1].ID}
	q.Ack(ctx, ids, b.Dropped) // after the server confirmed the batch
	n, _ := q.Len(ctx)
	fmt.Println("left:", n)
	// Output:
	// e2 {"n":2}
	// e3 {"n":3}
	// dropped: 1
	// left: 0
}

func TestSpoolUnwritableReportsNotStored(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{LockTimeout: 20 * time.Millisecond})
	// A file where the spool directory should be: nothing can be spooled.
	if err := os.WriteFile(filepath.Join(filepath.Dir(q.Path()), "spool"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	holder := holdLock(t, q.Path())
	if err := q.Append(ctx, rec("lost")); !errors.Is(err, store.ErrNotStored) {
		t.Fatalf("Append with neither file nor spool: %v, want ErrNotStored", err)
	}
	holder.Close()
	// The queue file still works once the lock is free.
	if err := q.Append(ctx, rec("kept")); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("All = %v", got)
	}
}

func TestSummary(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{MaxEvents: 2, LockTimeout: 20 * time.Millisecond})
	if s, err := q.Summary(ctx, "state"); err != nil || s.Len != 0 || s.Oldest.ID != "" || s.Meta != nil {
		t.Fatalf("Summary of empty queue = %+v, %v", s, err)
	}
	if err := q.Append(ctx, recs("a", "b", "c")...); err != nil {
		t.Fatal(err)
	}
	if err := q.PutMeta(ctx, "state", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	holder := holdLock(t, q.Path())
	if err := q.Append(ctx, rec("d")); err != nil {
		t.Fatal(err)
	}
	// While another process holds the queue file, Summary answers from the
	// summary file, without waiting: b and c queued (a dropped over the
	// limit), d in the spool.
	s, err := q.Summary(ctx, "state")
	if err != nil || s.Len != 3 || s.Dropped != 1 || s.Oldest.ID != "b" || string(s.Meta) != "v1" {
		t.Fatalf("Summary while locked = %+v, %v", s, err)
	}
	// Without a summary file it has to wait for the queue file.
	if err := os.Remove(q.Path() + ".sum"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Summary(ctx, "state"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Summary while locked, no summary file: %v", err)
	}
	holder.Close()
	// The next write drains the spooled d first; the limit then drops b.
	if err := q.PutMeta(ctx, "state", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	s, err = q.Summary(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len != 2 || s.Dropped != 2 || s.Oldest.ID != "c" || string(s.Meta) != "v2" {
		t.Fatalf("Summary = %+v", s)
	}
}

// Summary gives the same answer from the summary file as from the queue
// file, after every kind of change, and never uses a summary file that does
// not describe the queue file as it is: one left from before a change, a
// damaged one, or one whose queue file is gone.
func TestSummaryFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	q, err := store.Open(path, store.Options{MaxEvents: 50, Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	sumPath := path + ".sum"
	// fresh is what Summary reads from the queue file itself.
	fresh := func() store.Summary {
		t.Helper()
		os.Remove(sumPath)
		s, err := q.Summary(ctx, "state")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(step string) {
		t.Helper()
		cached, err := q.Summary(ctx, "state")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err == nil {
			if _, err := os.Stat(sumPath); err != nil {
				t.Fatalf("%s: no summary file: %v", step, err)
			}
		}
		if want := fresh(); !reflect.DeepEqual(cached, want) {
			t.Fatalf("%s: Summary from the summary file = %+v, from the queue file %+v", step, cached, want)
		}
	}
	check("empty")
	ids := func(lo, hi int) []store.Record {
		var rs []store.Record
		for i := lo; i < hi; i++ {
			rs = append(rs, rec(fmt.Sprintf("e%03d", i)))
		}
		return rs
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"journal appends", func() error { return q.Append(ctx, ids(0, 10)...) }},
		{"meta", func() error { return q.PutMeta(ctx, "state", []byte(`{"next":1}`)) }},
		{"journal moved in", func() error { _, err := q.Len(ctx); return err }},
		{"moved in, the journal left as it was (a crash before its truncation)", func() error {
			if err := q.Append(ctx, ids(100, 103)...); err != nil {
				return err
			}
			journal, err := os.ReadFile(filepath.Join(dir, "queue.log"))
			if err != nil {
				return err
			}
			n, err := q.Len(ctx)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "queue.log"), journal, 0o600); err != nil {
				return err
			}
			// The records left in the journal are in the queue file already.
			if s, err := q.Summary(ctx, "state"); err != nil || s.Len != n {
				return fmt.Errorf("Summary = %+v, %v; want %d queued", s, err, n)
			}
			return nil
		}},
		{"more appends", func() error { return q.Append(ctx, ids(10, 70)...) }},
		{"moved in over the limit", func() error { _, err := q.Peek(ctx, 5, 0); return err }},
		{"acknowledged", func() error {
			b, err := q.Peek(ctx, 5, 0)
			if err != nil {
				return err
			}
			var ids []string
			for _, r := range b.Records {
				ids = append(ids, r.ID)
			}
			return q.Ack(ctx, ids, b.Dropped)
		}},
		{"meta changed", func() error { return q.PutMeta(ctx, "state", []byte(`{"next":2}`)) }},
		{"purged", func() error { return q.Purge(ctx) }},
		{"after the purge", func() error { return q.Append(ctx, ids(70, 73)...) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		check(st.name)
	}

	// A summary file from before a change of the queue file is not used.
	if _, err := q.Summary(ctx, "state"); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a later modification time, however coarse the clock
	if err := q.PutMeta(ctx, "state", []byte(`{"next":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sumPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := q.Summary(ctx, "state"); err != nil || string(s.Meta) != `{"next":3}` {
		t.Fatalf("Summary with a summary file from before the change = %+v, %v", s, err)
	}
	// Nor a damaged one.
	b, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(sumPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := q.Summary(ctx, "state"); err != nil || string(s.Meta) != `{"next":3}` {
		t.Fatalf("Summary with a damaged summary file = %+v, %v", s, err)
	}
	// Nor one whose queue file is gone: only the journal counts then.
	if err := q.Append(ctx, rec("late")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".gone"); err != nil {
		t.Fatal(err)
	}
	if s, err := q.Summary(ctx, "state"); err != nil || s.Meta != nil {
		t.Fatalf("Summary without a queue file = %+v, %v", s, err)
	}
}
