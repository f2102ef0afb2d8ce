package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

func journalPath(q *store.Queue) string { return filepath.Join(filepath.Dir(q.Path()), "queue.log") }

func journalSize(t testing.TB, q *store.Queue) int64 {
	t.Helper()
	fi, err := os.Stat(journalPath(q))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// With Options.Journal an Append writes the journal and not the queue file;
// the next operation that holds the queue file's lock moves the records in,
// in order, and empties the journal.
func TestJournalAppendThenMovedIn(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true})
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Append(ctx, rec(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(q.Path()); !os.IsNotExist(err) {
		t.Fatalf("queue file written by a journal Append (stat: %v)", err)
	}
	if journalSize(t, q) == 0 {
		t.Fatal("journal is empty after three Appends")
	}
	// A second queue without Journal, as `telemetry show` in another
	// process would open it, sees them in order.
	other, err := store.Open(q.Path(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, other); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("All = %v", got)
	}
	if n := journalSize(t, q); n != 0 {
		t.Fatalf("journal holds %d bytes after being moved in", n)
	}
	// Appends after that go to the journal again and come after.
	if err := q.Append(ctx, recs("d", "a")...); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("All = %v, want the duplicate a stored once", got)
	}
	if n := mustLen(t, q); n != 4 {
		t.Fatalf("Len = %d", n)
	}
}

// Summary counts the journal where it is, without a write transaction and
// without emptying it, and reports its first record as the oldest when the
// queue file is empty.
func TestJournalSummaryLeavesJournal(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true})
	if err := q.Append(ctx, recs("a", "b")...); err != nil {
		t.Fatal(err)
	}
	before := journalSize(t, q)
	s, err := q.Summary(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len != 2 || s.Oldest.ID != "a" || string(s.Oldest.Data) != string(rec("a").Data) {
		t.Fatalf("Summary = %+v", s)
	}
	if after := journalSize(t, q); after != before {
		t.Fatalf("journal went from %d to %d bytes", before, after)
	}
	// Once some are in the queue file, those count once and the queue
	// file's oldest is the oldest.
	if err := q.PutMeta(ctx, "state", []byte("x")); err != nil { // moves a, b in
		t.Fatal(err)
	}
	if err := q.Append(ctx, rec("c")); err != nil {
		t.Fatal(err)
	}
	if s, err = q.Summary(ctx, "state"); err != nil || s.Len != 3 || s.Oldest.ID != "a" || string(s.Meta) != "x" {
		t.Fatalf("Summary = %+v, %v", s, err)
	}
}

// Purge empties the journal too.
func TestJournalPurged(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true})
	if err := q.Append(ctx, recs("a", "b")...); err != nil {
		t.Fatal(err)
	}
	if err := q.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mustLen(t, q); n != 0 {
		t.Fatalf("Len after Purge = %d", n)
	}
	if s, err := q.Summary(ctx, "k"); err != nil || s.Len != 0 {
		t.Fatalf("Summary after Purge = %+v, %v", s, err)
	}
	if err := q.Append(ctx, rec("c")); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("All = %v", got)
	}
}

// A write torn by a crash (a frame cut short) or bytes damaged in place cost
// only the records they hit; the records around them are kept, and later
// Appends after the damage are read too.
func TestJournalSkipsTornAndDamagedFrames(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true})
	if err := q.Append(ctx, recs("a", "b", "c")...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(journalPath(q))
	if err != nil {
		t.Fatal(err)
	}
	// Damage b's payload: its checksum no longer matches.
	i := strings.Index(string(b), `"event_id":"b"`)
	if i < 0 {
		t.Fatalf("record b not found in the journal: %q", b)
	}
	b[i+13] = 'X'
	// Then a torn frame: the start of a copy of c's frame, cut short.
	j := strings.LastIndex(string(b), "TKJR")
	b = append(b, b[j:j+20]...)
	if err := os.WriteFile(journalPath(q), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, rec("d")); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Fatalf("All = %v, want a, c, d", got)
	}
}

