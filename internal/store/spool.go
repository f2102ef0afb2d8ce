package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	spoolExt   = ".json" // one spooled record
	dropExt    = ".drop" // a count of records that could not be spooled
	tempPrefix = ".tmp-"

	// staleTemp is the age after which a temp file is taken to be left by a
	// writer that died before renaming it.
	staleTemp = 10 * time.Minute
)

// spoolRec is the content of a spool file. Data is the record's bytes
// (base64 in JSON); TS and PID order records from the same and from
// different processes.
type spoolRec struct {
	ID   string `json:"id"`
	Data []byte `json:"data"`
	TS   int64  `json:"ts"`
	PID  int    `json:"pid"`
}

// spoolName is the file name for a record ID. IDs that are safe file names
// on every platform (lower-case letters, digits and '-', 8 to 128 bytes, as
// a canonical UUID) are used as they are; others are hashed. The name is
// what makes the spool hold an ID once.
func spoolName(id string) string {
	safe := len(id) >= 8 && len(id) <= 128
	for i := 0; safe && i < len(id); i++ {
		c := id[i]
		safe = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0
	}
	if safe {
		return id + spoolExt
	}
	sum := sha256.Sum256([]byte(id))
	return "_h" + hex.EncodeToString(sum[:]) + spoolExt
}

// stamp returns a timestamp that increases strictly within this Queue, for
// ordering spooled records even if the wall clock steps back.
func (q *Queue) stamp() int64 {
	q.stampMu.Lock()
	defer q.stampMu.Unlock()
	now := time.Now().UnixNano()
	if now <= q.lastStamp {
		now = q.lastStamp + 1
	}
	q.lastStamp = now
	return now
}

// spoolAppend writes recs to the spool, one file per record. A record that
// cannot be written, or that finds the spool full (MaxEvents files), is
// dropped and the error wraps ErrNotStored; the count, with extraDropped,
// goes into a drop file that the next operation holding the lock adds to the
// dropped counter.
func (q *Queue) spoolAppend(recs []Record, extraDropped uint64) error {
	if _, err := os.Lstat(q.spoolDir); err != nil {
		if err := os.MkdirAll(q.spoolDir, 0o700); err != nil {
			q.log.Error("store: events lost: cannot create spool", "path", q.spoolDir, "lost", uint64(len(recs))+extraDropped, "err", err)
			return fmt.Errorf("%w: create spool: %v", ErrNotStored, err)
		}
		syncDir(filepath.Dir(q.spoolDir))
	}
	n := q.spoolLen()
	dropped := extraDropped
	var firstErr error
	var full uint64
	wrote := false
	for _, r := range recs {
		name := filepath.Join(q.spoolDir, spoolName(r.ID))
		if _, err := os.Lstat(name); err == nil {
			continue // already spooled
		}
		if n >= q.maxEvents {
			full++
			continue
		}
		if err := q.writeSpoolFile(name, r); err != nil {
			dropped++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n++
		wrote = true
		q.stampMu.Lock()
		q.lastSpooled = name
		q.stampMu.Unlock()
	}
	if wrote {
		syncDir(q.spoolDir)
	}
	if full > 0 {
		q.log.Warn("store: spool full; dropping events", "path", q.spoolDir, "dropped", full)
	}
	if dropped+full > 0 {
		q.writeDrop(dropped + full)
	}
	switch {
	case firstErr != nil:
		return fmt.Errorf("%w: %v", ErrNotStored, firstErr)
	case full > 0:
		return fmt.Errorf("%w: spool full, %d record(s) dropped and counted", ErrNotStored, full)
	}
	return nil
}

// ownSpoolPending reports whether a record this Queue spooled is still in
// the spool. Once the latest is gone, all were moved in: a drain takes
// every spool file there when it starts.
func (q *Queue) ownSpoolPending() bool {
	q.stampMu.Lock()
	name := q.lastSpooled
	q.stampMu.Unlock()
	if name == "" {
		return false
	}
	if _, err := os.Lstat(name); err == nil {
		return true
	}
	q.stampMu.Lock()
	if q.lastSpooled == name {
		q.lastSpooled = ""
	}
	q.stampMu.Unlock()
	return false
}

// writeSpoolFile writes r to name atomically and durably: temp file, fsync,
// rename. The caller fsyncs the directory.
func (q *Queue) writeSpoolFile(name string, r Record) error {
	b, err := json.Marshal(spoolRec{ID: r.ID, Data: r.Data, TS: q.stamp(), PID: os.Getpid()})
	if err != nil {
		return err
	}
	return writeFileAtomic(q.spoolDir, name, b)
}

func writeFileAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// writeDrop records n lost events in a drop file. If even that fails the
// count is only logged (and Append returns an error).
func (q *Queue) writeDrop(n uint64) {
	if n == 0 {
		return
	}
	name := filepath.Join(q.spoolDir, fmt.Sprintf("_d%d-%d%s", q.stamp(), os.Getpid(), dropExt))
	if err := writeFileAtomic(q.spoolDir, name, []byte(strconv.FormatUint(n, 10))); err != nil {
		q.log.Error("store: events lost and the loss could not be recorded", "path", q.spoolDir, "lost", n, "err", err)
		return
	}
	syncDir(q.spoolDir)
}

// listSpool returns the names of spool and drop files, and removes temp
// files left by writers that died.
func (q *Queue) listSpool() []string {
	entries, err := os.ReadDir(q.spoolDir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
				_ = os.Remove(filepath.Join(q.spoolDir, name))
			}
		case strings.HasSuffix(name, spoolExt), strings.HasSuffix(name, dropExt):
			names = append(names, name)
		}
	}
	return names
}

