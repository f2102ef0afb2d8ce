package sender_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newQueue(t testing.TB) *store.Queue {
	t.Helper()
	q, err := store.Open(filepath.Join(t.TempDir(), "queue.db"), store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// fill queues n events of about size bytes each and returns their IDs.
func fill(t testing.TB, q *store.Queue, n, size int) []string {
	t.Helper()
	ids := make([]string, n)
	recs := make([]store.Record, n)
	for i := range recs {
		id := uuid.Must(uuid.NewV7()).String()
		pad := strings.Repeat("x", max(0, size-120))
		ids[i] = id
		recs[i] = store.Record{ID: id, Data: fmt.Appendf(nil,
			`{"event_id":%q,"event_type":"feature_used","timestamp":"2026-11-25T12:00:00.000Z","metadata":{"pad":%q}}`, id, pad)}
	}
	if err := q.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	return ids
}

func queueLen(t testing.TB, q *store.Queue) int {
	t.Helper()
	n, err := q.Len(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newSender(t testing.TB, url string, clk *clock, mod func(*sender.Config)) *sender.Sender {
	t.Helper()
	cfg := sender.Config{
		Endpoint:     url,
		APIKey:       "wk_test",
		UserAgent:    "telemetry-kit-go/9.9.9",
		RetryWaitMin: 10 * time.Millisecond,
		RetryWaitMax: 50 * time.Millisecond,
	}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := sender.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func state(t testing.TB, q *store.Queue) sender.State {
	t.Helper()
	st, err := sender.LoadState(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRunDeliversEverythingOnceWithProtocolHeaders(t *testing.T) {
	srv := newCollector(t)
	q := newQueue(t)
	ids := fill(t, q, 250, 200)
	s := newSender(t, srv.URL()+"/", nil, nil) // a trailing slash is fine

	res, err := s.Run(context.Background(), q)
	if err != nil {
		t.Fatalf("Run: %v (%s)", err, srv)
	}
	if res.Outcome != sender.Drained || res.Accepted != 250 || res.Requests != 3 {
		t.Fatalf("result = %+v, want drained, 250 accepted in 3 requests", res)
	}
	if n := queueLen(t, q); n != 0 {
		t.Fatalf("queue holds %d events after a successful run", n)
	}
	for _, id := range ids {
		if !srv.has(id) {
			t.Fatalf("event %s never arrived", id)
		}
	}
	reqs := srv.requests()
	for i, r := range reqs {
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, got)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer wk_test" {
			t.Errorf("request %d: Authorization %q", i, got)
		}
		if got := r.Header.Get("User-Agent"); got != "telemetry-kit-go/9.9.9" {
			t.Errorf("request %d: User-Agent %q", i, got)
		}
		if !r.Gzipped {
			t.Errorf("request %d: a %d-byte body was not compressed", i, r.BodySize)
		}
		if len(r.IDs) > 100 {
			t.Errorf("request %d carried %d events, more than the batch size", i, len(r.IDs))
		}
	}
	if first := reqs[0].IDs[0]; first != ids[0] {
		t.Errorf("first event sent %s, want the oldest %s", first, ids[0])
	}
}

func TestSmallBodyIsNotCompressed(t *testing.T) {
	srv := newCollector(t)
	q := newQueue(t)
	fill(t, q, 1, 100)
	if _, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if r := srv.requests()[0]; r.Gzipped || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("a %d-byte body was sent compressed", r.BodySize)
	}
}

func TestDroppedCounterIsReportedOnceAndCleared(t *testing.T) {
	srv := newCollector(t)
	dir := t.TempDir()
	// A queue of 5 events that receives 8: the 3 oldest are dropped and counted.
	q, err := store.Open(filepath.Join(dir, "q.db"), store.Options{MaxEvents: 5})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, q, 8, 100)
	s := newSender(t, srv.URL(), nil, func(c *sender.Config) { c.BatchSize = 2 })
	if _, err := s.Run(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	_, _, _, dropped := srv.counts()
	if dropped != 3 {
		t.Fatalf("server was told of %d dropped events, want 3", dropped)
	}
	if n, _ := q.Dropped(context.Background()); n != 0 {
		t.Fatalf("queue still counts %d dropped after reporting them", n)
	}
}

func TestPartialSuccessRemovesAcceptedDuplicateAndRejected(t *testing.T) {
	srv := newCollector(t)
	q := newQueue(t)
	ids := fill(t, q, 10, 100)
	// Two of them are already on the server; one is invalid.
	srv.stored[ids[1]], srv.stored[ids[2]] = 1, 1
	srv.setReject(func(id string) string {
		if id == ids[5] {
			return "invalid_field:timestamp"
		}
		return ""
	})
	res, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 7 || res.Duplicates != 2 || res.Rejected != 1 || res.Removed() != 10 {
		t.Fatalf("result = %+v, want 7 accepted, 2 duplicates, 1 rejected", res)
	}
	if n := queueLen(t, q); n != 0 {
		t.Fatalf("%d events left in the queue", n)
	}
}

func TestResponseThatDoesNotAccountForEveryEventKeepsThem(t *testing.T) {
	srv := newCollector(t)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		fmt.Fprintf(w, `{"accepted":%d,"duplicates":0,"rejected":[]}`, len(r.IDs)-1)
		return true
	})
	q := newQueue(t)
	fill(t, q, 4, 100)
	res, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if !errors.Is(err, sender.ErrDeferred) || res.Outcome != sender.Deferred {
		t.Fatalf("Run = %+v, %v; want deferred", res, err)
	}
	if n := queueLen(t, q); n != 4 {
		t.Fatalf("queue holds %d events, want all 4 kept", n)
	}
}

func TestTooLargeHalvesTheBatchAndDropsAnOversizedEvent(t *testing.T) {
	srv := newCollector(t)
	q := newQueue(t)
	ids := fill(t, q, 40, 100)
	huge := ids[39] // the last: no later request of this run reports it
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		for _, id := range r.IDs {
			if id == huge {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return true
			}
		}
		if len(r.IDs) > 8 {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return true
		}
		return false
	})
	res, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 39 || res.Dropped != 1 {
		t.Fatalf("result = %+v, want 39 accepted and 1 dropped", res)
	}
	if srv.has(huge) || queueLen(t, q) != 0 {
		t.Fatalf("oversized event stored=%v, queue=%d", srv.has(huge), queueLen(t, q))
	}
	// Halving, not one event at a time: 40 events that fit 8 per request
	// with one refused outright take about 20 requests.
	if _, _, reqs, _ := srv.counts(); reqs > 25 {
		t.Errorf("%d requests for 40 events", reqs)
	}
	if st := state(t, q); st.Unreported != 1 {
		t.Fatalf("state.Unreported = %d, want the dropped event counted", st.Unreported)
	}
	// The next request reports the dropped event to the server.
	srv.setHook(nil)
	fill(t, q, 1, 100)
	if _, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if last := reqs[len(reqs)-1]; last.Dropped != 1 {
		t.Fatalf("next request reported dropped=%d, want 1", last.Dropped)
	}
	if st := state(t, q); st.Unreported != 0 {
		t.Fatalf("state.Unreported = %d after it was reported", st.Unreported)
	}
}

