package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// The journal is an append-only file next to the queue file. With
// Options.Journal, Append writes records there with one write (and one fsync
// with Options.JournalSync) instead of a bbolt transaction (which opens and maps the file and syncs
// twice), and the next operation that holds the queue file's lock moves them
// into the queue file. See the package documentation, # Journal.
//
// The file is a sequence of frames:
//
//	magic   3 bytes "TKJ"
//	kind    1 byte: 'G' generation, 'R' record
//	length  4 bytes, little-endian: the payload's length
//	sum     4 bytes, little-endian: FNV-1a (32-bit) of the payload
//	payload a generation: 16 random bytes; a record: as in the queue file,
//	        uvarint(len(id)), the id, the data
//
// The first frame written to an empty journal is a generation frame, which
// names this generation of the file. The queue file records the generation
// and the offset up to which it has taken records in, in the same transaction
// that takes them in, so that a journal whose truncation was lost (a crash
// between the commit and the truncation) is never taken in twice.
const (
	journalName = "queue.log"

	frameHeader   = 12
	frameGen      = 'G'
	frameRecord   = 'R'
	genLen        = 16
	maxFrameBytes = 64 << 20

	// journalSoftMax is the journal size from which Append takes the queue
	// file's lock to move the journal in, instead of adding to it.
	journalSoftMax = 256 << 10
	// journalHardMax is the size past which Append never adds to the journal
	// (when the queue file's lock could not be had either, it spools).
	journalHardMax = 4 * journalSoftMax

	// journalLockPoll is how often a journal lock is tried again. The lock
	// is held only for one write or for moving the journal in.
	journalLockPoll = time.Millisecond
)

var (
	frameMagic = []byte("TKJ")

	keyJournalGen = []byte("journal_gen") // meta: generation taken in
	keyJournalOff = []byte("journal_off") // meta: offset taken in up to

	// errJournalFull makes Append use the queue file instead.
	errJournalFull = errors.New("store: journal over its size limit")
)

// journalRec is a record read from the journal and the offset where its
// frame ends.
type journalRec struct {
	Record
	end int64
}

// journalFile is a parsed journal.
type journalFile struct {
	gen  []byte // nil when the journal has no generation frame
	recs []journalRec
	bad  int // stretches of bytes that were not valid frames (torn writes)
}

