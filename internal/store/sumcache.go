package store

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// The summary file.
//
// A CLI run with an endpoint asks at every exit whether a send is due, and
// the answer needs the queue file's count, oldest record and send state.
// Opening the queue file for that (open, lock, map, read, unmap) costs a
// short process about as much as the durable write of its event. So every
// process that writes the queue file leaves beside it a small file
// (<path>.sum) with what Summary reads there, stamped with the queue file's
// size and modification time after the write; Summary uses it while the
// queue file still has that size and time, and reads the queue file (and
// writes the summary file afresh) otherwise. A write removes the summary
// file before it starts, so that a process that dies between its commit
// and the new summary file leaves none. The summary file is a cache: it is
// not synced, and a damaged one is not used.

// sumFile is the content of the summary file: the queue file's size and
// modification time when it was written, and what Summary needs from the
// queue file.
type sumFile struct {
	size, mtime int64
	count       uint64
	dropped     uint64
	jgen        []byte
	joff        uint64
	oldest      []byte // the oldest record as stored, or nil
	kv          map[string][]byte
}

var sumMagic = []byte("TKS1")

// sumPath is the path of the summary file.
func (q *Queue) sumPath() string { return q.path + ".sum" }

// snapshotSum reads what the summary file holds from tx.
func snapshotSum(tx *bolt.Tx) *sumFile {
	s := &sumFile{}
	if mb := tx.Bucket(bucketMeta); mb != nil {
		s.count = getUint(mb, keyCount)
		s.dropped = getUint(mb, keyDropped)
		s.jgen = append([]byte{}, mb.Get(keyJournalGen)...)
		s.joff = getUint(mb, keyJournalOff)
	}
	if kb := tx.Bucket(bucketKV); kb != nil {
		s.kv = make(map[string][]byte)
		_ = kb.ForEach(func(k, v []byte) error {
			s.kv[string(k)] = append([]byte{}, v...)
			return nil
		})
	}
	if eb := tx.Bucket(bucketEvents); eb != nil {
		if _, v := eb.Cursor().First(); v != nil {
			s.oldest = append([]byte{}, v...)
		}
	}
	return s
}

// writeSum writes s, stamped with info, as the summary file. The caller
// holds the queue file's lock and has committed what s was read from.
func (q *Queue) writeSum(s *sumFile, info os.FileInfo) {
	if s == nil || info == nil {
		return
	}
	s.size, s.mtime = info.Size(), info.ModTime().UnixNano()
	// One name for every process: only the holder of the queue file's lock
	// writes it, and a process killed before the rename leaves one file.
	tmp := q.sumPath() + ".tmp"
	f, err := fsutil.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, werr := f.Write(encodeSum(s))
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(tmp, q.sumPath()) != nil {
		os.Remove(tmp)
	}
}

// removeSum removes the summary file before a write of the queue file.
func (q *Queue) removeSum() {
	if err := os.Remove(q.sumPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.log.Warn("store: cannot remove the summary file", "path", q.sumPath(), "err", err)
	}
}

// readSum returns the summary file when it describes the queue file as it
// is now. With no queue file, it returns an empty summary.
func (q *Queue) readSum() (*sumFile, bool) {
	b, err := fsutil.ReadFile(q.sumPath())
	info, serr := os.Stat(q.path)
	if errors.Is(serr, fs.ErrNotExist) {
		return &sumFile{}, true
	}
	if err != nil || serr != nil {
		return nil, false
	}
	s, ok := decodeSum(b)
	if !ok || s.size != info.Size() || s.mtime != info.ModTime().UnixNano() {
		return nil, false
	}
	return s, true
}

// encodeSum encodes s: the magic, the fields, the FNV-1a checksum of all
// before it.
func encodeSum(s *sumFile) []byte {
	b := append([]byte{}, sumMagic...)
	b = binary.AppendVarint(b, s.size)
	b = binary.AppendVarint(b, s.mtime)
	b = binary.AppendUvarint(b, s.count)
	b = binary.AppendUvarint(b, s.dropped)
	b = appendBytes(b, s.jgen)
	b = binary.AppendUvarint(b, s.joff)
	b = appendBytes(b, s.oldest)
	b = binary.AppendUvarint(b, uint64(len(s.kv)))
	for k, v := range s.kv {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, v)
	}
	return binary.LittleEndian.AppendUint32(b, fnv32a(fnvOffset, b))
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeSum decodes a summary file; ok is false for one that is damaged.
func decodeSum(b []byte) (s *sumFile, ok bool) {
	if len(b) < len(sumMagic)+4 || string(b[:len(sumMagic)]) != string(sumMagic) {
		return nil, false
	}
	body := b[:len(b)-4]
	if fnv32a(fnvOffset, body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, false
	}
	d := sumDecoder{b: body[len(sumMagic):]}
	s = &sumFile{}
	s.size = d.varint()
	s.mtime = d.varint()
	s.count = d.uvarint()
	s.dropped = d.uvarint()
	s.jgen = d.bytes()
	s.joff = d.uvarint()
	s.oldest = d.bytes()
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every entry takes at least two bytes
		return nil, false
	}
	s.kv = make(map[string][]byte, n)
	for i := uint64(0); i < n && !d.bad; i++ {
		k := d.bytes()
		s.kv[string(k)] = d.bytes()
	}
	if d.bad || len(d.b) != 0 {
		return nil, false
	}
	return s, true
}

// sumDecoder reads the fields of a summary file; bad is set by the first
// that does not fit.
type sumDecoder struct {
	b   []byte
	bad bool
}

func (d *sumDecoder) uvarint() uint64 { return readVarint(d, binary.Uvarint) }

func (d *sumDecoder) varint() int64 { return readVarint(d, binary.Varint) }

// readVarint reads one number with read, binary.Uvarint or binary.Varint.
func readVarint[T uint64 | int64](d *sumDecoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *sumDecoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return v
}
