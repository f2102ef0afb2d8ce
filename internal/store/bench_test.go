package store_test

import (
	"bytes"
	"context"
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
