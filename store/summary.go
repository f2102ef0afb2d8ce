package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Summary is what a sender reads to decide whether a send is due: the queue's
// size, its oldest record and one meta value, in one transaction.
type Summary struct {
	Len     int    // queued events, the spool included
	Dropped uint64 // events dropped over the limits and not yet reported
	Oldest  Record // the oldest record in the queue file; zero when it is empty
	Meta    []byte // the value stored under the requested key, or nil
}

// Summary reads the queue's size, its oldest record and the meta value under
// metaKey with a single open of the queue file. It returns [ErrLocked] when
// the lock could not be had in time.
func (q *Queue) Summary(ctx context.Context, metaKey string) (Summary, error) {
	if metaKey == "" {
		return Summary{}, ErrInvalidKey
	}
	var s Summary
	err := q.do(ctx, false, func(tx *bolt.Tx) error {
		s = Summary{}
		if mb := tx.Bucket(bucketMeta); mb != nil {
			s.Len = int(getUint(mb, keyCount))
			s.Dropped = getUint(mb, keyDropped)
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
	})
	if err != nil {
		return Summary{}, err
	}
	s.Len += q.spoolLen()
	return s, nil
}
