package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults applied by [Open] to zero-valued [Options] fields.
const (
	DefaultMaxEvents   = 10_000
	DefaultMaxBytes    = 5 << 20
	DefaultLockTimeout = 250 * time.Millisecond
)

// MaxIDLen is the longest Record.ID, in bytes, that [Queue.Append] accepts.
const MaxIDLen = 512

// Options configures a [Queue]. The zero value is ready to use.
type Options struct {
	// MaxEvents is the most events the queue keeps; past it the oldest are
	// dropped and counted. Zero means DefaultMaxEvents (10,000).
	MaxEvents int

	// MaxBytes is the most event data the queue keeps, counted as the sum of
	// Record.Data sizes; past it the oldest events are dropped and counted.
	// Zero means DefaultMaxBytes (5 MiB).
	MaxBytes int64

	// LockTimeout is the longest any operation waits for the queue file's
	// lock, in this process or against other processes. Zero means
	// DefaultLockTimeout (250ms).
	LockTimeout time.Duration

	// Journal makes Append write to the journal, an append-only file next
	// to the queue file, with one write, instead of running a bbolt
	// transaction; the next operation that holds the queue file's lock
	// moves the journal in (see the package documentation, # Journal). It
	// suits short-lived processes that append one event each (CLI mode).
	// False means Append writes to the queue file directly. Every operation
	// moves a journal in, whatever this setting.
	Journal bool

	// JournalSync makes every journal append wait for fsync. False means an
	// append returns once write has handed the record to the kernel: it
	// survives the process being killed, and only a power loss or a kernel
	// crash within the kernel's writeback window can lose it; a record torn
	// by one is detected by its checksum and skipped. Moving the journal
	// into the queue file is always synced.
	JournalSync bool

	// Logger receives reports of recovered faults (a corrupt queue file moved
	// aside, an unreadable spool file) and debug detail. Nil discards them.
	Logger *slog.Logger

	// BuildRun turns what a CLI run wrote of itself ([Queue.BeginRun],
	// [RunStart.Finish]) into the record data to queue: the event is built
	// when the runs log is reaped, not while the command runs. Nil: such
	// runs stay in the runs log until a Queue that has BuildRun reaps it.
	BuildRun func(data []byte) ([]byte, error)
}

// Record is one queued event.
type Record struct {
	ID   string // event_id; the dedup key
	Data []byte // the event JSON, stored and returned verbatim
}

// Batch is the result of [Queue.Peek].
type Batch struct {
	Records []Record
	Dropped uint64 // events dropped over the limits and not yet reported
}

// Queue is a durable FIFO of events in a bbolt file. It does not hold the
// file open between operations, so a Queue needs no Close. A Queue is safe
// for concurrent use by multiple goroutines, and any number of processes may
// use the same file at once.
type Queue struct {
	path        string
	spoolDir    string
	maxEvents   int
	maxBytes    int64
	lockTimeout time.Duration
	journal     bool
	log         *slog.Logger

	// sem serializes this process's operations so that goroutines queue on a
	// channel instead of polling the file lock against each other.
	sem chan struct{}

	stampMu   sync.Mutex
	lastStamp int64
	// lastSpooled is the spool file of this Queue's latest spooled record
	// (guarded by stampMu). While it is there, Append does not use the
	// journal: its records would be moved in before the older spooled ones.
	lastSpooled string

	// rename is os.Rename; tests replace it to take the path used where an
	// open file cannot be renamed.
	rename func(oldpath, newpath string) error

	journalSync bool // fsync each journal append
	buildRun    func(data []byte) ([]byte, error)

	// keepJournal leaves the journal untruncated after moving it in, as a
	// crash between the commit and the truncation would (tests).
	keepJournal bool
}

