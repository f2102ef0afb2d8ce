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
//	'S' start:  uvarint(pid), uvarint(len(id)), id, the record's data
//	'E' end:    the id
//	'R' run:    uvarint(pid), uvarint(len(id)), id, the run as Options.BuildRun reads it
//	'F' finish: uvarint(len(id)), id, the finished run, likewise
//
// The runs that write their own record ('R' and 'F') have a log of their
// own, "runs2.log", of the same frames: a reap by an SDK version from
// before them, sharing the queue directory, compacts runs.log to the
// frames it knows and would drop theirs.
//
// A run appends its start and keeps the file open. With [Queue.BeginRun]
// and [RunStart.Finish] it writes what it knows of itself, and its finish
// is the record to queue: Options.BuildRun builds the event when the log
// is reaped, so that the command's process neither builds nor encodes it,
// and writes nothing else. With [Queue.StartRun] its start is an event
// already, and a normal finish queues its own record under the same id,
// then appends the end. [Queue.ReapRuns] queues the records of the
// finished runs and of the starts without an end whose process is gone, and
// compacts the file.
const (
	runsName   = "runs.log"
	runs2Name  = "runs2.log"
	frameStart = 'S'
	frameEnd   = 'E'
	frameRun   = 'R'
	frameDone  = 'F'
)

// RunStart is a started run. Finish or End notes that it finished.
type RunStart struct {
	f    *os.File
	id   string
	sync bool // fsync the finish (Options.JournalSync)
}

// StartRun appends r as the record of the run of this process that starts
// now, without fsync (a start lost to a power loss loses only an unfinished
// run's record). It returns a zero RunStart when the log cannot be written:
// the run is then recorded only if it finishes.
func (q *Queue) StartRun(r Record) RunStart {
	return q.startRun(frameStart, r.ID, r.Data)
}

// BeginRun is StartRun for a run that writes data, what it knows of
// itself, for Options.BuildRun to build its record from, and finishes with
// [RunStart.Finish].
func (q *Queue) BeginRun(id string, data []byte) RunStart {
	return q.startRun(frameRun, id, data)
}

func (q *Queue) startRun(kind byte, id string, data []byte) RunStart {
	if id == "" || len(id) > MaxIDLen {
		return RunStart{}
	}
	path := q.runsPath()
	if kind == frameRun {
		path = q.runs2Path()
	}
	f, err := fsutil.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return RunStart{}
	}
	var head [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(head[:], uint64(os.Getpid()))
	n += binary.PutUvarint(head[n:], uint64(len(id)))
	b := appendFrame(make([]byte, 0, frameHeader+n+len(id)+len(data)), kind, head[:n], []byte(id), data)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return RunStart{}
	}
	// The log is compacted by reaps, which senders run. Without sends (no
	// endpoint, telemetry held) it would grow by every run: past its
	// bound, this run reaps it. After the write the offset is the size.
	if size, err := f.Seek(0, io.SeekCurrent); err == nil && size > runsCompactAt {
		// Without waiting: if another process is at it, it compacts.
		_, _ = q.reapRunsIn(context.Background(), path, ProcessAlive, 0)
	}
	return RunStart{f: f, id: id, sync: q.journalSync}
}

// runsCompactAt is the runs log's size past which a starting run reaps it:
// some 100 finished runs.
const runsCompactAt = 64 << 10

// End notes that the run finished and queued its own record.
func (s RunStart) End() {
	if s.f == nil {
		return
	}
	_, _ = s.f.Write(appendFrame(nil, frameEnd, []byte(s.id)))
	s.f.Close()
}

// Finish notes that a run begun with BeginRun finished, with data, the
// whole run as Options.BuildRun reads it, as its record: one write to the
// runs log, made under the log's lock so that a reap compacting the log
// cannot drop it, and synced with Options.JournalSync. The record is then
// as durable as a journal append. Finish reports false when the log is
// not open or its lock is busy (a reap, another run finishing at the same
// moment), having written nothing: the caller then queues the record
// itself and calls End. After a failed write it reports false too: the
// caller's record and the run's start share the id, and the queue keeps
// one.
func (s RunStart) Finish(data []byte) bool {
	if s.f == nil || tryLockFile(s.f) != nil {
		return false
	}
	var head [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(head[:], uint64(len(s.id)))
	_, err := s.f.Write(appendFrame(make([]byte, 0, frameHeader+n+len(s.id)+len(data)), frameDone, head[:n], []byte(s.id), data))
	if err == nil && s.sync {
		err = s.f.Sync()
	}
	if err != nil {
		_ = unlockFile(s.f)
		return false
	}
	s.f.Close() // and its lock
	return true
}

func (q *Queue) runsPath() string  { return filepath.Join(filepath.Dir(q.path), runsName) }
func (q *Queue) runs2Path() string { return filepath.Join(filepath.Dir(q.path), runs2Name) }

// loggedRun is what the runs log holds of one run.
type loggedRun struct {
	id    string
	pid   int
	kind  byte   // of its start: frameStart, frameRun, or 0 when it has none
	data  []byte // its start's data
	start []byte // its start frame, as written
	done  []byte // the data of its finish frame; nil when none
	fin   []byte // its finish frame, as written
	ended bool   // an end frame: it queued its own record
}

// parseRuns returns the runs in b, in the order of their first frame.
func parseRuns(b []byte) []*loggedRun {
	var runs []*loggedRun
	byID := map[string]*loggedRun{}
	run := func(id string) *loggedRun {
		r := byID[id]
		if r == nil {
			r = &loggedRun{id: id}
			byID[id] = r
			runs = append(runs, r)
		}
		return r
	}
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
			if len(payload) > 0 && len(payload) <= MaxIDLen {
				run(string(payload)).ended = true
			}
		case frameStart, frameRun:
			pid, k := binary.Uvarint(payload)
			if k <= 0 || pid > 1<<31 {
				break
			}
			id, rest, ok := cutID(payload[k:])
			if !ok {
				break
			}
			r := run(id)
			r.pid, r.kind, r.start = int(pid), kind, b[off:end]
			r.data = rest
		case frameDone:
			if id, rest, ok := cutID(payload); ok {
				r := run(id)
				r.done, r.fin = rest, b[off:end]
			}
		}
		off = end
	}
	return runs
}

