// Command tkload loads a synthetic usage history (package server/synth)
// into a tk-server through its ingest endpoint, as SDKs would send it:
// gzip-compressed batches posted to <url>/v1/events with a write key,
// from several concurrent clients.
//
// It retries 429 and 503 answers after their Retry-After, and other 5xx
// answers and network errors with a backoff; it checks that every 200
// answer accounts for each event of its batch, and stops at the first
// answer that makes no sense to retry (400, 401, 403, 413, 415). It
// prints its progress to stderr and a summary at the end, and exits
// non-zero when an event was rejected or a batch not accounted for.
//
//	go run ./cmd/tkload -url http://127.0.0.1:8080 -key tk_w_… -events 10000000
//
// The same -seed, -users, -days, -events, -end and -service always send
// the same events, so a second run is all duplicates.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server/synth"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func main() {
	var (
		url      = flag.String("url", "http://127.0.0.1:8080", "tk-server base URL")
		key      = flag.String("key", os.Getenv("TK_WRITE_KEY"), "write key (default $TK_WRITE_KEY)")
		users    = flag.Int("users", synth.DefaultUsers, "users over the period")
		days     = flag.Int("days", synth.DefaultDays, "days in the period")
		events   = flag.Int("events", synth.DefaultEvents, "events to send")
		seed     = flag.Int64("seed", 1, "seed of the history")
		endDate  = flag.String("end", "", "end of the period, exclusive: YYYY-MM-DD or RFC 3339 (default today's midnight, UTC)")
		service  = flag.String("service", synth.DefaultServiceName, "service_name of the events")
		clients  = flag.Int("clients", 8, "concurrent HTTP clients")
		batch    = flag.Int("batch", 100, fmt.Sprintf("events per request, at most %d", wire.MaxEvents))
		level    = flag.Int("gzip", gzip.BestSpeed, "gzip compression level")
		attempts = flag.Int("attempts", 20, "attempts per request before giving up")
		every    = flag.Duration("progress", 2*time.Second, "interval of the progress lines")
	)
	flag.Parse()
	if *key == "" || *batch < 1 || *batch > wire.MaxEvents || *clients < 1 || *events < 1 {
		fmt.Fprintf(os.Stderr, "tkload: need -key, -events >= 1, -clients >= 1 and -batch from 1 to %d\n", wire.MaxEvents)
		os.Exit(2)
	}
	cfg := synth.Config{Seed: *seed, Users: *users, Days: *days, Events: *events, ServiceName: *service}
	if *endDate != "" {
		t, err := time.Parse(time.DateOnly, *endDate)
		if err != nil {
			t, err = time.Parse(time.RFC3339, *endDate)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tkload: -end:", err)
			os.Exit(2)
		}
		cfg.End = t
	}
	g, err := synth.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tkload:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l := &loader{
		endpoint: strings.TrimRight(*url, "/") + wire.EventsPath,
		key:      *key,
		level:    *level,
		attempts: *attempts,
		client: &http.Client{
			Timeout:   2 * time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients, DisableCompression: true},
		},
	}
	c := g.Config()
	fmt.Fprintf(os.Stderr, "tkload: %d events of %d users over %d days up to %s, %d clients, %d events per request, to %s\n",
		c.Events, c.Users, c.Days, c.End.Format(time.RFC3339), *clients, *batch, l.endpoint)
	err = l.run(ctx, g, *clients, *batch, *every)
	l.summary(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tkload:", err)
		os.Exit(1)
	}
	if l.rejected.Load() > 0 || l.unaccounted.Load() > 0 {
		os.Exit(1)
	}
}

type loader struct {
	endpoint string
	key      string
	level    int
	attempts int
	client   *http.Client
	start    time.Time

	sent, accepted, duplicates, rejected atomic.Int64
	requests, retries, unaccounted       atomic.Int64

	mu      sync.Mutex
	reasons map[string]int64 // rejection reasons
}

type job struct {
	body   []byte
	events int
}

