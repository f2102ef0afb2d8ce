package postgres

import (
	"encoding/binary"
	"slices"

	"github.com/spaolacci/murmur3"
)

// The distinct users of a rollup row are sent to PostgreSQL as a sketch of
// the hll extension's type, built here, rather than as user ids for the
// extension's hll_add_agg to gather. That aggregate allocates and clears
// a 128 KiB state for each row it builds, which PostgreSQL's allocator
// takes fresh from the kernel and faults in page by page: with varied
// events, hundreds of rows per transaction, it was most of the database's
// work per event (see docs/benchmarks.md).
//
// A row's users in one transaction are few, so the sketch is the
// extension's explicit form (storage specification v1): a header, then
// the users' 64-bit hashes, distinct and in signed order. The hashes are
// the extension's hll_hash_bytea: the first 64 bits of MurmurHash3
// x64_128 of the id, with seed 0. The rollup statement passes each
// sketch through hll_union with an empty sketch, which turns one of more
// than explicitThreshold users into the compact form that hll_add_agg
// would have made; the estimate is the same either way.

// explicitHeader is the header of an explicit sketch with the extension's
// default parameters (log2m 11, register width 5, automatic explicit
// threshold, sparse form on); emptyHeader is that of an empty one.
var (
	explicitHeader = [3]byte{0x12, 0x8b, 0x7f}
	emptyHeader    = [3]byte{0x11, 0x8b, 0x7f}
)

// explicitThreshold is how many hashes the extension keeps in the
// explicit form with its default parameters: as many as fit in the size of
// the full form (2048 registers of 5 bits).
const explicitThreshold = 2048 * 5 / 8 / 8

// userHash is hll_hash_bytea of a user id.
func userHash(u [32]byte) int64 {
	h, _ := murmur3.Sum128(u[:])
	return int64(h)
}

// sketch writes the sketch of us as a bytea element.
func (w *arrayWriter) sketch(us users) {
	if len(us) == 0 {
		w.buf = appendBytes(w.buf, emptyHeader[:])
		return
	}
	hashes := w.hashes[:0]
	for _, u := range us {
		hashes = append(hashes, userHash(u))
	}
	slices.Sort(hashes)
	hashes = slices.Compact(hashes)
	w.hashes = hashes
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(explicitHeader)+8*len(hashes)))
	w.buf = append(w.buf, explicitHeader[:]...)
	for _, h := range hashes {
		w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(h))
	}
}
