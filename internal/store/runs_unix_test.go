//go:build !windows && !plan9 && !solaris && !aix

package store_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// While a reap holds the runs log, Finish writes nothing and says so, so
// that its caller queues the record itself; End still notes the end.
func TestFinishWhileTheLogIsLocked(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, store.Options{Journal: true, BuildRun: built})
	r := q.BeginRun("run-1", []byte("start"))
	f, err := os.OpenFile(runs2Path(q), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := fsutil.TryFlock(f); !ok || err != nil {
		t.Fatalf("lock the runs log: %v, %v", ok, err)
	}
	if r.Finish([]byte("done")) {
		t.Fatal("Finish wrote while a reap held the runs log")
	}
	f.Close() // and its lock
	if err := q.Append(ctx, store.Record{ID: "run-1", Data: []byte("queued by the run")}); err != nil {
		t.Fatal(err)
	}
	r.End()
	if n, err := q.ReapRuns(ctx, func(int) bool { return false }); err != nil || n != 0 {
		t.Fatalf("ReapRuns = %d, %v; want 0: the run queued itself", n, err)
	}
	if got := allIDs(t, q); !slices.Equal(got, []string{"run-1"}) {
		t.Fatalf("queued %v, want run-1 once", got)
	}
}
