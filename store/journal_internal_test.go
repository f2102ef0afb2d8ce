package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
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
