// Package bench compares telemetry-kit with other SDKs. It is a module of its
// own so that the SDK never depends on what it is compared with.
package bench

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/posthog/posthog-go"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

// TelemetryKitTrack is library-mode Track with the same event as
// PostHogEnqueue.
func TelemetryKitTrack(b *testing.B) {
	dir := b.TempDir()
	tk, err := core.New(core.Config{
		ServiceName: "bench", Consent: consent.Silent, ConfigDir: dir,
		Queue:   core.Queue{Path: filepath.Join(dir, "queue.db"), MaxEvents: 1 << 22, MaxBytes: 1 << 32}, // keep every event: no drops
		Library: core.Library{BufferSize: 1 << 22},
		Host:    core.Host{Getenv: func(string) string { return "" }},
	})
	if err != nil {
		b.Fatal(err)
	}
	props := core.Props{"format": "webp", "quality": 80}
	b.ReportAllocs()
	for b.Loop() {
		tk.TrackMethod("Encode", props)
	}
	b.StopTimer()
	tk.Close(context.Background())
}

// PostHogEnqueue is posthog-go's Enqueue of a capture event, sending
// to a local server that accepts everything.
func PostHogEnqueue(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"status":1}`))
	}))
	defer srv.Close()
	ph, err := posthog.NewWithConfig("phc_bench", posthog.Config{
		Endpoint: srv.URL, Interval: 5 * time.Second, BatchSize: 100,
		Logger: posthog.StdLogger(log.New(io.Discard, "", 0)),
	})
	if err != nil {
		b.Fatal(err)
	}
	props := posthog.NewProperties().Set("format", "webp").Set("quality", 80).Set("method", "Encode")
	b.ReportAllocs()
	for b.Loop() {
		ph.Enqueue(posthog.Capture{DistinctId: "anon_bench", Event: "method_called", Properties: props})
	}
	b.StopTimer()
	ph.Close()
}
