package core

import (
	"sync"
	"testing"
	"time"

	guuid "github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// TestNewID checks that IDs are version 7 UUIDs of the current time, as
// a UUID library reads them, all different, in order, with random bits
// that vary.
func TestNewID(t *testing.T) {
	const n = 10000
	seen := make(map[uuid]bool, n)
	tails := make(map[[8]byte]bool, n)
	var prev string
	before := time.Now().Add(-time.Millisecond)
	for range n {
		id := newID()
		ref, err := guuid.Parse(id.String())
		if err != nil || ref.Version() != 7 || ref.Variant() != guuid.RFC4122 || !wire.IsUUIDv7(id) {
			t.Fatalf("%s: %v, version %d, variant %v", id, err, ref.Version(), ref.Variant())
		}
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
		if s := id.String(); s <= prev {
			t.Fatalf("%s after %s: not in order", s, prev)
		} else {
			prev = s
		}
		var tail [8]byte
		copy(tail[:], id[8:])
		tails[tail] = true
		sec, nsec := ref.Time().UnixTime()
		if ts := time.Unix(sec, nsec); ts.Before(before) || ts.After(time.Now().Add(time.Millisecond)) {
			t.Fatalf("%s: time %v, want about %v", id, ts, before)
		}
		if ts := wire.UUIDv7Time(id); ts.Before(before.Truncate(time.Millisecond)) || ts.After(time.Now()) {
			t.Fatalf("%s: millisecond %v, want about %v", id, ts, before)
		}
	}
	if len(tails) != n {
		t.Fatalf("%d different random tails in %d IDs", len(tails), n)
	}
}

// TestNewIDConcurrent checks that goroutines making IDs at once never get
// the same one, and that each goroutine's IDs are in order.
func TestNewIDConcurrent(t *testing.T) {
	const workers, each = 8, 5000
	ids := make([][]uuid, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids[w] = append(ids[w], newID())
			}
		}()
	}
	wg.Wait()
	seen := make(map[uuid]bool, workers*each)
	for _, list := range ids {
		for i, id := range list {
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
			if i > 0 && id.String() <= list[i-1].String() {
				t.Fatalf("%s after %s: not in order", id, list[i-1])
			}
		}
	}
}
