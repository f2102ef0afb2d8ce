package sender_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

func TestPolicyCheck(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	p := sender.Policy{MinEvents: 3, MaxAge: time.Hour, StartGrace: 30 * time.Second, APIKey: "k"}
	q := newQueue(t)
	check := func(now time.Time, ignoreStarted bool) sender.Decision {
		t.Helper()
		d, err := p.Check(ctx, q, now, ignoreStarted)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := check(time.Now(), false); d.Due || d.Reason != "empty" {
		t.Fatalf("empty queue: %+v", d)
	}
	fill(t, q, 2, 100)
	now := time.Now()
	// Nothing was ever delivered from this queue: due at once.
	if d := check(now, false); !d.Due || d.Reason != "first" {
		t.Fatalf("2 fresh events, nothing delivered yet: %+v", d)
	}
	markDelivered(t, q)
	if d := check(now, false); d.Due || d.Reason != "not_yet" {
		t.Fatalf("2 fresh events: %+v", d)
	}
	if d := check(now.Add(time.Hour+time.Second), false); !d.Due || d.Reason != "age" {
		t.Fatalf("2 events an hour old: %+v", d)
	}
	fill(t, q, 1, 100)
	if d := check(now, false); !d.Due || d.Reason != "count" {
		t.Fatalf("3 events: %+v", d)
	}
	// A started sender holds off other starters, not itself.
	l, err := sender.TryLock(q.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.MarkStarted(now); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if d := check(now.Add(10*time.Second), false); d.Due || d.Reason != "started" {
		t.Fatalf("sender just started: %+v", d)
	}
	if d := check(now.Add(10*time.Second), true); !d.Due {
		t.Fatalf("the started sender itself: %+v", d)
	}
	if d := check(now.Add(31*time.Second), false); !d.Due {
		t.Fatalf("after the start grace: %+v", d)
	}
	l, _ = sender.TryLock(q.Path())
	l.MarkStarted(time.Time{})
	l.Unlock()
	if d := check(now.Add(10*time.Second), false); !d.Due {
		t.Fatalf("after the mark was cleared: %+v", d)
	}
	_ = clk
}

func TestScheduleFromAClockThatJumpedBackIsIgnored(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	fill(t, q, 1, 100)
	now := time.Now()
	p := sender.Policy{MinEvents: 1, APIKey: "k"}
	for _, st := range []sender.State{
		{NextAttempt: now.Add(10 * 24 * time.Hour)},
		{AuthBlockedUntil: now.Add(400 * 24 * time.Hour), AuthKey: sender.KeyFingerprint("k")},
	} {
		if err := sender.SaveState(ctx, q, st); err != nil {
			t.Fatal(err)
		}
		if d, err := p.Check(ctx, q, now, false); err != nil || !d.Due {
			t.Fatalf("state %+v: Check = %+v, %v; want due", st, d, err)
		}
	}
	// Within the bounds the schedule holds.
	sender.SaveState(ctx, q, sender.State{NextAttempt: now.Add(20 * time.Hour)})
	if d, _ := p.Check(ctx, q, now, false); d.Due {
		t.Fatalf("a 20-hour backoff was ignored: %+v", d)
	}
}

func TestRecordTime(t *testing.T) {
	id := uuid.Must(uuid.NewV7())
	sec, nsec := id.Time().UnixTime()
	want := time.Unix(sec, nsec).Truncate(time.Millisecond)
	got, ok := sender.RecordTime(store.Record{ID: id.String()})
	if !ok || !got.Equal(want) {
		t.Fatalf("RecordTime(v7) = %v, %v; want %v", got, ok, want)
	}
	got, ok = sender.RecordTime(store.Record{ID: "x", Data: []byte(`{"timestamp":"2026-11-25T21:40:51.123Z"}`)})
	if !ok || !got.Equal(time.Date(2026, 11, 25, 21, 40, 51, 123e6, time.UTC)) {
		t.Fatalf("RecordTime(timestamp) = %v, %v", got, ok)
	}
	if _, ok := sender.RecordTime(store.Record{ID: "x", Data: []byte(`{}`)}); ok {
		t.Fatal("RecordTime without a time reported one")
	}
}

func TestTryLockIsExclusive(t *testing.T) {
	path := t.TempDir() + "/q.db"
	l1, err := sender.TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.TryLock(path); !errors.Is(err, sender.ErrBusy) {
		t.Fatalf("second TryLock = %v, want ErrBusy", err)
	}
	if !sender.Held(path) {
		t.Fatal("Held = false while locked")
	}
	l1.Unlock()
	l1.Unlock() // idempotent
	if sender.Held(path) {
		t.Fatal("Held = true after Unlock")
	}
	l2, err := sender.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	l2.Unlock()
}

// markDelivered records in q's sender state that a batch was delivered.
func markDelivered(t testing.TB, q sender.Queue) {
	t.Helper()
	if err := sender.SaveState(context.Background(), q, sender.State{Delivered: true}); err != nil {
		t.Fatal(err)
	}
}
