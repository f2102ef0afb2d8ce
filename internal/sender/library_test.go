package sender_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// libClient is a library-mode client whose sends are due from minEvents.
func libClient(t *testing.T, endpoint string, minEvents int) (*core.Client, string) {
	t.Helper()
	dir := t.TempDir()
	queue := filepath.Join(dir, "queue.db")
	c, err := core.New(core.Config{
		ServiceName: "tklib",
		Mode:        core.LibraryMode,
		Consent:     consent.Silent,
		Endpoint:    endpoint,
		APIKey:      "wk_test",
		ConfigDir:   filepath.Join(dir, "config"),
		Queue:       core.Queue{Path: queue},
		Library:     core.Library{PersistInterval: 20 * time.Millisecond},
		Send:        core.Send{MinEvents: minEvents},
		Host:        core.Host{Getenv: func(string) string { return "" }},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() {
		t.Fatal("client not enabled")
	}
	return c, queue
}

// settleGoroutines waits until no goroutine of the client is left: none
// running the SDK's code or an HTTP client connection.
func settleGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := clientGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines left after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func clientGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "telemetry-kit/core.") || strings.Contains(g, "telemetry-kit/internal/sender.") ||
			strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "go-retryablehttp") {
			left = append(left, g)
		}
	}
	return left
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func libQueueLen(t *testing.T, path string) int {
	t.Helper()
	q, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := q.Len(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLibraryModeSendsInTheBackgroundAndCloseLeavesNoGoroutine(t *testing.T) {
	srv := newCollector(t)
	c, queue := libClient(t, srv.URL(), 10)
	for i := range 25 {
		c.TrackFeature("f", core.Props{"i": i})
	}
	// Due from 10 queued events: the background sender delivers without Flush.
	waitFor(t, 5*time.Second, "a background send", func() bool {
		stored, _, _, _ := srv.counts()
		return stored >= 20
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	srv.srv.CloseClientConnections()
	settleGoroutines(t)
	stored, _, _, _ := srv.counts()
	if left := libQueueLen(t, queue); stored+left != 25 {
		t.Fatalf("server %d + queue %d != 25 tracked", stored, left)
	}
}

func TestLibraryModeCloseHonoursItsDeadlineWhileARequestHangs(t *testing.T) {
	release := make(chan struct{})
	inFlight := make(chan struct{}, 1)
	srv := newCollector(t)
	srv.setHook(func(int, received, http.ResponseWriter) bool {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-release
		return true
	})
	t.Cleanup(func() { close(release) })
	c, queue := libClient(t, srv.URL(), 1)
	c.TrackFeature("f", nil)
	c.TrackFeature("g", nil)
	select {
	case <-inFlight:
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited on the hanging server past its deadline")
	}
	settleGoroutines(t)
	if n := libQueueLen(t, queue); n != 2 {
		t.Fatalf("queue holds %d after the cancelled send, want 2", n)
	}
}

func TestLibraryModeCloseWithoutDeadlineDoesNotWaitOnTheNetwork(t *testing.T) {
	addr := blackhole(t)
	c, _ := libClient(t, "http://"+addr, 1)
	c.TrackFeature("f", nil)
	time.Sleep(100 * time.Millisecond) // let the send start
	done := make(chan error, 1)
	go func() { done <- c.Close(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close(context.Background()) waited on a server that never answers")
	}
	settleGoroutines(t)
}

func TestFlushSendsNowWhateverTheThresholds(t *testing.T) {
	srv := newCollector(t)
	c, queue := libClient(t, srv.URL(), 1000)
	defer c.Close(context.Background())
	for range 3 {
		c.TrackFeature("f", nil)
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if stored, _, _, _ := srv.counts(); stored != 3 {
		t.Fatalf("server has %d events after Flush, want 3", stored)
	}
	if n := libQueueLen(t, queue); n != 0 {
		t.Fatalf("queue holds %d after Flush", n)
	}
}

func TestFlushReportsAnUnavailableServer(t *testing.T) {
	c, _ := libClient(t, "http://"+refusedAddr(t), 1000)
	defer c.Close(context.Background())
	c.TrackFeature("f", nil)
	err := c.Flush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("Flush = %v, want the server reported unavailable", err)
	}
}

func TestLibraryModeBacksOffAFailingServer(t *testing.T) {
	srv := newCollector(t)
	srv.setHook(func(int, received, http.ResponseWriter) bool { return false })
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	c, queue := libClient(t, srv.URL(), 1)
	c.TrackFeature("f", nil)
	// One run: the request and its two retries.
	waitFor(t, 10*time.Second, "three attempts", func() bool {
		_, _, reqs, _ := srv.counts()
		return reqs == 3
	})
	// Then the persisted backoff (a minute at least) keeps every later
	// wake-up from sending.
	for range 29 {
		c.TrackFeature("f", nil)
		time.Sleep(20 * time.Millisecond) // one persist, and one wake-up, each time
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, reqs, _ := srv.counts(); reqs != 3 {
		t.Fatalf("%d requests to a failing server, want 3", reqs)
	}
	if n := libQueueLen(t, queue); n != 30 {
		t.Fatalf("queue holds %d, want all 30 kept", n)
	}
}
