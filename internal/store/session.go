package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// keepCorrupt is how many moved-aside queue files are kept.
const keepCorrupt = 2

// errCorrupt marks a queue file found damaged inside a transaction.
var errCorrupt = errors.New("store: queue file is damaged")

// errCorruptRecord is errCorrupt for a record that does not decode. It is
// not made with fmt.Errorf, which would run fmt in every host's start-up.
var errCorruptRecord error = corruptRecord{}

type corruptRecord struct{}

func (corruptRecord) Error() string { return errCorrupt.Error() + ": malformed record" }
func (corruptRecord) Unwrap() error { return errCorrupt }

func isLocked(err error) bool { return errors.Is(err, ErrLocked) }

// session is one open of the queue file.
type session struct {
	db   *bolt.DB
	file *os.File // the descriptor bbolt opened; it holds the lock
}

// do runs fn in one transaction on the queue file: it waits at most
// LockTimeout for the lock, opens the file (moving a damaged one aside),
// drains the spool into it, runs fn, commits and closes the file again.
// A read-only fn runs in a read transaction unless the spool had records.
func (q *Queue) do(ctx context.Context, writable bool, fn func(*bolt.Tx) error) error {
	return q.doThen(ctx, writable, fn, nil)
}

// doThen is do with a step run after a successful commit, while the lock is
// still held.
func (q *Queue) doThen(ctx context.Context, writable bool, fn func(*bolt.Tx) error, then func()) error {
	return q.run(ctx, txOptions{writable: writable}, fn, then)
}

// txOptions says how run opens its transaction.
type txOptions struct {
	writable bool
	// leaveJournal keeps a read-only operation read-only: the journal is
	// neither moved in nor locked, and the caller reads it itself.
	leaveJournal bool
	// sum, when set, receives what the summary file holds, read in the
	// transaction; the summary file is written afresh from it.
	sum **sumFile
}

// run is doThen with options.
func (q *Queue) run(ctx context.Context, o txOptions, fn func(*bolt.Tx) error, then func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(q.lockTimeout)
	if err := q.acquire(ctx, deadline); err != nil {
		return err
	}
	defer func() { <-q.sem }()

	var lost uint64 // events in a file moved aside, to count as dropped
	for attempt := 0; ; attempt++ {
		s, err := q.openDB(deadline)
		if err != nil {
			return err
		}
		pending := q.listSpool()
		var (
			drained []string
			held    *heldJournal
		)
		// Spooled records are newer than the journal's: a drain of the
		// spool moves the journal in first, even for a read.
		journal := (!o.leaveJournal || len(pending) > 0) && q.journalSize() > 0
		write := o.writable || len(pending) > 0 || lost > 0 || journal
		var sum *sumFile
		if write {
			q.removeSum()
		}
		panicVal, txErr := runTx(s.db, write, func(tx *bolt.Tx) error {
			if err := checkSize(tx, s.file); err != nil {
				return err
			}
			if write {
				if err := ensureBuckets(tx); err != nil {
					return err
				}
			}
			if lost > 0 {
				mb := tx.Bucket(bucketMeta)
				if err := putUint(mb, keyDropped, getUint(mb, keyDropped)+lost); err != nil {
					return err
				}
			}
			if journal {
				var busy bool
				var err error
				if held, busy, err = q.takeJournal(tx, deadline); err != nil {
					return err
				}
				if busy && len(pending) > 0 {
					// The journal's records are older than the spool's
					// and go first: the queue is as good as locked.
					return ErrLocked
				}
			}
			drained = nil
			if len(pending) > 0 {
				var err error
				if drained, err = q.drain(tx, pending); err != nil {
					return err
				}
			}
			if err := fn(tx); err != nil {
				return err
			}
			if write || o.sum != nil {
				sum = snapshotSum(tx)
			}
			return nil
		})
		held.release(txErr == nil && panicVal == nil)
		if panicVal == nil && !errors.Is(txErr, errCorrupt) {
			if txErr == nil {
				if sum != nil {
					info, _ := s.file.Stat()
					q.writeSum(sum, info)
					if o.sum != nil {
						*o.sum = sum
					}
				}
				// Still under the lock, so no other process drains these
				// files again after the IDs they hold were acknowledged.
				q.removeDrained(drained)
				if then != nil {
					then()
				}
			}
			q.closeSession(s)
			return txErr
		}
		reason := fmt.Sprint(txErr)
		if panicVal != nil {
			reason = fmt.Sprintf("panic in transaction: %v", panicVal)
			if verr := verify(s.db, s.file); verr == nil {
				// The file checks out: the panic did not come from it.
				q.closeAfterPanic(s)
				q.log.Error("store: recovered panic in queue transaction", "path", q.path, "panic", fmt.Sprint(panicVal))
				return fmt.Errorf("store: recovered panic: %v", panicVal)
			}
		}
		// The lock is still held through s.file, so nobody else is using
		// the file that is moved aside.
		info, _ := s.file.Stat()
		moved, renameErr := q.moveAside(s.file, reason)
		if moved || renameErr != nil {
			lost += countEvents(s.db)
		}
		if panicVal != nil {
			q.closeAfterPanic(s)
		} else {
			q.closeSession(s)
		}
		if renameErr != nil && info != nil {
			// Not renamable while open: copy it aside now that it is closed.
			if err := q.moveAsideUnheld(info, deadline, reason); err != nil {
				return err
			}
		}
		if attempt >= 1 {
			return fmt.Errorf("%w: %s", errCorrupt, reason)
		}
	}
}