// spoolLen counts the records waiting in the spool.
func (q *Queue) spoolLen() int {
	entries, err := os.ReadDir(q.spoolDir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, spoolExt) && !strings.HasPrefix(name, tempPrefix) {
			n++
		}
	}
	return n
}

// drain moves the spool files named into the queue file within tx, oldest
// first, IDs already queued skipped. It returns the files to remove once tx
// has committed. An unreadable spool file is counted as dropped.
func (q *Queue) drain(tx *bolt.Tx, names []string) ([]string, error) {
	var (
		recs    []spoolRec
		dropped uint64
		done    []string
	)
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(q.spoolDir, name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				q.log.Warn("store: cannot read spool file; leaving it", "path", filepath.Join(q.spoolDir, name), "err", err)
			}
			continue
		}
		done = append(done, name)
		if strings.HasSuffix(name, dropExt) {
			n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				q.log.Warn("store: malformed drop file; removing it", "path", filepath.Join(q.spoolDir, name))
				continue
			}
			dropped += n
			continue
		}
		var r spoolRec
		if err := json.Unmarshal(b, &r); err != nil || r.ID == "" || len(r.ID) > MaxIDLen {
			q.log.Warn("store: malformed spool file; counting its event as dropped", "path", filepath.Join(q.spoolDir, name))
			dropped++
			continue
		}
		recs = append(recs, r)
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].TS != recs[j].TS {
			return recs[i].TS < recs[j].TS
		}
		return recs[i].PID < recs[j].PID
	})
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record{ID: r.ID, Data: r.Data}
	}
	if err := q.insert(tx, out, dropped); err != nil {
		return nil, err
	}
	if len(done) > 0 {
		q.log.Debug("store: drained spool", "path", q.spoolDir, "files", len(done))
	}
	return done, nil
}

// removeDrained deletes drained spool files. The directory is not fsynced
// (that would add a disk flush to the contended path): after a power loss a
// drained file may reappear, and the drain then skips its ID if the event is
// still queued (see the package documentation, # Durability).
func (q *Queue) removeDrained(names []string) {
	for _, name := range names {
		if err := os.Remove(filepath.Join(q.spoolDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("store: cannot remove drained spool file", "path", filepath.Join(q.spoolDir, name), "err", err)
		}
	}
}

// clearSpool removes every spooled record and drop file (for Purge).
func (q *Queue) clearSpool() {
	q.removeDrained(q.listSpool())
}
