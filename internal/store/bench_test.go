package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

var benchData = append([]byte(`{"event":"command","payload":"`), append(bytes.Repeat([]byte("x"), 400), `"}`...)...)

// BenchmarkAppend appends one record per call: one open, transaction (with
// fsync) and close of the queue file.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	q := newQueue(b, store.Options{})
	i := 0
	b.ResetTimer()
	for range b.N {
		if err := q.Append(ctx, store.Record{ID: strconv.Itoa(i), Data: benchData}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAppendBatch100 appends 100 records per call.
func BenchmarkAppendBatch100(b *testing.B) {
	ctx := context.Background()
	q := newQueue(b, store.Options{})
	recs := make([]store.Record, 100)
	i := 0
	b.ResetTimer()
	for range b.N {
		for j := range recs {
			recs[j] = store.Record{ID: strconv.Itoa(i), Data: benchData}
			i++
		}
		if err := q.Append(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunFile is what a CLI run pays to note its start: a run file
// written and, when the run finishes, removed.
func BenchmarkRunFile(b *testing.B) {
	q := newQueue(b, store.Options{Journal: true})
	r := store.Record{ID: "01a23ac0-ccc5-7262-a19e-8865fbc7489d", Data: make([]byte, 500)}
	b.ResetTimer()
	for range b.N {
		q.StartRun(r).End()
	}
}

// BenchmarkJournalAppendOne is one CLI run's append of its event, for
// comparison with BenchmarkRunFile.
func BenchmarkJournalAppendOne(b *testing.B) {
	q := newQueue(b, store.Options{Journal: true})
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := q.Append(ctx, store.Record{ID: fmt.Sprint("id-", i), Data: make([]byte, 500)}); err != nil {
			b.Fatal(err)
		}
	}
}