// acquire takes this process's turn on the queue, waiting until deadline.
func (q *Queue) acquire(ctx context.Context, deadline time.Time) error {
	select {
	case q.sem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case q.sem <- struct{}{}:
		return nil
	case <-t.C:
		return ErrLocked
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openDB opens the queue file with the lock wait bounded by deadline. A file
// bbolt rejects, or faults on while opening, is moved aside and a fresh one
// is opened in its place.
func (q *Queue) openDB(deadline time.Time) (*session, error) {
	for attempt := 0; ; attempt++ {
		timeout := time.Until(deadline)
		if timeout < time.Millisecond {
			// bbolt treats zero as "wait forever"; a millisecond means one try.
			timeout = time.Millisecond
		}
		var (
			file    *os.File
			info    os.FileInfo
			openErr error
		)
		opts := &bolt.Options{
			Timeout: timeout,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := fsutil.OpenFile(name, flag, perm)
				if err != nil {
					openErr = err
					return nil, err
				}
				file = f
				info, _ = f.Stat()
				return f, nil
			},
		}
		db, panicVal, err := safeOpen(q.path, opts)
		switch {
		case panicVal != nil:
			// bbolt faulted reading the file, which stays open and locked.
			reason := fmt.Sprintf("panic while opening: %v", panicVal)
			if file == nil {
				return nil, fmt.Errorf("store: open %s: %s", q.path, reason)
			}
			_, renameErr := q.moveAside(file, reason)
			// The map bbolt made is abandoned with the panic; it would keep
			// the lock held until this process exits.
			_ = unlockFile(file)
			_ = file.Close()
			if renameErr != nil && info != nil {
				if merr := q.moveAsideUnheld(info, deadline, reason); merr != nil {
					return nil, merr
				}
			}
		case err == nil:
			if info != nil && info.Size() == 0 {
				// bbolt just initialized the file: make its name durable too.
				syncDir(filepath.Dir(q.path))
				if time.Since(info.ModTime()) > time.Minute {
					q.log.Warn("store: queue file was empty; started a fresh one", "path", q.path)
				}
			}
			return &session{db: db, file: file}, nil
		case errors.Is(err, berrors.ErrTimeout):
			return nil, ErrLocked
		case openErr != nil && !errors.Is(openErr, fs.ErrPermission):
			return nil, fmt.Errorf("store: open %s: %w", q.path, err)
		case isTransient(err):
			return nil, fmt.Errorf("store: open %s: %w", q.path, err)
		default:
			// bbolt rejected the file and closed it, releasing the lock.
			if info == nil {
				if info, _ = os.Stat(q.path); info == nil {
					return nil, fmt.Errorf("store: open %s: %w", q.path, err)
				}
			}
			if merr := q.moveAsideUnheld(info, deadline, err.Error()); merr != nil {
				return nil, merr
			}
		}
		if attempt >= 2 {
			return nil, fmt.Errorf("store: open %s: still unusable after moving it aside", q.path)
		}
	}
}

// safeOpen is bolt.Open with faults and panics turned into a returned value.
func safeOpen(path string, opts *bolt.Options) (db *bolt.DB, panicVal any, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, panicVal, err = nil, r, nil
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	return db, nil, err
}

// runTx runs fn in a bbolt transaction, turning faults on the mapped file
// (a truncated file) and panics into a returned value. bbolt rolls the
// transaction back on a panic.
func runTx(db *bolt.DB, writable bool, fn func(*bolt.Tx) error) (panicVal any, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err, panicVal = nil, r
		}
	}()
	if writable {
		return nil, db.Update(fn)
	}
	return nil, db.View(fn)
}