func TestBadRequestIsolatesTheBadEvent(t *testing.T) {
	srv := newCollector(t)
	q := newQueue(t)
	ids := fill(t, q, 30, 100)
	// An event whose stored JSON is broken makes the whole body malformed.
	if err := q.Append(context.Background(), store.Record{ID: "bad-1", Data: []byte(`{"event_id":"bad-1",`)}); err != nil {
		t.Fatal(err)
	}
	ids2 := fill(t, q, 30, 100)
	res, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 60 || res.Dropped != 1 {
		t.Fatalf("result = %+v, want 60 accepted and the bad one dropped", res)
	}
	for _, id := range append(ids, ids2...) {
		if !srv.has(id) {
			t.Fatalf("good event %s lost", id)
		}
	}
	if n := queueLen(t, q); n != 0 {
		t.Fatalf("%d events left", n)
	}
}

func TestRetryAfterIsPersistedAndClamped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header string
		want   time.Duration
		reqs   int // a Retry-After within RetryWaitMax is retried in the run
	}{
		{"429 seconds", http.StatusTooManyRequests, "120", 120 * time.Second, 1},
		{"503 seconds", http.StatusServiceUnavailable, "30", 30 * time.Second, 1},
		{"503 clamped to one hour", http.StatusServiceUnavailable, "86400", time.Hour, 1},
		{"429 zero is retried, then one second", http.StatusTooManyRequests, "0", time.Second, 3},
		{"429 http date", http.StatusTooManyRequests, "Wed, 25 Nov 2026 12:10:00 GMT", 10 * time.Minute, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCollector(t)
			srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
				w.Header().Set("Retry-After", tc.header)
				w.WriteHeader(tc.status)
				return true
			})
			clk := newClock()
			q := newQueue(t)
			fill(t, q, 5, 100)
			res, err := newSender(t, srv.URL(), clk, nil).Run(context.Background(), q)
			if !errors.Is(err, sender.ErrDeferred) || res.Outcome != sender.Deferred {
				t.Fatalf("Run = %+v, %v; want deferred", res, err)
			}
			if got := res.NextAttempt.Sub(clk.Now()); got != tc.want {
				t.Fatalf("next attempt in %v, want %v", got, tc.want)
			}
			if st := state(t, q); !st.NextAttempt.Equal(res.NextAttempt) {
				t.Fatalf("persisted next attempt %v, want %v", st.NextAttempt, res.NextAttempt)
			}
			if n := queueLen(t, q); n != 5 {
				t.Fatalf("queue holds %d, want 5 kept", n)
			}
			if _, _, reqs, _ := srv.counts(); reqs != tc.reqs {
				t.Fatalf("%d requests, want %d: a long Retry-After must not be slept within the run", reqs, tc.reqs)
			}
			p := sender.Policy{MinEvents: 1, APIKey: "wk_test"}
			if d, _ := p.Check(context.Background(), q, clk.Now(), false); d.Due || d.Reason != "backoff" {
				t.Fatalf("due right after a %d: %+v", tc.status, d)
			}
			clk.Advance(tc.want)
			if d, _ := p.Check(context.Background(), q, clk.Now(), false); !d.Due {
				t.Fatalf("not due once Retry-After passed: %+v", d)
			}
		})
	}
}

