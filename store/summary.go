package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Summary is what a sender reads to decide whether a send is due: the queue's
// size, its oldest record and one meta value, in one transaction.
type Summary struct {
	Len     int    // queued events, the journal and the spool included
	Dropped uint64 // events dropped over the limits and not yet reported
	Oldest  Record // the oldest queued record (the journal's first when the queue file is empty); zero when there is none
	Meta    []byte // the value stored under the requested key, or nil
}

// Summary reads the queue's size, its oldest record and the meta value under
// metaKey with a single open of the queue file, in a read transaction:
// records in the journal are counted where they are, not moved in. It
// returns [ErrLocked] when the lock could not be had in time.
func (q *Queue) Summary(ctx context.Context, metaKey string) (Summary, error) {
	if metaKey == "" {
		return Summary{}, ErrInvalidKey
	}
	var (
		s    Summary
		jgen []byte
		joff uint64
	)
	err := q.run(ctx, txOptions{leaveJournal: true}, func(tx *bolt.Tx) error {
		s = Summary{}
		if mb := tx.Bucket(bucketMeta); mb != nil {
			s.Len = int(getUint(mb, keyCount))
			s.Dropped = getUint(mb, keyDropped)
			jgen = append([]byte{}, mb.Get(keyJournalGen)...)
			joff = getUint(mb, keyJournalOff)
		}
		if kb := tx.Bucket(bucketKV); kb != nil {
			if v := kb.Get([]byte(metaKey)); v != nil {
				s.Meta = append([]byte{}, v...)
			}
		}
		if eb := tx.Bucket(bucketEvents); eb != nil {
			if _, v := eb.Cursor().First(); v != nil {
				r, err := decodeRecord(v)
				if err != nil {
					return err
				}
				s.Oldest = r
			}
		}
		return nil
	}, nil)
	if err != nil {
		return Summary{}, err
	}
	n, first := q.journalSummary(jgen, joff)
	s.Len += n
	if s.Oldest.ID == "" && n > 0 {
		s.Oldest = first
	}
	s.Len += q.spoolLen()
	return s, nil
}