// Open validates opts and prepares a queue at path, creating its directory
// (mode 0700) if needed. It does not open the file: every operation opens it,
// runs one transaction and closes it again.
func Open(path string, opts Options) (*Queue, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidOptions)
	}
	if opts.MaxEvents < 0 || opts.MaxBytes < 0 || opts.LockTimeout < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidOptions)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("%w: %s is a directory", ErrInvalidOptions, abs)
	case err == nil:
		// The file exists, and so does its directory.
	default:
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("store: create queue directory: %w", err)
		}
	}
	q := &Queue{
		path:        abs,
		spoolDir:    filepath.Join(filepath.Dir(abs), "spool"),
		maxEvents:   opts.MaxEvents,
		maxBytes:    opts.MaxBytes,
		lockTimeout: opts.LockTimeout,
		journal:     opts.Journal && journalSupported,
		journalSync: opts.JournalSync,
		buildRun:    opts.BuildRun,
		log:         opts.Logger,
		sem:         make(chan struct{}, 1),
		rename:      os.Rename,
	}
	if q.maxEvents == 0 {
		q.maxEvents = DefaultMaxEvents
	}
	if q.maxBytes == 0 {
		q.maxBytes = DefaultMaxBytes
	}
	if q.lockTimeout == 0 {
		q.lockTimeout = DefaultLockTimeout
	}
	if q.log == nil {
		q.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return q, nil
}

// Path returns the absolute path of the queue file.
func (q *Queue) Path() string { return q.path }

// Append adds records at the end of the queue. Records whose ID is already
// queued are ignored. When Append returns nil every record is durable: in the
// journal (with Options.Journal), in the queue file or, if its lock could not
// be had within LockTimeout, in the spool (see the package documentation).
// Append with no records is a no-op and does not touch the file.
//
// A record with an empty ID or one longer than [MaxIDLen] fails the whole
// call with [ErrInvalidRecord] before anything is stored. A record whose Data
// alone exceeds MaxBytes is dropped and counted, the others are stored, and
// the error wraps [ErrTooLarge]. If a record can be stored neither in the
// queue file nor in the spool (a write failed, or the spool already holds
// MaxEvents files), the error wraps [ErrNotStored] and the loss is counted
// where possible; the other records are stored.
func (q *Queue) Append(ctx context.Context, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, r := range recs {
		if r.ID == "" || len(r.ID) > MaxIDLen {
			return fmt.Errorf("%w: record %d: ID must be 1 to %d bytes", ErrInvalidRecord, i, MaxIDLen)
		}
	}
	keep := make([]Record, 0, len(recs))
	var tooLarge uint64
	for _, r := range recs {
		if int64(len(r.Data)) > q.maxBytes {
			tooLarge++
			continue
		}
		keep = append(keep, r)
	}
	if len(keep) == 0 && tooLarge == 0 {
		return nil
	}
	deadline := time.Now().Add(q.lockTimeout)
	journaled := false
	if q.journal && tooLarge == 0 && !q.ownSpoolPending() {
		switch err := q.journalAppend(keep, min(journalSoftMax, q.maxBytes), deadline); {
		case err == nil:
			return nil
		case errors.Is(err, errJournalFull):
			journaled = true // move it in now, with this Append
		case isLocked(err):
			// Whoever holds the journal holds the queue file too.
			q.log.Debug("store: journal busy; writing to spool", "path", q.journalPath())
			return q.spoolAppend(keep, 0)
		default:
			q.log.Debug("store: journal unavailable; writing to the queue file", "path", q.journalPath(), "err", err)
		}
	}
	err := q.do(ctx, true, func(tx *bolt.Tx) error {
		return q.insert(tx, keep, tooLarge)
	})
	if err != nil {
		if ctx.Err() != nil && !isLocked(err) {
			return err
		}
		if journaled && q.journalAppend(keep, journalHardMax, deadline) == nil {
			return nil
		}
		q.log.Debug("store: queue file unavailable; writing to spool", "path", q.path, "records", len(keep), "err", err)
		err = q.spoolAppend(keep, tooLarge)
	}
	if err == nil && tooLarge > 0 {
		err = fmt.Errorf("%w: %d record(s) dropped and counted", ErrTooLarge, tooLarge)
	}
	return err
}

