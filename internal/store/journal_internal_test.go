package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// A crash after the queue file committed the journal's records but before
// the journal was truncated leaves them in both. The generation and offset
// the queue file recorded keep them from being taken in again, also after
// they were sent and acknowledged (when the ID index no longer has them).
func TestJournalNotTakenInTwiceAfterLostTruncation(t *testing.T) {
	ctx := context.Background()
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{Journal: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := q.Append(ctx, Record{ID: id, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	q.keepJournal = true
	b, err := q.Peek(ctx, 0, 0)
	if err != nil || len(b.Records) != 2 {
		t.Fatalf("Peek = %+v, %v", b, err)
	}
	if err := q.Ack(ctx, []string{"a", "b"}, 0); err != nil {
		t.Fatal(err)
	}
	if q.journalSize() == 0 {
		t.Fatal("journal truncated; the test needs it left as a crash would")
	}
	// A record appended to the same generation after the crash is taken in.
	if err := q.Append(ctx, Record{ID: "c", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	q.keepJournal = false
	var ids []string
	if err := q.All(ctx, func(r Record) error { ids = append(ids, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"c"}) {
		t.Fatalf("queue holds %v after the acknowledged a, b; want only c", ids)
	}
}

// Summary counts a journal with a torn last write as a full parse does.
func TestCountJournalTornTail(t *testing.T) {
	var b []byte
	b = appendFrame(b, frameGen, bytes.Repeat([]byte{1}, genLen))
	for _, id := range []string{"a", "b", "c"} {
		b = appendFrame(b, frameRecord, []byte{byte(len(id))}, []byte(id), []byte("{}"))
	}
	full := len(b)
	b = appendFrame(b, frameRecord, []byte{1}, []byte("d"), []byte("{}"))
	for _, cut := range []int{full, full + 5, full + frameHeader, len(b) - 1} {
		n, first := countJournal(b[:cut], nil, 0)
		if n != 3 || first.ID != "a" {
			t.Errorf("cut at %d: %d records, first %q; want 3, a", cut, n, first.ID)
		}
	}
	// With the generation and the offset after a, b and c pending only.
	end := frameHeader + genLen + frameHeader + 4
	if n, first := countJournal(b, bytes.Repeat([]byte{1}, genLen), uint64(end)); n != 3 || first.ID != "b" {
		t.Errorf("after a: %d records, first %q; want 3, b", n, first.ID)
	}
}

func FuzzParseJournal(f *testing.F) {
	var good []byte
	good = appendFrame(good, frameGen, bytes.Repeat([]byte{7}, genLen))
	for _, id := range []string{"a", "0192f3a4-0000-7000-8000-000000000001"} {
		var n [binary.MaxVarintLen64]byte
		k := binary.PutUvarint(n[:], uint64(len(id)))
		good = appendFrame(good, frameRecord, n[:k], []byte(id), []byte(`{"x":1}`))
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(append([]byte{}, good[:20]...), good...))
	f.Add([]byte("TKJRxxxxxxxxxxxxTKJ"))
	f.Fuzz(func(t *testing.T, b []byte) {
		jf := parseJournal(b)
		var re []byte
		if jf.gen != nil {
			if len(jf.gen) != genLen {
				t.Fatalf("generation of %d bytes", len(jf.gen))
			}
			re = appendFrame(re, frameGen, jf.gen)
		}
		last := int64(0)
		for _, r := range jf.recs {
			if r.ID == "" || len(r.ID) > MaxIDLen || r.end <= last || r.end > int64(len(b)) {
				t.Fatalf("record %+v after offset %d in %d bytes", r, last, len(b))
			}
			last = r.end
			var n [binary.MaxVarintLen64]byte
			k := binary.PutUvarint(n[:], uint64(len(r.ID)))
			re = appendFrame(re, frameRecord, n[:k], []byte(r.ID), r.Data)
		}
		// Summary's count agrees with a full parse wherever the journal
		// holds only whole, intact frames; it never panics otherwise.
		for _, g := range [][]byte{nil, jf.gen} {
			for _, off := range []uint64{0, uint64(len(b) / 2)} {
				n, first := countJournal(b, g, off)
				want := jf.pendingIn(g, off)
				if jf.bad == 0 && (n != len(want) || n > 0 && (first.ID != want[0].ID || !bytes.Equal(first.Data, want[0].Data))) {
					t.Fatalf("countJournal(gen %x, off %d) = %d, %q; parse has %d pending", g, off, n, first.ID, len(want))
				}
			}
		}
		// What was read, written again, reads back the same.
		jf2 := parseJournal(re)
		if jf2.bad != 0 || len(jf2.recs) != len(jf.recs) || !bytes.Equal(jf2.gen, jf.gen) {
			t.Fatalf("re-encoded journal parses differently: %+v vs %+v", jf2, jf)
		}
		for i := range jf.recs {
			if jf.recs[i].ID != jf2.recs[i].ID || !bytes.Equal(jf.recs[i].Data, jf2.recs[i].Data) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}

// BenchmarkJournalSummary is what a CLI run's due check reads of a journal
// near its soft limit: countJournal against a full parse in the same run.
func BenchmarkJournalSummary(b *testing.B) {
	var j []byte
	j = appendFrame(j, frameGen, bytes.Repeat([]byte{1}, genLen))
	data := bytes.Repeat([]byte("x"), 600)
	for i := 0; len(j) < journalSoftMax-1024; i++ {
		id := fmt.Sprintf("0192f3a4-0000-7000-8000-%012d", i)
		j = appendFrame(j, frameRecord, []byte{byte(len(id))}, []byte(id), data)
	}
	b.Run("count", func(b *testing.B) {
		b.ResetTimer()
		for range b.N {
			countJournal(j, nil, 0)
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ResetTimer()
		for range b.N {
			parseJournal(j).pendingIn(nil, 0)
		}
	})
}

// holdJournal takes the journal's lock, as a process writing it or moving
// it in would, until the returned function is called.
func holdJournal(t *testing.T, q *Queue) func() {
	t.Helper()
	f, err := fsutil.OpenFile(q.journalPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryLockFile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		unlockFile(f)
		f.Close()
	}
}

func queuedIDs(t *testing.T, q *Queue) []string {
	t.Helper()
	b, err := q.Peek(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range b.Records {
		ids = append(ids, r.ID)
	}
	return ids
}

// A process's events keep their order when some went to the spool because
// the journal was busy (a move-in by another process can hold it longer
// than the lock timeout): whatever path each took, and whichever operation
// moves them in.
func TestJournalAndSpoolKeepOrder(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T) *Queue {
		q, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{Journal: true, LockTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	add := func(t *testing.T, q *Queue, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if err := q.Append(ctx, Record{ID: id, Data: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// a in the journal, b in the spool while the journal is busy.
	journalThenSpool := func(t *testing.T) *Queue {
		q := open(t)
		add(t, q, "a")
		release := holdJournal(t, q)
		add(t, q, "b")
		release()
		if q.spoolLen() != 1 {
			t.Fatalf("%d spooled records, want b", q.spoolLen())
		}
		return q
	}
	t.Run("later appends", func(t *testing.T) {
		q := journalThenSpool(t)
		add(t, q, "c", "d")
		// c drained b through the queue file; d, with nothing of this
		// Queue left in the spool, went to the journal again.
		if q.spoolLen() != 0 || q.journalSize() == 0 {
			t.Fatalf("spool %d records, journal %d bytes; want d in the journal", q.spoolLen(), q.journalSize())
		}
		if got := queuedIDs(t, q); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("queued %v", got)
		}
	})
	t.Run("summary", func(t *testing.T) {
		q := journalThenSpool(t)
		// With the queue file there and no summary file, Summary opens it.
		if err := q.PutMeta(ctx, "state", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if got := queuedIDs(t, q); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("queued %v", got)
		}
		add(t, q, "c")
		release := holdJournal(t, q)
		add(t, q, "d")
		release()
		os.Remove(q.sumPath())
		if _, err := q.Summary(ctx, "state"); err != nil {
			t.Fatal(err)
		}
		if got := queuedIDs(t, q); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("queued %v", got)
		}
	})
	t.Run("journal busy while draining", func(t *testing.T) {
		q := journalThenSpool(t)
		release := holdJournal(t, q)
		_, err := q.Peek(ctx, 0, 0)
		add(t, q, "c") // to the spool, after b
		release()
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Peek with the journal busy and b spooled: %v, want ErrLocked", err)
		}
		if got := queuedIDs(t, q); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("queued %v", got)
		}
	})
}
