package core

import (
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// uuid is a version 7 UUID (RFC 9562): the ID of an event or a session.
//
// It is built here rather than with a UUID library: the one the SDK used
// (github.com/google/uuid) links database/sql/driver into every host and
// parses four UUIDs in its package initializer, 70–80 µs of every run of
// every instrumented tool on a machine whose page faults are slow, for
// twenty lines of code. See docs/benchmarks.md.
type uuid [16]byte

// String returns the canonical form of u.
func (u uuid) String() string { return wire.FormatUUID(u) }

// isZero reports whether u is the zero UUID, no ID at all.
func (u uuid) isZero() bool { return u == uuid{} }

// v7clock is the timestamp of the newest ID of this process: Unix
// milliseconds shifted left by 12 bits, with a 12-bit fraction of the
// millisecond below them (RFC 9562, section 6.2, method 3), so that the IDs
// a process makes are in order even within one millisecond.
var v7clock atomic.Int64

// newID returns a new version 7 UUID of the current time.
//
// Its random bits come from the runtime's generator (math/rand/v2's
// top-level functions: ChaCha8, seeded from the operating system's
// randomness in every process) rather than crypto/rand, whose first read
// in a process sets up the kernel's getrandom state: tens of microseconds
// that a short-lived CLI would spend on one ID. IDs need to be unique,
// not secret.
func newID() uuid {
	now := time.Now()
	t := now.UnixMilli()<<12 | int64(now.Nanosecond()%int(time.Millisecond))*4096/int64(time.Millisecond)
	for {
		last := v7clock.Load()
		next := t
		if next <= last {
			next = last + 1
		}
		if v7clock.CompareAndSwap(last, next) {
			t = next
			break
		}
	}
	var id uuid
	ms := uint64(t >> 12)
	id[0], id[1], id[2], id[3], id[4], id[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	id[6] = 0x70 | byte(t>>8)&0x0f // version 7, then the fraction's high 4 bits
	id[7] = byte(t)
	binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	id[8] = id[8]&0x3f | 0x80 // the RFC 9562 variant
	return id
}