// run generates the batches in one goroutine and posts them from
// clients others.
func (l *loader) run(ctx context.Context, g *synth.Generator, clients, size int, every time.Duration) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.start = time.Now()
	l.reasons = map[string]int64{}
	jobs := make(chan job, 2*clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, l.level)
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				buf.Reset()
				zw.Reset(&buf)
				zw.Write(j.body)
				zw.Close()
				if err := l.post(ctx, buf.Bytes(), j.events); err != nil {
					cancel(err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l.progress(os.Stderr, g.Config().Events)
			}
		}
	}()
	genErr := g.Batches(size, func(body []byte, events int) error {
		select {
		case jobs <- job{body: bytes.Clone(body), events: events}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	close(done)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return genErr
}

// post sends one compressed batch until it gets an answer that is not
// worth retrying.
func (l *loader) post(ctx context.Context, body []byte, events int) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", wire.ContentType)
		req.Header.Set("Content-Encoding", wire.ContentEncoding)
		req.Header.Set("Authorization", "Bearer "+l.key)
		req.Header.Set("User-Agent", "tkload")
		l.requests.Add(1)
		resp, err := l.client.Do(req)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			wait = backoff
		} else {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && rerr == nil:
				return l.answer(data, events)
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
				wait = retryAfter(resp.Header.Get("Retry-After"), backoff)
			case resp.StatusCode >= 500 || resp.StatusCode == http.StatusOK:
				wait = backoff
				err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
			default:
				return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
			}
		}
		if attempt >= l.attempts {
			if err == nil {
				err = errors.New("server busy")
			}
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		l.retries.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// retryAfter reads a Retry-After in seconds (or as an HTTP date),
// clamped to [100 ms, 1 h]; def when there is none.
func retryAfter(v string, def time.Duration) time.Duration {
	d := def
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 100*time.Millisecond), time.Hour)
}

// answer checks a 200 answer to a batch of n events and counts it.
func (l *loader) answer(body []byte, n int) error {
	r, err := wire.ParseResponse(body)
	if err != nil {
		return fmt.Errorf("200 answer %q: %w", body, err)
	}
	l.sent.Add(int64(n))
	l.accepted.Add(int64(r.Accepted))
	l.duplicates.Add(int64(r.Duplicates))
	l.rejected.Add(int64(len(r.Rejected)))
	if r.Accepted+r.Duplicates+len(r.Rejected) != n {
		l.unaccounted.Add(1)
	}
	if len(r.Rejected) > 0 {
		l.mu.Lock()
		for _, rj := range r.Rejected {
			l.reasons[rj.Reason]++
		}
		l.mu.Unlock()
	}
	return nil
}

func (l *loader) progress(w io.Writer, total int) {
	sent := l.sent.Load()
	el := time.Since(l.start).Seconds()
	fmt.Fprintf(w, "%5.1f%%  %d/%d events  accepted %d  duplicates %d  rejected %d  retries %d  %.0f events/s\n",
		100*float64(sent)/float64(total), sent, total, l.accepted.Load(), l.duplicates.Load(), l.rejected.Load(),
		l.retries.Load(), float64(sent)/el)
}

func (l *loader) summary(w io.Writer) {
	el := time.Since(l.start)
	sent := l.sent.Load()
	fmt.Fprintf(w, "events sent   %d\naccepted      %d\nduplicates    %d\nrejected      %d\n",
		sent, l.accepted.Load(), l.duplicates.Load(), l.rejected.Load())
	fmt.Fprintf(w, "requests      %d (%d retried)\nelapsed       %s\nevents/s      %.0f\n",
		l.requests.Load(), l.retries.Load(), el.Round(time.Millisecond), float64(sent)/el.Seconds())
	if n := l.unaccounted.Load(); n > 0 {
		fmt.Fprintf(w, "answers that did not account for every event of their batch: %d\n", n)
	}
	l.mu.Lock()
	for reason, n := range l.reasons {
		fmt.Fprintf(w, "rejected %-40s %d\n", reason, n)
	}
	l.mu.Unlock()
}
