package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// A run file holds the record of a command that has started and not yet
// finished: the record to queue if its process ends without finishing it
// (os.Exit in the command, log.Fatal, a signal, kill -9). A normal finish
// queues its own record and removes the file; [Queue.ReapRuns] queues the
// records of the files whose process is gone. Run files live in the
// directory "running" next to the queue file, one per run, named
// "<pid>-<record id>.run", and hold one journal frame, so that a file torn
// by a power loss is detected and skipped.
const runsDir = "running"

// RunStart is a started run's file. End removes it.
type RunStart struct {
	path string
}

// StartRun writes r as the record of the run of this process that starts
// now: with one create and one write, without fsync (a run file lost to a
// power loss loses only an unfinished run's record). It returns a zero
// RunStart when the file cannot be written: the run is then recorded only
// if it finishes.
func (q *Queue) StartRun(r Record) RunStart {
	if r.ID == "" || len(r.ID) > MaxIDLen || strings.ContainsAny(r.ID, `/\`) {
		return RunStart{}
	}
	dir := filepath.Join(filepath.Dir(q.path), runsDir)
	path := filepath.Join(dir, strconv.Itoa(os.Getpid())+"-"+r.ID+".run")
	var idLen [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(idLen[:], uint64(len(r.ID)))
	b := appendFrame(make([]byte, 0, frameHeader+n+len(r.ID)+len(r.Data)), frameRecord, idLen[:n], []byte(r.ID), r.Data)
	f, err := fsutil.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = fsutil.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if err != nil {
		return RunStart{}
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return RunStart{}
	}
	return RunStart{path: path}
}

// End removes the run's file: the run finished and queued its own record.
func (s RunStart) End() {
	if s.path != "" {
		os.Remove(s.path)
	}
}

// ReapRuns queues the records of the runs whose process has ended without
// finishing them, and removes their files; alive says whether a process
// runs (see [ProcessAlive]). A file that cannot be read as a record is
// removed. It returns how many records it queued.
func (q *Queue) ReapRuns(ctx context.Context, alive func(pid int) bool) (int, error) {
	dir := filepath.Join(filepath.Dir(q.path), runsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var recs []Record
	var paths []string
	for _, e := range entries {
		name := e.Name()
		pidText, _, ok := strings.Cut(name, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || !strings.HasSuffix(name, ".run") {
			continue
		}
		path := filepath.Join(dir, name)
		if pid == os.Getpid() {
			continue
		}
		if alive(pid) {
			info, err := e.Info()
			if err != nil || !runFileStale(int64(time.Since(info.ModTime()))) {
				continue
			}
		}
		b, err := fsutil.ReadFile(path)
		if err != nil {
			continue
		}
		paths = append(paths, path)
		if jf := parseJournal(b); len(jf.recs) == 1 {
			recs = append(recs, jf.recs[0].Record)
		}
	}
	if len(recs) > 0 {
		if err := q.Append(ctx, recs...); err != nil {
			return 0, fmt.Errorf("store: queue the records of ended runs: %w", err)
		}
	}
	for _, p := range paths {
		os.Remove(p)
	}
	return len(recs), nil
}

// clearRuns removes every run file but this process's: a purge forgets
// the unfinished runs too.
func (q *Queue) clearRuns() {
	dir := filepath.Join(filepath.Dir(q.path), runsDir)
	entries, _ := os.ReadDir(dir)
	own := strconv.Itoa(os.Getpid()) + "-"
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), own) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// staleRun is how old a run file is when [ProcessAlive] cannot tell and
// takes its process for ended.
const staleRun = 24 * time.Hour
