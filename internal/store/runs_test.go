package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// built is a BuildRun that marks what it built.
func built(data []byte) ([]byte, error) { return append([]byte("built:"), data...), nil }

func runs2Path(q *store.Queue) string { return filepath.Join(filepath.Dir(q.Path()), "runs2.log") }

// A run begun with BeginRun and finished with Finish is counted by Summary
// where it is, and queued by a reap as BuildRun builds it from the finish.
func TestFinishedRunIsQueuedByReap(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true, BuildRun: built})
	r := q.BeginRun("run-1", []byte("start"))
	if !r.Finish([]byte("done")) {
		t.Fatal("Finish wrote nothing")
	}
	if q.JournalSize() == 0 {
		t.Fatal("JournalSize does not count the runs log")
	}
	sum, err := q.Summary(ctx, "k")
	if err != nil || sum.Len != 1 || sum.Oldest.ID != "run-1" {
		t.Fatalf("Summary = %+v, %v; want the finished run counted", sum, err)
	}
	if n, err := q.ReapRuns(ctx, func(int) bool { return true }); err != nil || n != 1 {
		t.Fatalf("ReapRuns = %d, %v; want 1", n, err)
	}
	var got []string
	if err := q.All(ctx, func(r store.Record) error { got = append(got, r.ID+"="+string(r.Data)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"run-1=built:done"}) {
		t.Fatalf("queued %q, want the run built from its finish", got)
	}
	if fi, err := os.Stat(runs2Path(q)); err != nil || fi.Size() != 0 {
		t.Fatalf("runs log not emptied: %v, %v", fi, err)
	}
	if sum, _ := q.Summary(ctx, "k"); sum.Len != 1 {
		t.Fatalf("Summary counts %d after the reap, want 1", sum.Len)
	}
}

// A Queue without BuildRun cannot build a run's record: it leaves the run
// in the runs log, never queues its data as an event, and a Queue with
// BuildRun queues it later.
func TestRunsWaitForABuilder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	plain, err := store.Open(path, store.Options{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	plain.BeginRun("run-1", []byte("start")).Finish([]byte("done"))
	if n, err := plain.ReapRuns(ctx, func(int) bool { return false }); err != nil || n != 0 {
		t.Fatalf("a queue without BuildRun reaped %d, %v", n, err)
	}
	if got := allIDs(t, plain); len(got) != 0 {
		t.Fatalf("queued without a builder: %v", got)
	}
	q, err := store.Open(path, store.Options{Journal: true, BuildRun: built})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := q.ReapRuns(ctx, func(int) bool { return false }); err != nil || n != 1 {
		t.Fatalf("ReapRuns = %d, %v; want 1", n, err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"run-1"}) {
		t.Fatalf("queued %v, want run-1", got)
	}
}
