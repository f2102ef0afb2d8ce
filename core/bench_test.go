package core_test

import (
	"context"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/core"
)

// BenchmarkTrack measures what a library-mode host pays per Track call. The
// buffer is large enough that no event is dropped; the writer goroutine
// persists concurrently.
func BenchmarkTrack(b *testing.B) {
	cfg := testConfig(b, nil)
	cfg.Library.BufferSize = 1 << 22
	cfg.Queue.MaxEvents, cfg.Queue.MaxBytes = 1<<22, 1<<32 // keep every event: no drops
	c, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	props := core.Props{"format": "webp", "quality": 80}
	b.ReportAllocs()
	b.ResetTimer()
	b.ResetTimer()
	for range b.N {
		c.TrackMethod("Encode", props)
	}
	b.StopTimer()
	c.Close(context.Background())
	if c.Lost() != 0 {
		b.Fatalf("lost %d events", c.Lost())
	}
}

// BenchmarkTrackDisabled is the cost of a Track call when telemetry is off.
func BenchmarkTrackDisabled(b *testing.B) {
	cfg := testConfig(b, map[string]string{"DO_NOT_TRACK": "1"})
	c, _ := core.New(cfg)
	defer c.Close(context.Background())
	props := core.Props{"format": "webp"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.TrackMethod("Encode", props)
	}
}

// BenchmarkTrackSustained includes writing every event to the queue: the
// events a host can record per second when it never stops.
func BenchmarkTrackSustained(b *testing.B) {
	cfg := testConfig(b, nil)
	cfg.Library.BufferSize = 1 << 22
	cfg.Queue.MaxEvents, cfg.Queue.MaxBytes = 1<<22, 1<<32 // keep every event: no drops
	c, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	props := core.Props{"format": "webp", "quality": 80}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.TrackMethod("Encode", props)
	}
	if err := c.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
