package sender

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// The hint a check leaves holds while nothing can have become due, and
// stops holding when the journal may hold enough events, when the oldest
// event is old enough, or when the queue file changed.
func TestDueHint(t *testing.T) {
	ctx := context.Background()
	q, err := store.Open(filepath.Join(t.TempDir(), "queue.db"), store.Options{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 500)
	appendN := func(n int) {
		t.Helper()
		for range n {
			id := uuid.Must(uuid.NewV7()).String()
			if err := q.Append(ctx, store.Record{ID: id, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Delivered before: the schedule applies, not the first delivery.
	if err := SaveState(ctx, q, State{Delivered: true, LastResult: "ok"}); err != nil {
		t.Fatal(err)
	}
	appendN(2)
	p := Policy{MinEvents: 5, MaxAge: time.Hour}
	now := time.Now()
	d, err := p.Check(ctx, q, now, false)
	if err != nil || d.Due || d.Reason != "not_yet" || d.Len != 2 {
		t.Fatalf("check: %+v, %v", d, err)
	}
	newDueHint(q).save(p, d, now)
	if !newDueHint(q).holds(now) {
		t.Fatal("the hint does not hold right after the check")
	}
	// Two more events of 500 bytes: 4 < 5, but the bound is by the
	// smallest event, so the hint may stop holding early, never late.
	appendN(3)
	if newDueHint(q).holds(now) {
		t.Fatal("the hint holds with 5 events queued")
	}
	if d, _ := p.Check(ctx, q, now, false); !d.Due || d.Reason != "count" {
		t.Fatalf("with 5 events: %+v", d)
	}

	// Age: an hour after the oldest event the hint no longer holds.
	q2, _ := store.Open(filepath.Join(t.TempDir(), "queue.db"), store.Options{Journal: true})
	SaveState(ctx, q2, State{Delivered: true})
	q = q2
	appendN(1)
	d, _ = p.Check(ctx, q, now, false)
	newDueHint(q).save(p, d, now)
	if d.Oldest.IsZero() || !newDueHint(q).holds(now) || newDueHint(q).holds(d.Oldest.Add(time.Hour+time.Second)) {
		t.Fatal("the hint does not end with the oldest event's age")
	}
	// A changed queue file (a sender ran, the state was saved) ends it.
	if err := SaveState(ctx, q, State{Delivered: true, LastResult: "network"}); err != nil {
		t.Fatal(err)
	}
	if newDueHint(q).holds(now) {
		t.Fatal("the hint holds after the queue file changed")
	}
}