// Peek returns the oldest queued records, in order, without removing them:
// at most max records (no limit when max <= 0) and at most maxBytes of Data
// (no limit when maxBytes <= 0), but always at least one record when the
// queue is not empty. Batch.Dropped is the count of events dropped and not
// yet acknowledged with [Queue.Ack]. Peek returns [ErrLocked] when the lock
// could not be had in time.
func (q *Queue) Peek(ctx context.Context, max int, maxBytes int) (Batch, error) {
	var b Batch
	err := q.do(ctx, false, func(tx *bolt.Tx) error {
		b = Batch{}
		if mb := tx.Bucket(bucketMeta); mb != nil {
			b.Dropped = getUint(mb, keyDropped)
		}
		eb := tx.Bucket(bucketEvents)
		if eb == nil {
			return nil
		}
		total := 0
		c := eb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if max > 0 && len(b.Records) >= max {
				break
			}
			r, err := decodeRecord(v)
			if err != nil {
				return err
			}
			if maxBytes > 0 && len(b.Records) > 0 && total+len(r.Data) > maxBytes {
				break
			}
			total += len(r.Data)
			b.Records = append(b.Records, r)
		}
		return nil
	})
	return b, err
}

// Ack deletes the records with the given IDs (unknown IDs are ignored) and
// subtracts dropped, the count reported with the batch, from the dropped
// counter. Call it only after the server confirmed the batch.
func (q *Queue) Ack(ctx context.Context, ids []string, dropped uint64) error {
	return q.do(ctx, true, func(tx *bolt.Tx) error {
		eb, ib, mb := tx.Bucket(bucketEvents), tx.Bucket(bucketIDs), tx.Bucket(bucketMeta)
		count, size := getUint(mb, keyCount), getUint(mb, keyBytes)
		for _, id := range ids {
			if id == "" || len(id) > MaxIDLen {
				continue
			}
			key := ib.Get([]byte(id))
			if key == nil {
				continue
			}
			key = append([]byte(nil), key...)
			if v := eb.Get(key); v != nil {
				if r, err := decodeRecord(v); err == nil {
					size = subFloor(size, uint64(len(r.Data)))
				}
				count = subFloor(count, 1)
				if err := eb.Delete(key); err != nil {
					return err
				}
			}
			if err := ib.Delete([]byte(id)); err != nil {
				return err
			}
		}
		if err := putUint(mb, keyCount, count); err != nil {
			return err
		}
		if err := putUint(mb, keyBytes, size); err != nil {
			return err
		}
		return putUint(mb, keyDropped, subFloor(getUint(mb, keyDropped), dropped))
	})
}

// Len returns the number of queued events, those still in the journal or
// the spool included (it moves them into the queue file). It returns
// [ErrLocked] when the lock could not be had in time.
func (q *Queue) Len(ctx context.Context) (int, error) {
	var n uint64
	err := q.do(ctx, false, func(tx *bolt.Tx) error {
		n = 0
		if mb := tx.Bucket(bucketMeta); mb != nil {
			n = getUint(mb, keyCount)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n) + q.spoolLen(), nil
}

// Dropped returns the count of events dropped over the limits (or lost) and
// not yet acknowledged. It returns [ErrLocked] when the lock could not be had
// in time.
func (q *Queue) Dropped(ctx context.Context) (uint64, error) {
	var n uint64
	err := q.do(ctx, false, func(tx *bolt.Tx) error {
		n = 0
		if mb := tx.Bucket(bucketMeta); mb != nil {
			n = getUint(mb, keyDropped)
		}
		return nil
	})
	return n, err
}

// Purge deletes every queued event, the journal and the spool included, and
// resets the dropped counter. Values stored with [Queue.PutMeta] are kept.
func (q *Queue) Purge(ctx context.Context) error {
	return q.doThen(ctx, true, func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketIDs} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		mb := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyCount, keyBytes, keyDropped} {
			if err := putUint(mb, k, 0); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		q.clearSpool()
		q.clearRuns()
	})
}