// The journal stays small: from its soft limit on, an Append moves it into
// the queue file with its own record, in order.
func TestJournalBoundedAndOrdered(t *testing.T) {
	ctx := context.Background()
	const maxBytes = 4 << 10
	q := newQueue(t, store.Options{Journal: true, MaxBytes: maxBytes})
	var want []string
	data := []byte(`{"pad":"` + strings.Repeat("x", 200) + `"}`)
	biggest := int64(0)
	for i := range 60 {
		id := fmt.Sprintf("e%02d", i)
		if err := q.Append(ctx, store.Record{ID: id, Data: data}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
		biggest = max(biggest, journalSize(t, q))
	}
	if limit := int64(maxBytes + 512); biggest > limit {
		t.Fatalf("journal grew to %d bytes, limit %d", biggest, limit)
	}
	got := allIDs(t, q)
	// MaxBytes keeps only the newest; what is kept is in order.
	if len(got) == 0 || !slices.Equal(got, want[len(want)-len(got):]) {
		t.Fatalf("All = %v, want a suffix of %v", got, want)
	}
	if d := mustDropped(t, q); int(d) != len(want)-len(got) {
		t.Fatalf("Dropped = %d, want %d", d, len(want)-len(got))
	}
}

// When the queue file's lock is held elsewhere, journal Appends do not wait
// for it at all (with a lock timeout of a minute, waiting would show), and
// the records are moved in once it is free.
func TestJournalAppendIgnoresQueueLock(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true, LockTimeout: time.Minute})
	holder := holdLock(t, q.Path())
	start := time.Now()
	if err := q.Append(ctx, recs("a", "b")...); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= 30*time.Second {
		t.Errorf("journal Append took %v while the queue file was locked", took)
	}
	if files := spoolFiles(t, q); len(files) != 0 {
		t.Errorf("spooled %v; want the journal", files)
	}
	if journalSize(t, q) == 0 {
		t.Error("journal is empty")
	}
	holder.Close()
	if got := allIDs(t, q); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("All = %v", got)
	}
}

// Without JournalSync an append is not synced, so a power loss can leave
// the journal's tail cut anywhere, filled with zeros (blocks the file
// system allocated but never wrote) or with garbage. Whatever the tail
// holds, the records before it are kept, the damaged last one is skipped,
// and the records appended afterwards are read: the queue never blocks.
func TestJournalTailAfterPowerLoss(t *testing.T) {
	ctx := context.Background()
	q0 := newQueue(t, store.Options{Journal: true})
	if err := q0.Append(ctx, recs("a", "b", "c")...); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(journalPath(q0))
	if err != nil {
		t.Fatal(err)
	}
	last := strings.LastIndex(string(whole), "TKJR")
	type tail struct {
		name string
		b    []byte
	}
	var tails []tail
	for cut := last; cut < len(whole); cut++ {
		tails = append(tails, tail{fmt.Sprintf("cut at %d of %d", cut, len(whole)), slices.Clone(whole[:cut])})
	}
	zeros := slices.Clone(whole[:last])
	zeros = append(zeros, make([]byte, 4096)...)
	tails = append(tails, tail{"zeros after b", zeros})
	garbled := slices.Clone(whole)
	for i := last + 20; i < len(garbled); i += 7 {
		garbled[i] ^= 0x5a
	}
	tails = append(tails, tail{"c garbled in place", garbled})
	rnd := slices.Clone(whole[:last+5])
	for i := range 300 {
		rnd = append(rnd, byte(i*131+7))
	}
	tails = append(tails, tail{"garbage after a cut header", rnd})

	for _, tc := range tails {
		q := newQueue(t, store.Options{Journal: true})
		if err := os.WriteFile(journalPath(q), tc.b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := q.Append(ctx, rec("d")); err != nil {
			t.Fatalf("%s: Append: %v", tc.name, err)
		}
		if err := q.Append(ctx, rec("e")); err != nil {
			t.Fatalf("%s: Append: %v", tc.name, err)
		}
		if got := allIDs(t, q); !slices.Equal(got, []string{"a", "b", "d", "e"}) {
			t.Fatalf("%s: All = %v, want a, b, d, e", tc.name, got)
		}
	}
	if len(tails) < 20 {
		t.Fatalf("only %d tails tried", len(tails))
	}
}

// With JournalSync every append is synced; the records are the same.
func TestJournalSyncedAppend(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true, JournalSync: true})
	if err := q.Append(ctx, recs("a", "b")...); err != nil {
		t.Fatal(err)
	}
	if journalSize(t, q) == 0 {
		t.Fatal("the appends did not go to the journal")
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("All = %v, want a, b", got)
	}
}

// The runs log stays small without any sender to reap it: a run that
// starts past its bound compacts it to the runs still going, and a finished
// run leaves nothing to queue.
func TestRunsLogBounded(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true})
	path := filepath.Join(filepath.Dir(q.Path()), "runs.log")
	data := make([]byte, 900)
	for i := range 400 {
		r := q.StartRun(store.Record{ID: fmt.Sprint("run-", i), Data: data})
		r.End()
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 80<<10 {
		t.Fatalf("runs log is %d bytes after 400 finished runs", fi.Size())
	}
	if n, err := q.ReapRuns(ctx, func(int) bool { return false }); err != nil || n != 0 {
		t.Fatalf("finished runs reaped: %d, %v", n, err)
	}
	if got := allIDs(t, q); len(got) != 0 {
		t.Fatalf("finished runs queued: %v", got)
	}
}
