package sender_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/sender"
)

// A pending erasure survives being read back, goes when cleared, and an
// unreadable file counts as none and is removed; failures back off from
// 5 seconds, doubling, to a day at most.
func TestPendingErasureFile(t *testing.T) {
	q := filepath.Join(t.TempDir(), "queue.db")
	if _, ok := sender.PendingErasure(q); ok {
		t.Fatal("a pending erasure before any")
	}
	at := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	if err := sender.SaveErasure(q, sender.Erasure{RequestedAt: at}); err != nil {
		t.Fatal(err)
	}
	e, ok := sender.PendingErasure(q)
	if !ok || !e.RequestedAt.Equal(at) || e.Attempts != 0 {
		t.Fatalf("read back %+v %v", e, ok)
	}
	var waits []time.Duration
	for range 20 {
		e = e.Failed(at)
		waits = append(waits, e.NextAttempt.Sub(at))
	}
	if waits[0] != 5*time.Second || waits[1] != 10*time.Second || waits[5] != 160*time.Second || waits[19] != 24*time.Hour {
		t.Errorf("backoff %v", waits)
	}
	if err := sender.ClearErasure(q); err != nil {
		t.Fatal(err)
	}
	if _, ok := sender.PendingErasure(q); ok {
		t.Fatal("a pending erasure after clearing it")
	}
	if err := sender.ClearErasure(q); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
	os.WriteFile(sender.ErasurePath(q), []byte("{not json"), 0o600)
	if _, ok := sender.PendingErasure(q); ok {
		t.Fatal("an unreadable file counts as a pending erasure")
	}
	if _, err := os.Stat(sender.ErasurePath(q)); !os.IsNotExist(err) {
		t.Errorf("the unreadable file is left: %v", err)
	}
}
