package sender_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSenderThroughput measures events per second delivered by one
// sender to a collection server on the loopback interface, in batches of
// 100 events of about 500 bytes, each acknowledged in the local queue.
func BenchmarkSenderThroughput(b *testing.B) {
	const perRun = 2000
	srv := newCollector(b)
	q := newQueue(b)
	s := newSender(b, srv.URL(), nil, nil)
	var sent int
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fill(b, q, perRun, 500)
		b.StartTimer()
		start := time.Now()
		res, err := s.Run(context.Background(), q)
		elapsed += time.Since(start)
		if err != nil || res.Accepted != perRun {
			b.Fatalf("Run = %+v, %v", res, err)
		}
		sent += res.Accepted
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