// All calls fn for every record in the queue file, oldest first, stopping at
// the first error fn returns, which All returns. fn runs after the lock has
// been released, on a copy of the queue (bounded by MaxBytes). Records still
// in the journal or the spool are moved into the queue file first.
func (q *Queue) All(ctx context.Context, fn func(Record) error) error {
	var recs []Record
	err := q.do(ctx, false, func(tx *bolt.Tx) error {
		recs = recs[:0]
		eb := tx.Bucket(bucketEvents)
		if eb == nil {
			return nil
		}
		return eb.ForEach(func(_, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				return err
			}
			recs = append(recs, r)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// GetMeta returns the value stored under key with [Queue.PutMeta], or nil and
// no error when there is none.
func (q *Queue) GetMeta(ctx context.Context, key string) ([]byte, error) {
	if key == "" {
		return nil, ErrInvalidKey
	}
	var val []byte
	err := q.do(ctx, false, func(tx *bolt.Tx) error {
		val = nil
		if kb := tx.Bucket(bucketKV); kb != nil {
			if v := kb.Get([]byte(key)); v != nil {
				val = append([]byte{}, v...)
			}
		}
		return nil
	})
	return val, err
}

// PutMeta stores val under key, for the sender's own state (next attempt
// time, backoff). A nil val deletes the key. The values are not events: they
// survive [Queue.Purge] and do not count against the limits.
func (q *Queue) PutMeta(ctx context.Context, key string, val []byte) error {
	if key == "" {
		return ErrInvalidKey
	}
	return q.do(ctx, true, func(tx *bolt.Tx) error {
		kb := tx.Bucket(bucketKV)
		if val == nil {
			return kb.Delete([]byte(key))
		}
		return kb.Put([]byte(key), append([]byte{}, val...))
	})
}

// Layout of the queue file.
var (
	bucketEvents = []byte("events") // big-endian sequence -> uvarint(len(id)) id data
	bucketIDs    = []byte("ids")    // id -> big-endian sequence
	bucketMeta   = []byte("meta")   // counters below, big-endian uint64
	bucketKV     = []byte("kv")     // PutMeta values

	keyCount   = []byte("count")
	keyBytes   = []byte("bytes")
	keyDropped = []byte("dropped")
)

func ensureBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketEvents, bucketIDs, bucketMeta, bucketKV} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// insert appends recs (skipping IDs already queued, and dropping and
// counting a record whose Data alone exceeds MaxBytes), adds extraDropped to
// the dropped counter, and enforces the limits by dropping the oldest events.
func (q *Queue) insert(tx *bolt.Tx, recs []Record, extraDropped uint64) error {
	eb, ib, mb := tx.Bucket(bucketEvents), tx.Bucket(bucketIDs), tx.Bucket(bucketMeta)
	count, size, dropped := getUint(mb, keyCount), getUint(mb, keyBytes), getUint(mb, keyDropped)
	dropped += extraDropped
	for _, r := range recs {
		if int64(len(r.Data)) > q.maxBytes {
			dropped++
			continue
		}
		id := []byte(r.ID)
		if ib.Get(id) != nil {
			continue
		}
		seq, err := eb.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(nil, seq)
		if err := eb.Put(key, encodeRecord(r)); err != nil {
			return err
		}
		if err := ib.Put(id, key); err != nil {
			return err
		}
		count++
		size += uint64(len(r.Data))
	}
	var evicted uint64
	c := eb.Cursor()
	for count > uint64(q.maxEvents) || size > uint64(q.maxBytes) {
		k, v := c.First()
		if k == nil {
			count, size = 0, 0
			break
		}
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		if err := ib.Delete([]byte(r.ID)); err != nil {
			return err
		}
		count--
		size = subFloor(size, uint64(len(r.Data)))
		evicted++
	}
	if evicted > 0 {
		q.log.Debug("store: queue over its limits; dropped oldest events", "path", q.path, "dropped", evicted)
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{keyCount, count}, {keyBytes, size}, {keyDropped, dropped + evicted}} {
		if err := putUint(mb, kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

func encodeRecord(r Record) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(r.ID)+len(r.Data))
	b = binary.AppendUvarint(b, uint64(len(r.ID)))
	b = append(b, r.ID...)
	return append(b, r.Data...)
}

// decodeRecord copies a record out of bbolt memory.
func decodeRecord(v []byte) (Record, error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) {
		return Record{}, errCorruptRecord
	}
	id := string(v[w : w+int(n)])
	data := append([]byte{}, v[w+int(n):]...)
	return Record{ID: id, Data: data}, nil
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	if b == nil {
		return 0
	}
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

func subFloor(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
