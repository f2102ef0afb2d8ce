package core

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestNewID checks that IDs are version 7 UUIDs of the current time, all
// different, in order, with random bits that vary.
func TestNewID(t *testing.T) {
	const n = 10000
	seen := make(map[uuid.UUID]bool, n)
	tails := make(map[[8]byte]bool, n)
	var prev string
	before := time.Now().Add(-time.Millisecond)
	for range n {
		id, err := newID()
		if err != nil {
			t.Fatal(err)
		}
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d, variant %v", id, id.Version(), id.Variant())
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
		sec, nsec := id.Time().UnixTime()
		if ts := time.Unix(sec, nsec); ts.Before(before) || ts.After(time.Now().Add(time.Millisecond)) {
			t.Fatalf("%s: time %v, want about %v", id, ts, before)
		}
	}
	if len(tails) != n {
		t.Fatalf("%d different random tails in %d IDs", len(tails), n)
	}
}