// cutID splits uvarint(len(id)), id, rest.
func cutID(b []byte) (id string, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > MaxIDLen || uint64(len(b)-k) < n {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}

// ReapRuns queues the records of the finished runs, and of the runs whose
// process has ended without finishing them, and compacts the runs log to
// the starts of the runs still going; alive says whether a process runs
// (see [ProcessAlive]). It returns how many records it queued. The log
// keeps the frames appended while it reaps, but a run's start appended in
// the moment between its last read and the truncation is lost: that run is
// then recorded only if it finishes (a finish waits for the log's lock, or
// queues its record itself). A run that ends while the log is compacted
// and queues its own record may lose its end: it is then queued again by a
// later reap, under the id its own record was queued with, which the queue
// and the server keep once.
func (q *Queue) ReapRuns(ctx context.Context, alive func(pid int) bool) (int, error) {
	return q.reapRuns(ctx, alive, q.lockTimeout)
}

// reapRuns is ReapRuns waiting at most wait for each runs log's lock.
func (q *Queue) reapRuns(ctx context.Context, alive func(pid int) bool, wait time.Duration) (int, error) {
	n, err := q.reapRunsIn(ctx, q.runsPath(), alive, wait)
	if err != nil {
		return n, err
	}
	m, err := q.reapRunsIn(ctx, q.runs2Path(), alive, wait)
	return n + m, err
}

// reapRunsIn reaps the runs log at path.
func (q *Queue) reapRunsIn(ctx context.Context, path string, alive func(pid int) bool, wait time.Duration) (int, error) {
	f, err := fsutil.OpenFile(path, os.O_RDWR, 0)
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
	build := func(r *loggedRun, data []byte) {
		rec, err := q.buildRun(data)
		if err != nil {
			q.log.Warn("store: a run's record could not be built; dropped", "id", r.id, "err", err)
			return
		}
		recs = append(recs, Record{ID: r.id, Data: rec})
	}
	for _, r := range parseRuns(b) {
		switch {
		case r.ended:
			// It queued its own record.
		case r.done != nil && q.buildRun != nil:
			build(r, r.done)
		case r.done != nil:
			keep = append(append(keep, r.start...), r.fin...) // for a Queue that can build it
		case r.pid == os.Getpid() || alive(r.pid) && !stale(r.id):
			keep = append(keep, r.start...)
		case r.kind == frameStart:
			recs = append(recs, Record{ID: r.id, Data: r.data})
		case q.buildRun != nil:
			build(r, r.data)
		default:
			keep = append(keep, r.start...)
		}
	}
	if len(recs) > 0 {
		if err := q.Append(ctx, recs...); err != nil {
			return 0, fmt.Errorf("store: queue the records of ended runs: %w", err)
		}
	}
	if len(keep) == len(b) {
		return len(recs), nil // nothing to compact: every frame stays
	}
	// Compact to the frames kept and those appended meanwhile: the starts
	// of runs (a finish waits for the lock). A reap that left the frames
	// it queued would queue them again, and after a send the queue would
	// not know them any more. A start appended between the last read and
	// the truncation is lost: its run is then recorded only if it finishes.
	for {
		more, err := io.ReadAll(f)
		if err != nil {
			return len(recs), nil
		}
		if len(more) == 0 {
			break
		}
		keep = append(keep, more...)
	}
	if err := f.Truncate(0); err == nil && len(keep) > 0 {
		_, _ = f.WriteAt(keep, 0)
	}
	return len(recs), nil
}

// finishedRuns returns how many finished runs wait in the runs log to be
// queued by a reap, and the first of them (its id only).
func (q *Queue) finishedRuns() (int, Record) {
	b, err := fsutil.ReadFile(q.runs2Path())
	if err != nil || len(b) == 0 {
		return 0, Record{}
	}
	n := 0
	var first Record
	for _, r := range parseRuns(b) {
		if r.done != nil && !r.ended {
			if n == 0 {
				first = Record{ID: r.id}
			}
			n++
		}
	}
	return n, first
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
	_ = os.Truncate(q.runs2Path(), 0)
}
