package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Summary is what a sender reads to decide whether a send is due: the queue's
// size, its oldest record and one meta value, in one transaction.
type Summary struct {
	Len     int    // queued events, the journal, the finished runs of the runs log and the spool included
	Dropped uint64 // events dropped over the limits and not yet reported
	Oldest  Record // the oldest queued record (the journal's first when the queue file is empty); zero when there is none
	Meta    []byte // the value stored under the requested key, or nil
}

// Summary reads the queue's size, its oldest record and the meta value under
// metaKey. What it needs of the queue file comes from the summary file
// beside it while that describes the queue file as it is (see sumcache.go),
// else from a read transaction, which writes the summary file afresh.
// Records in the journal, and the finished runs in the runs log, are
// counted where they are, not moved in, unless
// the read transaction drains the spool: the journal's records, older, are
// then moved in first. It returns [ErrLocked] when the lock (or then the
// journal's) could not be had in time.
func (q *Queue) Summary(ctx context.Context, metaKey string) (Summary, error) {
	if metaKey == "" {
		return Summary{}, ErrInvalidKey
	}
	sum, ok := q.readSum()
	if !ok {
		err := q.run(ctx, txOptions{leaveJournal: true, sum: &sum}, func(*bolt.Tx) error { return nil }, nil)
		if err != nil {
			return Summary{}, err
		}
	}
	s := Summary{Len: int(sum.count), Dropped: sum.dropped, Meta: sum.kv[metaKey]}
	if sum.oldest != nil {
		r, err := decodeRecord(sum.oldest)
		if err != nil {
			return Summary{}, err
		}
		s.Oldest = r
	}
	n, first := q.journalSummary(sum.jgen, sum.joff)
	s.Len += n
	if s.Oldest.ID == "" && n > 0 {
		s.Oldest = first
	}
	n, first = q.finishedRuns()
	s.Len += n
	if s.Oldest.ID == "" && n > 0 {
		s.Oldest = first
	}
	s.Len += q.spoolLen()
	return s, nil
}