func TestShortRetryAfterIsRetriedWithinTheRun(t *testing.T) {
	srv := newCollector(t)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	q := newQueue(t)
	fill(t, q, 3, 100)
	res, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if err != nil || res.Accepted != 3 {
		t.Fatalf("Run = %+v, %v; want 3 accepted after one retry", res, err)
	}
}

func TestUnauthorizedBlocksForAWhileAndKeepsTheQueue(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := newCollector(t)
			srv.setHook(func(int, received, http.ResponseWriter) bool { return false })
			srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
				if r.Header.Get("Authorization") == "Bearer wk_test" {
					w.WriteHeader(status)
					return true
				}
				return false
			})
			clk := newClock()
			q := newQueue(t)
			fill(t, q, 5, 100)
			res, err := newSender(t, srv.URL(), clk, nil).Run(context.Background(), q)
			if !errors.Is(err, sender.ErrUnauthorized) || res.Outcome != sender.Blocked {
				t.Fatalf("Run = %+v, %v; want blocked", res, err)
			}
			if got := res.NextAttempt.Sub(clk.Now()); got != 24*time.Hour {
				t.Fatalf("blocked for %v, want 24h", got)
			}
			// Blocked runs send nothing; the queue is intact.
			clk.Advance(23 * time.Hour)
			if _, err := newSender(t, srv.URL(), clk, nil).Run(context.Background(), q); !errors.Is(err, sender.ErrUnauthorized) {
				t.Fatalf("second Run: %v", err)
			}
			if _, _, reqs, _ := srv.counts(); reqs != 1 {
				t.Fatalf("%d requests while blocked", reqs)
			}
			p := sender.Policy{MinEvents: 1, APIKey: "wk_test"}
			if d, _ := p.Check(context.Background(), q, clk.Now(), false); d.Due || d.Reason != "auth" {
				t.Fatalf("Check while blocked = %+v", d)
			}
			// A new key is not blocked.
			s2 := newSender(t, srv.URL(), clk, func(c *sender.Config) { c.APIKey = "wk_new" })
			if res, err := s2.Run(context.Background(), q); err != nil || res.Accepted != 5 {
				t.Fatalf("Run with a new key = %+v, %v", res, err)
			}
		})
	}
	t.Run("not forever", func(t *testing.T) {
		srv := newCollector(t)
		var blocked atomic.Bool
		blocked.Store(true)
		srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
			if blocked.Load() {
				w.WriteHeader(http.StatusUnauthorized)
			}
			return blocked.Load()
		})
		clk := newClock()
		q := newQueue(t)
		fill(t, q, 2, 100)
		newSender(t, srv.URL(), clk, nil).Run(context.Background(), q)
		blocked.Store(false)
		clk.Advance(24*time.Hour + time.Second)
		if res, err := newSender(t, srv.URL(), clk, nil).Run(context.Background(), q); err != nil || res.Accepted != 2 {
			t.Fatalf("Run after the block = %+v, %v", res, err)
		}
	})
}

