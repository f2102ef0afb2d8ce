package sender

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// A due hint lets a CLI run skip the due check at its exit. A check that
// finds nothing due writes, next to the queue file ("<queue>.due"), until
// when and up to what journal size nothing can become due by age, backoff
// or count, with the queue file's size and modification time. Later runs
// that find the queue file unchanged (no sender ran, nothing was moved in,
// no state was saved), the time before that bound and the journal below
// that size skip the check. The size bound assumes no queued event is
// smaller than minEventFrame bytes; a smaller one only makes a send due a
// few events late.
const (
	dueHintSuffix = ".due"
	dueHintMagic  = "TKDUEv1\x00"
	dueHintLen    = len(dueHintMagic) + 4*8
	// minEventFrame is less than any event the SDK queues takes in the
	// journal or the runs log: the journal frame of the smallest
	// command_executed event is over 400 bytes, and a finished run's two
	// frames in the runs log over 250.
	minEventFrame = 200
)

// dueHint is what a run knows of the queue to test a hint against.
type dueHint struct {
	path    string
	dbSize  int64 // -1 when there is no queue file
	dbMod   int64 // its modification time, Unix nanoseconds
	journal int64 // the journal's size
	ok      bool  // the stats above could be taken
}

func newDueHint(q Queue) dueHint {
	h := dueHint{path: q.Path() + dueHintSuffix, dbSize: -1}
	fi, err := os.Stat(q.Path())
	switch {
	case err == nil:
		h.dbSize, h.dbMod = fi.Size(), fi.ModTime().UnixNano()
	case !errors.Is(err, fs.ErrNotExist):
		return h
	}
	h.journal = q.JournalSize()
	h.ok = true
	return h
}

// holds reports whether the hint on disk says that nothing is due at now.
func (h dueHint) holds(now time.Time) bool {
	if !h.ok {
		return false
	}
	b, err := fsutil.ReadFile(h.path)
	if err != nil || len(b) != dueHintLen || string(b[:len(dueHintMagic)]) != dueHintMagic {
		return false
	}
	v := func(i int) int64 { return int64(binary.LittleEndian.Uint64(b[len(dueHintMagic)+8*i:])) }
	return v(0) == h.dbSize && v(1) == h.dbMod && now.UnixNano() < v(2) && h.journal < v(3)
}

// save writes the hint that d, a decision at now that nothing is due,
// allows. It
// writes none for a reason it cannot bound (a sender just started, an
// auth block for one key, an empty queue).
func (h dueHint) save(p Policy, d Decision, now time.Time) {
	if !h.ok {
		return
	}
	p = p.withDefaults()
	var until time.Time
	below := int64(math.MaxInt64)
	switch d.Reason {
	case "backoff":
		until = d.State.NextAttempt
	case "not_yet":
		until = d.Oldest.Add(p.MaxAge)
		if d.Oldest.IsZero() {
			until = now.Add(p.MaxAge)
		}
		below = h.journal + int64(p.MinEvents-d.Len)*minEventFrame
	default:
		return
	}
	b := make([]byte, 0, dueHintLen)
	b = append(b, dueHintMagic...)
	for _, v := range []int64{h.dbSize, h.dbMod, until.UnixNano(), below} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	// Written in place: a torn hint fails its length or magic, and a run
	// that reads it then simply checks.
	_ = os.WriteFile(h.path, b, 0o600)
}