func (q *Queue) closeSession(s *session) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("store: recovered panic closing queue file", "path", q.path, "panic", fmt.Sprint(r))
		}
	}()
	if err := s.db.Close(); err != nil {
		q.log.Warn("store: closing queue file", "path", q.path, "err", err)
	}
}

// closeAfterPanic closes a session whose transaction panicked. bbolt may be
// left holding its internal mutex (if its rollback panicked too), and then
// DB.Close would block forever: it gets a short while, after which the file
// lock is released and the file closed directly; the DB value and its memory
// map are abandoned.
func (q *Queue) closeAfterPanic(s *session) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.closeSession(s)
	}()
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = unlockFile(s.file)
		_ = s.file.Close()
		q.log.Error("store: queue file did not close after a panic; abandoned it", "path", q.path)
	}
}

// countEvents returns the event count a damaged file still records, or zero
// if that cannot be read either.
func countEvents(db *bolt.DB) uint64 {
	var n uint64
	if panicVal, err := runTx(db, false, func(tx *bolt.Tx) error {
		n = getUint(tx.Bucket(bucketMeta), keyCount)
		return nil
	}); err != nil || panicVal != nil {
		return 0
	}
	return n
}

// checkSize reports a queue file shorter than its own high-water mark: a
// truncated file, whose missing pages would fault when read.
func checkSize(tx *bolt.Tx, f *os.File) error {
	if f == nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < tx.Size() {
		return fmt.Errorf("%w: file is %d bytes, its pages need %d (truncated)", errCorrupt, fi.Size(), tx.Size())
	}
	return nil
}

// verify reads every page reachable in the queue file and reports whether
// the file is damaged.
func verify(db *bolt.DB, f *os.File) (err error) {
	panicVal, err := runTx(db, false, func(tx *bolt.Tx) error {
		if err := checkSize(tx, f); err != nil {
			return err
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if string(name) == string(bucketEvents) {
					_, err := decodeRecord(v)
					return err
				}
				return nil
			})
		})
	})
	if panicVal != nil {
		return fmt.Errorf("%w: %v", errCorrupt, panicVal)
	}
	return err
}