func TestServerErrorsBackOffExponentiallyAcrossRuns(t *testing.T) {
	srv := newCollector(t)
	var failing atomic.Bool
	failing.Store(true)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
		return failing.Load()
	})
	clk := newClock()
	q := newQueue(t)
	fill(t, q, 3, 100)
	var waits []time.Duration
	for range 14 {
		// A new sender each time: the schedule lives in the queue file.
		res, err := newSender(t, srv.URL(), clk, nil).Run(context.Background(), q)
		if !errors.Is(err, sender.ErrDeferred) {
			t.Fatalf("Run: %v", err)
		}
		waits = append(waits, res.NextAttempt.Sub(clk.Now()))
		clk.Advance(res.NextAttempt.Sub(clk.Now()))
	}
	// Each wait is the backoff step with jitter in [step/2, step].
	step := time.Minute
	for i, w := range waits {
		if w < step/2 || w > step {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, w, step/2, step)
		}
		step = min(2*step, 24*time.Hour)
	}
	if _, _, reqs, _ := srv.counts(); reqs != 14*3 {
		t.Errorf("%d requests for 14 runs, want 3 each (2 retries)", reqs)
	}
	failing.Store(false)
	if res, err := newSender(t, srv.URL(), clk, nil).Run(context.Background(), q); err != nil || res.Accepted != 3 {
		t.Fatalf("Run after recovery = %+v, %v", res, err)
	}
	if st := state(t, q); st.BackoffSeconds != 0 || !st.NextAttempt.IsZero() || st.LastResult != "ok" {
		t.Fatalf("state after a success = %+v, want backoff cleared", st)
	}
}

func TestSlowServerWithinTheAttemptBudgetSucceeds(t *testing.T) {
	srv := newCollector(t)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		time.Sleep(300 * time.Millisecond)
		return false
	})
	q := newQueue(t)
	fill(t, q, 3, 100)
	s := newSender(t, srv.URL(), nil, func(c *sender.Config) { c.AttemptTimeout = 2 * time.Second })
	if res, err := s.Run(context.Background(), q); err != nil || res.Accepted != 3 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

func TestHangingServerCostsOneAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newCollector(t)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		<-release
		return true
	})
	t.Cleanup(func() { close(release) })
	q := newQueue(t)
	fill(t, q, 3, 100)
	s := newSender(t, srv.URL(), nil, func(c *sender.Config) { c.AttemptTimeout = 300 * time.Millisecond })
	start := time.Now()
	res, err := s.Run(context.Background(), q)
	took := time.Since(start)
	if !errors.Is(err, sender.ErrDeferred) || res.Outcome != sender.Deferred {
		t.Fatalf("Run = %+v, %v; want deferred", res, err)
	}
	if took > 5*time.Second {
		t.Fatalf("Run took %v against a hanging server", took)
	}
	if _, _, reqs, _ := srv.counts(); reqs != 1 {
		t.Fatalf("%d requests: a timed-out attempt must not be retried within the run", reqs)
	}
	if n := queueLen(t, q); n != 3 {
		t.Fatalf("queue holds %d, want 3", n)
	}
}

