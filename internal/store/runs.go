package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// The runs log holds the records of commands that have started and may not
// have finished: the record to queue if a command's process ends without
// finishing it (os.Exit in the command, log.Fatal, a signal, kill -9). It
// is an append-only file next to the queue file ("runs.log") of frames like
// the journal's (so that a frame torn by a power loss is detected and
// skipped):
//
//	'S' start: uvarint(pid), uvarint(len(id)), id, the record's data
//	'E' end:   the id
//
// A run appends its start and keeps the file open; a normal finish queues
// its own record under the same id, then appends the end and closes the
// file: two writes and no directory change per run. [Queue.ReapRuns]
// queues the records of the starts without an end whose process is gone,
// and compacts the file.
const (
	runsName   = "runs.log"
	frameStart = 'S'
	frameEnd   = 'E'
)

// RunStart is a started run. End notes that it finished.
type RunStart struct {
	f  *os.File
	id string
}

// StartRun appends r as the record of the run of this process that starts
// now, without fsync (a start lost to a power loss loses only an unfinished
// run's record). It returns a zero RunStart when the log cannot be written:
// the run is then recorded only if it finishes.
func (q *Queue) StartRun(r Record) RunStart {
	if r.ID == "" || len(r.ID) > MaxIDLen {
		return RunStart{}
	}
	f, err := fsutil.OpenFile(q.runsPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return RunStart{}
	}
	var head [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(head[:], uint64(os.Getpid()))
	n += binary.PutUvarint(head[n:], uint64(len(r.ID)))
	b := appendFrame(make([]byte, 0, frameHeader+n+len(r.ID)+len(r.Data)), frameStart, head[:n], []byte(r.ID), r.Data)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return RunStart{}
	}
	// The log is compacted by reaps, which senders run. Without sends (no
	// endpoint, telemetry held) it would grow by every run: past its
	// bound, this run reaps it. After the write the offset is the size.
	if size, err := f.Seek(0, io.SeekCurrent); err == nil && size > runsCompactAt {
		// Without waiting: if another process is at it, it compacts.
		_, _ = q.reapRuns(context.Background(), ProcessAlive, 0)
	}
	return RunStart{f: f, id: r.ID}
}

// runsCompactAt is the runs log's size past which a starting run reaps it:
// some 60 runs.
const runsCompactAt = 64 << 10

// End notes that the run finished and queued its own record.
func (s RunStart) End() {
	if s.f == nil {
		return
	}
	_, _ = s.f.Write(appendFrame(nil, frameEnd, []byte(s.id)))
	s.f.Close()
}

func (q *Queue) runsPath() string { return filepath.Join(filepath.Dir(q.path), runsName) }

// openRun is a start without its end.
type openRun struct {
	pid   int
	rec   Record
	frame []byte
}

// parseRuns returns the starts of b that have no end, in order.
func parseRuns(b []byte) []openRun {
	var runs []openRun
	ended := map[string]bool{}
	for off := 0; off+frameHeader <= len(b); {
		kind, n, sum := b[off+3], binary.LittleEndian.Uint32(b[off+4:]), binary.LittleEndian.Uint32(b[off+8:])
		end := off + frameHeader + int(n)
		if !bytes.Equal(b[off:off+3], frameMagic) || n > maxFrameBytes || end > len(b) || end <= off ||
			fnv32a(fnvOffset, b[off+frameHeader:end]) != sum {
			next := bytes.Index(b[off+1:], frameMagic)
			if next < 0 {
				break
			}
			off += 1 + next
			continue
		}
		payload := b[off+frameHeader : end]
		switch kind {
		case frameEnd:
			ended[string(payload)] = true
		case frameStart:
			pid, k := binary.Uvarint(payload)
			if k > 0 && pid <= 1<<31 {
				if rec, err := decodeRecord(payload[k:]); err == nil && rec.ID != "" && len(rec.ID) <= MaxIDLen {
					runs = append(runs, openRun{pid: int(pid), rec: rec, frame: b[off:end]})
				}
			}
		}
		off = end
	}
	open := runs[:0]
	for _, r := range runs {
		if !ended[r.rec.ID] {
			open = append(open, r)
		}
	}
	return open
}

// ReapRuns queues the records of the runs whose process has ended without
// finishing them, and compacts the runs log to the starts of the runs still
// going; alive says whether a process runs (see [ProcessAlive]). It returns
// how many records it queued. A run that ends while the log is compacted
// may lose its end: it is then queued again by a later reap, under the id
// its own record was queued with, which the queue and the server keep once.
func (q *Queue) ReapRuns(ctx context.Context, alive func(pid int) bool) (int, error) {
	return q.reapRuns(ctx, alive, q.lockTimeout)
}

// reapRuns is ReapRuns waiting at most wait for the runs log's lock.
func (q *Queue) reapRuns(ctx context.Context, alive func(pid int) bool, wait time.Duration) (int, error) {
	f, err := fsutil.OpenFile(q.runsPath(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := waitLock(f, time.Now().Add(wait), journalLockPoll); err != nil {
		return 0, nil // another process reaps
	}
	defer unlockFile(f)
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return 0, err
	}
	var recs []Record
	var keep []byte
	for _, r := range parseRuns(b) {
		if r.pid == os.Getpid() || alive(r.pid) && !stale(r.rec.ID) {
			keep = append(keep, r.frame...)
			continue
		}
		recs = append(recs, r.rec)
	}
	if len(recs) > 0 {
		if err := q.Append(ctx, recs...); err != nil {
			return 0, fmt.Errorf("store: queue the records of ended runs: %w", err)
		}
	}
	// Compact, unless a run appended meanwhile: its frame is then kept for
	// the next reap.
	if fi, err := f.Stat(); err == nil && fi.Size() == int64(len(b)) {
		if err := f.Truncate(0); err == nil && len(keep) > 0 {
			_, _ = f.WriteAt(keep, 0)
		}
	}
	return len(recs), nil
}

// stale reports whether a run counts as ended although its process seems
// to run: where processes cannot be asked, once it started a day ago.
func stale(id string) bool {
	if processesCheckable {
		return false
	}
	t, ok := wire.EventIDTime(id)
	return ok && time.Since(t) > 24*time.Hour
}

// clearRuns empties the runs log: a purge forgets the unfinished runs too.
func (q *Queue) clearRuns() {
	_ = os.Truncate(q.runsPath(), 0)
}