// fnv32a continues an FNV-1a hash (start with fnvOffset) over b. It needs
// no tables, so checking a frame costs a fresh process nothing at start-up;
// it is there to detect torn and damaged frames, not tampering.
func fnv32a(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

const fnvOffset = 2166136261

func appendFrame(b []byte, kind byte, payload ...[]byte) []byte {
	n := 0
	crc := uint32(fnvOffset)
	for _, p := range payload {
		n += len(p)
		crc = fnv32a(crc, p)
	}
	b = append(b, frameMagic...)
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, crc)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// parseJournal reads the frames in b. A stretch that is not a valid frame
// (a write torn by a crash, garbage) is skipped up to the next frame that
// checks out.
func parseJournal(b []byte) journalFile {
	var jf journalFile
	off := 0
	inBad := false
	for off+frameHeader <= len(b) {
		kind, n, crc := b[off+3], binary.LittleEndian.Uint32(b[off+4:]), binary.LittleEndian.Uint32(b[off+8:])
		end := off + frameHeader + int(n)
		ok := bytes.Equal(b[off:off+3], frameMagic) && n <= maxFrameBytes && end <= len(b) && end > off &&
			fnv32a(fnvOffset, b[off+frameHeader:end]) == crc
		var rec Record
		if ok {
			switch kind {
			case frameGen:
				ok = n == genLen
			case frameRecord:
				var err error
				rec, err = decodeRecord(b[off+frameHeader : end])
				ok = err == nil && rec.ID != "" && len(rec.ID) <= MaxIDLen
			default:
				ok = false
			}
		}
		if !ok {
			if !inBad {
				jf.bad++
				inBad = true
			}
			next := bytes.Index(b[off+1:], frameMagic)
			if next < 0 {
				return jf
			}
			off += 1 + next
			continue
		}
		inBad = false
		if kind == frameGen {
			if jf.gen == nil && len(jf.recs) == 0 {
				jf.gen = append([]byte{}, b[off+frameHeader:end]...)
			}
		} else {
			jf.recs = append(jf.recs, journalRec{Record: rec, end: int64(end)})
		}
		off = end
	}
	if off < len(b) && !inBad {
		jf.bad++
	}
	return jf
}

// pendingIn returns the records of jf that the queue file has not taken in,
// given the generation and offset it recorded.
func (jf journalFile) pendingIn(gen []byte, off uint64) []journalRec {
	if jf.gen == nil || !bytes.Equal(jf.gen, gen) {
		return jf.recs
	}
	for i, r := range jf.recs {
		if uint64(r.end) > off {
			return jf.recs[i:]
		}
	}
	return nil
}

func (q *Queue) journalPath() string { return filepath.Join(filepath.Dir(q.path), journalName) }

// waitLock takes f's exclusive lock (on the queue file, the one bbolt
// takes), trying every poll until deadline, and returns ErrLocked then.
func waitLock(f *os.File, deadline time.Time, poll time.Duration) error {
	for {
		err := tryLockFile(f)
		if !errors.Is(err, ErrLocked) {
			return err
		}
		if time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(poll)
	}
}

// journalAppend adds recs to the journal: under the journal's lock it
// checks the size and writes the frames in one write, then, with the lock
// released and with Options.JournalSync, it syncs the file. If a process
// moves the journal in and truncates it between the write and the sync, the
// records are already in the queue file, durably. It returns errJournalFull, writing nothing, when
// the journal holds limit bytes or more.
func (q *Queue) journalAppend(recs []Record, limit int64, deadline time.Time) error {
	path := q.journalPath()
	// Read access too: on Windows an append-only handle cannot be locked.
	f, err := fsutil.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		f, err = fsutil.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
		created = true
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := waitLock(f, deadline, journalLockPoll); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		unlockFile(f)
		return err
	}
	if fi.Size() >= limit {
		unlockFile(f)
		return errJournalFull
	}
	size := 0
	for _, r := range recs {
		size += frameHeader + binary.MaxVarintLen64 + len(r.ID) + len(r.Data)
	}
	buf := make([]byte, 0, frameHeader+genLen+size)
	if fi.Size() == 0 {
		var gen [genLen]byte
		binary.LittleEndian.PutUint64(gen[:], rand.Uint64())
		binary.LittleEndian.PutUint64(gen[8:], rand.Uint64())
		buf = appendFrame(buf, frameGen, gen[:])
	}
	var idLen [binary.MaxVarintLen64]byte
	for _, r := range recs {
		n := binary.PutUvarint(idLen[:], uint64(len(r.ID)))
		buf = appendFrame(buf, frameRecord, idLen[:n], []byte(r.ID), r.Data)
	}
	_, err = f.Write(buf)
	unlockFile(f)
	if err != nil {
		// A short write leaves a torn frame, which readers skip.
		return err
	}
	if !q.journalSync {
		return nil
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if created {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// JournalSize returns the size of the journal, the records appended since
// they were last moved into the queue file, and of the runs log of the runs
// that write their own record, whose finished runs are records to queue
// too; zero when there is neither.
func (q *Queue) JournalSize() int64 {
	n := q.journalSize()
	if fi, err := os.Stat(q.runs2Path()); err == nil {
		n += fi.Size()
	}
	return n
}

// journalSize returns the journal's size, zero when there is none.
func (q *Queue) journalSize() int64 {
	fi, err := os.Stat(q.journalPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// heldJournal is the journal locked by an operation that moves it in.
type heldJournal struct {
	f    *os.File
	keep bool // do not truncate (tests)
}

// takeJournal locks the journal and moves the records the queue file has
// not taken in yet into tx, in journal order, recording the generation and
// offset in tx. The caller truncates the journal with release after tx
// commits, or just releases it. It returns nil when there is no journal or
// its lock could not be had by deadline (busy): its records stay there,
// durable, for a later operation.
func (q *Queue) takeJournal(tx *bolt.Tx, deadline time.Time) (h *heldJournal, busy bool, err error) {
	f, err := fsutil.OpenFile(q.journalPath(), os.O_RDWR, 0)
	if err != nil {
		return nil, false, nil
	}
	if err := waitLock(f, deadline, journalLockPoll); err != nil {
		f.Close()
		q.log.Debug("store: journal busy; leaving it for a later operation", "path", q.journalPath(), "err", err)
		return nil, errors.Is(err, ErrLocked), nil
	}
	h = &heldJournal{f: f, keep: q.keepJournal}
	b, err := io.ReadAll(f)
	if err != nil {
		q.log.Warn("store: cannot read journal; leaving it", "path", q.journalPath(), "err", err)
		h.release(false)
		return nil, false, nil
	}
	if len(b) == 0 {
		h.release(false)
		return nil, false, nil
	}
	jf := parseJournal(b)
	if jf.bad > 0 {
		q.log.Debug("store: journal has torn or damaged stretches; skipped them", "path", q.journalPath(), "stretches", jf.bad)
	}
	mb := tx.Bucket(bucketMeta)
	pending := jf.pendingIn(mb.Get(keyJournalGen), getUint(mb, keyJournalOff))
	recs := make([]Record, len(pending))
	for i, r := range pending {
		recs[i] = r.Record
	}
	if err := q.insert(tx, recs, 0); err != nil {
		h.release(false)
		return nil, false, err
	}
	gen := jf.gen
	if gen == nil {
		gen = []byte{}
	}
	if err := mb.Put(keyJournalGen, gen); err != nil {
		h.release(false)
		return nil, false, err
	}
	if err := putUint(mb, keyJournalOff, uint64(len(b))); err != nil {
		h.release(false)
		return nil, false, err
	}
	if len(pending) > 0 {
		q.log.Debug("store: moved journal into the queue file", "path", q.journalPath(), "records", len(pending))
	}
	return h, false, nil
}

// release empties the journal if committed (its records are in the queue
// file, durably) and unlocks it. The truncation is not synced: if it is
// lost, the generation and offset recorded in the queue file keep its
// records from being taken in again.
func (h *heldJournal) release(committed bool) {
	if h == nil {
		return
	}
	if committed && !h.keep {
		_ = h.f.Truncate(0)
	}
	unlockFile(h.f)
	h.f.Close()
}

// journalSummary returns how many records in the journal the queue file has
// not taken in (given its recorded generation and offset) and the first of
// them, without locking or changing anything.
func (q *Queue) journalSummary(gen []byte, off uint64) (int, Record) {
	b, err := fsutil.ReadFile(q.journalPath())
	if err != nil || len(b) == 0 {
		return 0, Record{}
	}
	return countJournal(b, gen, off)
}

// countJournal is what Summary needs of a journal: the number of records
// pending in the queue file's terms and the first of them. A CLI run with an
// endpoint asks for it at every exit, so it walks the frame headers and
// checks and decodes only the first pending record, where parseJournal
// would check and copy every record. Whenever a header does not check out
// (damage, not just a write torn at the end) it answers with parseJournal.
// A record whose header is intact but whose payload is damaged is counted
// here and skipped when the journal is moved in.
func countJournal(b []byte, gen []byte, off uint64) (int, Record) {
	slow := func() (int, Record) {
		recs := parseJournal(b).pendingIn(gen, off)
		if len(recs) == 0 {
			return 0, Record{}
		}
		return len(recs), recs[0].Record
	}
	var (
		fileGen []byte
		seen    bool // a frame was read: a later generation frame does not count
		n       int
		first   = -1 // offset of the first pending record's frame
	)
	pos := 0
	for pos+frameHeader <= len(b) {
		kind, size := b[pos+3], binary.LittleEndian.Uint32(b[pos+4:])
		end := pos + frameHeader + int(size)
		if !bytes.Equal(b[pos:pos+3], frameMagic) || size > maxFrameBytes || end <= pos ||
			(kind != frameGen && kind != frameRecord) || (kind == frameGen && size != genLen) {
			return slow()
		}
		if end > len(b) {
			if bytes.Contains(b[pos+1:], frameMagic) {
				return slow()
			}
			break // a write torn at the end
		}
		switch {
		case kind == frameGen && !seen:
			fileGen = b[pos+frameHeader : end]
		case kind == frameRecord:
			n++
			if first < 0 {
				first = pos
			}
		}
		seen = true
		pos = end
	}
	if pos < len(b) && bytes.Contains(b[pos+1:], frameMagic) {
		return slow()
	}
	if fileGen != nil && bytes.Equal(fileGen, gen) {
		// Count only the records ending past the offset taken in.
		n, first = 0, -1
		for p := 0; p+frameHeader <= len(b); {
			end := p + frameHeader + int(binary.LittleEndian.Uint32(b[p+4:]))
			if end > len(b) {
				break
			}
			if b[p+3] == frameRecord && uint64(end) > off {
				n++
				if first < 0 {
					first = p
				}
			}
			p = end
		}
	}
	if n == 0 {
		return 0, Record{}
	}
	end := first + frameHeader + int(binary.LittleEndian.Uint32(b[first+4:]))
	payload := b[first+frameHeader : end]
	r, err := decodeRecord(payload)
	if err != nil || fnv32a(fnvOffset, payload) != binary.LittleEndian.Uint32(b[first+8:]) ||
		r.ID == "" || len(r.ID) > MaxIDLen {
		return slow()
	}
	return n, r
}