// isTransient reports errors that say nothing about the file's contents.
func isTransient(err error) bool {
	for _, e := range []error{syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// moveAsideUnheld moves the file bbolt rejected aside, after taking its lock
// and checking that the path still names it (another process may have
// already replaced it).
func (q *Queue) moveAsideUnheld(info os.FileInfo, deadline time.Time, reason string) error {
	f, err := os.OpenFile(q.path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if errors.Is(err, fs.ErrPermission) {
			// Unusable by this user: nobody using the queue can hold it
			// open, so no lock is needed.
			if cur, serr := os.Stat(q.path); serr == nil && os.SameFile(cur, info) {
				_, _ = q.moveAside(nil, reason)
			}
			return nil
		}
		return fmt.Errorf("store: open %s: %w", q.path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !os.SameFile(fi, info) {
		return nil
	}
	if err := waitLock(f, deadline, 10*time.Millisecond); err != nil {
		return err
	}
	if _, err := q.moveAside(f, reason); err != nil {
		q.copyAside(f, reason)
	}
	return nil
}

// moveAside renames the queue file to <path>.corrupt-<unix> and removes all
// but the newest keepCorrupt such files. The caller holds the lock of held
// (nil for a file nobody can open); nothing happens if the path no longer
// names it. The error reports a failed rename.
func (q *Queue) moveAside(held *os.File, reason string) (moved bool, err error) {
	if held != nil {
		hi, err := held.Stat()
		if err != nil {
			return false, err
		}
		if cur, err := os.Stat(q.path); err != nil || !os.SameFile(cur, hi) {
			return false, nil
		}
	}
	target := q.corruptTarget()
	if err := q.rename(q.path, target); err != nil {
		q.log.Warn("store: cannot rename the unusable queue file", "path", q.path, "err", err)
		return false, err
	}
	syncDir(filepath.Dir(q.path))
	q.log.Warn("store: queue file unusable; moved aside, starting a fresh one",
		"path", q.path, "moved_to", target, "reason", reason)
	q.pruneCorrupt()
	return true, nil
}

// copyAside is moveAside where a file cannot be renamed while open (Windows):
// it copies the locked file f to <path>.corrupt-<unix> and truncates it, and
// bbolt then starts a fresh file in it.
func (q *Queue) copyAside(f *os.File, reason string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	target := q.corruptTarget()
	err = func() error {
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, io.NewSectionReader(f, 0, fi.Size()))
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = f.Truncate(0)
		}
		if err == nil {
			err = f.Sync()
		}
		return err
	}()
	if err != nil {
		q.log.Error("store: queue file unusable and could not be moved aside", "path", q.path, "reason", reason, "err", err)
		return false
	}
	syncDir(filepath.Dir(q.path))
	q.log.Warn("store: queue file unusable; moved aside (copied), starting a fresh one",
		"path", q.path, "moved_to", target, "reason", reason)
	q.pruneCorrupt()
	return true
}

// corruptTarget names the next moved-aside file. Within one second, later
// files get higher suffixes, so that pruning (which orders by name) keeps the
// newest.
func (q *Queue) corruptTarget() string {
	base := fmt.Sprintf("%s.corrupt-%d", q.path, time.Now().Unix())
	others, _ := filepath.Glob(base + "-*")
	if _, err := os.Lstat(base); err != nil && len(others) == 0 {
		return base
	}
	next := int64(1)
	for _, o := range others {
		if n, err := strconv.ParseInt(strings.TrimPrefix(o, base+"-"), 10, 64); err == nil && n >= next {
			next = n + 1
		}
	}
	return fmt.Sprintf("%s-%d", base, next)
}

func (q *Queue) pruneCorrupt() {
	matches, err := filepath.Glob(q.path + ".corrupt-*")
	if err != nil || len(matches) <= keepCorrupt {
		return
	}
	type moved struct {
		path     string
		unix, no int64
	}
	var ms []moved
	for _, m := range matches {
		rest := strings.TrimPrefix(m, q.path+".corrupt-")
		unixStr, noStr, _ := strings.Cut(rest, "-")
		u, err := strconv.ParseInt(unixStr, 10, 64)
		if err != nil {
			continue
		}
		n, _ := strconv.ParseInt(noStr, 10, 64)
		ms = append(ms, moved{m, u, n})
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].unix != ms[j].unix {
			return ms[i].unix > ms[j].unix
		}
		return ms[i].no > ms[j].no
	})
	for i := keepCorrupt; i < len(ms); i++ {
		if err := os.Remove(ms[i].path); err == nil {
			q.log.Info("store: removed old moved-aside queue file", "path", ms[i].path)
		}
	}
}

// syncDir flushes a directory's entries (renames, removals) to disk. Not
// every platform supports it; failures are ignored.
func syncDir(dir string) {
	d, err := fsutil.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