func TestTruncatedResponseKeepsEventsAndResendIsCountedOnce(t *testing.T) {
	srv := newCollector(t)
	var truncate atomic.Bool
	truncate.Store(true)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		if !truncate.Load() {
			return false
		}
		// The server commits the batch, then the connection dies mid-answer.
		srv.mu.Lock()
		for _, id := range r.IDs {
			srv.stored[id] = 1
		}
		srv.mu.Unlock()
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return false
		}
		conn, buf, _ := hj.Hijack()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"accepted\":")
		buf.Flush()
		conn.Close()
		return true
	})
	q := newQueue(t)
	fill(t, q, 6, 100)
	res, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if !errors.Is(err, sender.ErrDeferred) {
		t.Fatalf("Run = %+v, %v; want deferred", res, err)
	}
	if n := queueLen(t, q); n != 6 {
		t.Fatalf("queue holds %d after a cut-off answer, want 6", n)
	}
	truncate.Store(false)
	res, err = newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
	if err != nil || res.Duplicates != 6 || res.Accepted != 0 {
		t.Fatalf("resend = %+v, %v; want 6 duplicates", res, err)
	}
	if stored, _, _, _ := srv.counts(); stored != 6 {
		t.Fatalf("server stored %d, want 6", stored)
	}
}

func TestConnectionRefusedIsDeferred(t *testing.T) {
	srv := newCollector(t)
	url := srv.URL()
	srv.srv.Close()
	q := newQueue(t)
	fill(t, q, 2, 100)
	res, err := newSender(t, url, nil, nil).Run(context.Background(), q)
	if !errors.Is(err, sender.ErrDeferred) || res.Outcome != sender.Deferred {
		t.Fatalf("Run = %+v, %v; want deferred", res, err)
	}
	if st := state(t, q); st.LastResult != "network" || st.NextAttempt.IsZero() {
		t.Fatalf("state = %+v", st)
	}
}

func TestCancelStopsAHangingRequestAndKeepsTheEvents(t *testing.T) {
	release := make(chan struct{})
	srv := newCollector(t)
	started := make(chan struct{}, 1)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		started <- struct{}{}
		<-release
		return true
	})
	t.Cleanup(func() { close(release) })
	q := newQueue(t)
	fill(t, q, 3, 100)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	res, err := newSender(t, srv.URL(), nil, nil).Run(ctx, q)
	if !errors.Is(err, context.Canceled) || res.Outcome != sender.Stopped {
		t.Fatalf("Run = %+v, %v; want stopped by the context", res, err)
	}
	if n := queueLen(t, q); n != 3 {
		t.Fatalf("queue holds %d, want 3", n)
	}
}

func TestQueueIsNotLockedWhileARequestIsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv := newCollector(t)
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		if n == 1 {
			started <- struct{}{}
			<-release
		}
		return false
	})
	path := filepath.Join(t.TempDir(), "q.db")
	q, _ := store.Open(path, store.Options{})
	fill(t, q, 3, 100)
	done := make(chan error, 1)
	go func() {
		_, err := newSender(t, srv.URL(), nil, nil).Run(context.Background(), q)
		done <- err
	}()
	<-started
	// The host's write, from another handle as another process would, with a
	// short lock wait: it must reach the queue file, not the spool.
	host, _ := store.Open(path, store.Options{LockTimeout: 20 * time.Millisecond})
	fill(t, host, 1, 100)
	if spooled, _ := os.ReadDir(filepath.Join(filepath.Dir(path), "spool")); len(spooled) != 0 {
		t.Fatalf("the host's write waited on the sender: %d spooled", len(spooled))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := queueLen(t, q); n != 0 {
		t.Fatalf("%d events left; the event written mid-run should have been sent too", n)
	}
}

func TestRetryablehttpLogsGoToTheLogger(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newCollector(t)
	q := newQueue(t)
	fill(t, q, 1, 100)
	if _, err := newSender(t, srv.URL(), nil, func(c *sender.Config) { c.Logger = logger }).Run(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	sc := bufio.NewScanner(&buf)
	found := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "performing request") {
			found = true
		}
		if strings.Contains(sc.Text(), "wk_test") {
			t.Errorf("the write key was logged: %s", sc.Text())
		}
	}
	if !found {
		t.Fatalf("go-retryablehttp's request log did not reach the logger:\n%s", buf.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNewRejectsUnusableEndpoints(t *testing.T) {
	for _, ep := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := sender.New(sender.Config{Endpoint: ep}); !errors.Is(err, sender.ErrNoEndpoint) {
			t.Errorf("New(%q) = %v, want ErrNoEndpoint", ep, err)
		}
	}
}
