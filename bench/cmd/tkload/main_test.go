package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/server/synth"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// fakeServer decodes batches as tk-server does, remembers the event ids
// it stored, and answers every third request 503 or 429.
type fakeServer struct {
	now  time.Time
	mu   sync.Mutex
	n    int
	seen map[[16]byte]bool
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if r.URL.Path != wire.EventsPath || r.Header.Get("Authorization") != "Bearer tk_w_test" ||
		r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Content-Type") != wire.ContentType {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	if n%3 == 0 {
		w.Header().Set("Retry-After", "0")
		status := http.StatusServiceUnavailable
		if n%2 == 0 {
			status = http.StatusTooManyRequests
		}
		http.Error(w, `{"error":"busy"}`, status)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, `{"error":"gzip"}`, http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		http.Error(w, `{"error":"gzip"}`, http.StatusBadRequest)
		return
	}
	b, err := decode.Batch(body, f.now, server.DefaultRetention)
	if err != nil {
		http.Error(w, `{"error":"decode"}`, http.StatusBadRequest)
		return
	}
	resp := wire.Response{Rejected: b.Rejected}
	f.mu.Lock()
	for _, ev := range b.Events {
		if f.seen[ev.EventID] {
			resp.Duplicates++
		} else {
			f.seen[ev.EventID] = true
			resp.Accepted++
		}
	}
	f.mu.Unlock()
	if resp.Rejected == nil {
		resp.Rejected = []wire.Rejection{}
	}
	json.NewEncoder(w).Encode(resp)
}

func TestLoad(t *testing.T) {
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f := &fakeServer{now: end, seen: map[[16]byte]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := synth.Config{Seed: 3, Users: 300, Days: 10, Events: 2500, End: end}
	for round, want := range []struct{ accepted, duplicates int64 }{{2500, 0}, {0, 2500}} {
		g, err := synth.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := &loader{endpoint: srv.URL + wire.EventsPath, key: "tk_w_test", level: gzip.BestSpeed, attempts: 5, client: srv.Client()}
		if err := l.run(context.Background(), g, 3, 100, time.Hour); err != nil {
			t.Fatal(err)
		}
		if l.sent.Load() != 2500 || l.accepted.Load() != want.accepted || l.duplicates.Load() != want.duplicates ||
			l.rejected.Load() != 0 || l.unaccounted.Load() != 0 || l.retries.Load() == 0 {
			t.Fatalf("round %d: sent %d, accepted %d, duplicates %d, rejected %d, unaccounted %d, retries %d", round,
				l.sent.Load(), l.accepted.Load(), l.duplicates.Load(), l.rejected.Load(), l.unaccounted.Load(), l.retries.Load())
		}
	}

	// An answer not worth retrying stops the load.
	g, _ := synth.New(cfg)
	l := &loader{endpoint: srv.URL + wire.EventsPath, key: "tk_w_wrong", level: gzip.BestSpeed, attempts: 5, client: srv.Client()}
	if err := l.run(context.Background(), g, 3, 100, time.Hour); err == nil {
		t.Fatal("a 400 did not stop the load")
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		v    string
		want time.Duration
	}{
		{"", time.Second}, {"3", 3 * time.Second}, {"0", 100 * time.Millisecond}, {"99999", time.Hour}, {"x", time.Second},
	} {
		if got := retryAfter(c.v, time.Second); got != c.want {
			t.Errorf("retryAfter(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}
