package sender

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/telemetry-kit/telemetry-kit/internal/logutil"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// Config configures a [Sender]. Every field but Endpoint may be left zero.
type Config struct {
	// Endpoint is the collection server's base URL; requests go to
	// Endpoint + "/v1/events". Required: http or https with a host.
	Endpoint string

	// APIKey is the write key, sent as a bearer token. Zero: no
	// Authorization header.
	APIKey string

	// UserAgent names the SDK and its version. Zero: "telemetry-kit-go".
	UserAgent string

	// UserID is the anonymous ID filled into the queued events that carry
	// none (see [FillUserID]). Zero: such events are sent as queued.
	UserID string

	// BatchSize is the most events one request carries. Zero: 100.
	BatchSize int

	// MaxBatchBytes bounds the event data of one request, before
	// compression. Zero: 1 MiB, the server's limit on a body as sent.
	MaxBatchBytes int

	// GzipMin is the body size from which bodies are gzip-compressed.
	// Zero: 1 KiB.
	GzipMin int

	// AttemptTimeout bounds one HTTP attempt, from dialing to the end of the
	// response body. Zero: 10 seconds.
	AttemptTimeout time.Duration

	// Retries is how many times one request is retried within a run after a
	// network error (not a timeout), a 5xx, or a 429/503 whose Retry-After is
	// at most RetryWaitMax. Zero: 2; negative: none.
	Retries int

	// RetryWaitMin and RetryWaitMax bound the wait between those retries
	// (exponential with jitter). Zero: 500ms and 2s.
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration

	// BackoffMin and BackoffMax bound the persisted backoff between runs
	// after a failure: it starts at BackoffMin, doubles with every failure
	// up to BackoffMax, and a success clears it. Zero: 1 minute and 24 hours.
	BackoffMin time.Duration
	BackoffMax time.Duration

	// RetryAfterMax is the longest Retry-After honoured; shorter than one
	// second counts as one second. Zero: 1 hour.
	RetryAfterMax time.Duration

	// AuthBlock is how long a 401 or 403 stops sending with the same key.
	// Zero: 24 hours.
	AuthBlock time.Duration

	// Transport makes the HTTP requests. Zero: a transport of the sender's
	// own (proxy settings from the environment).
	Transport http.RoundTripper

	// Logger receives diagnostics, those of go-retryablehttp included.
	// Zero: they are discarded.
	Logger *slog.Logger

	// Now tells the time. Zero: time.Now.
	Now func() time.Time

	// Continue is asked before every request; a run stops when it returns
	// false (e.g. the user turned telemetry off). Zero: always continue.
	Continue func() bool
}

// Sender delivers queued events to the collection server. See the package
// documentation for the protocol and the schedule. A Sender is safe for
// concurrent use, but only one should run per queue (see [TryLock]).
type Sender struct {
	cfg    Config
	url    string
	client *retryablehttp.Client
}

// CheckEndpoint reports whether endpoint is one [New] accepts: an http or
// https URL with a host. It returns an error wrapping [ErrNoEndpoint] if not.
func CheckEndpoint(endpoint string) error {
	_, err := parseEndpoint(endpoint)
	return err
}

func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrNoEndpoint, endpoint)
	}
	return u, nil
}

// New validates cfg and returns a sender.
func New(cfg Config) (*Sender, error) {
	u, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "telemetry-kit-go"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 1 << 20
	}
	if cfg.GzipMin <= 0 {
		cfg.GzipMin = 1 << 10
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = 2
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	def(&cfg.AttemptTimeout, 10*time.Second)
	def(&cfg.RetryWaitMin, 500*time.Millisecond)
	def(&cfg.RetryWaitMax, 2*time.Second)
	def(&cfg.BackoffMin, time.Minute)
	def(&cfg.BackoffMax, 24*time.Hour)
	def(&cfg.RetryAfterMax, time.Hour)
	def(&cfg.AuthBlock, 24*time.Hour)
	if cfg.Logger == nil {
		cfg.Logger = logutil.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 5 * time.Second
		cfg.Transport = t
	}
	s := &Sender{cfg: cfg, url: strings.TrimRight(u.String(), "/") + wire.EventsPath}
	s.client = &retryablehttp.Client{
		HTTPClient:   &http.Client{Timeout: cfg.AttemptTimeout, Transport: cfg.Transport},
		Logger:       retryablehttp.LeveledLogger(cfg.Logger),
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.Retries,
		CheckRetry:   s.checkRetry,
		Backoff:      s.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return s, nil
}

// Outcome says how a run ended.
type Outcome int

const (
	// Drained: the queue had nothing more to send.
	Drained Outcome = iota
	// Deferred: the server was unreachable, failed or asked to slow down;
	// the next attempt is scheduled in the persisted state.
	Deferred
	// Blocked: the server refused the key; sending is paused.
	Blocked
	// Stopped: the context ended or Continue returned false.
	Stopped
)

func (o Outcome) String() string {
	switch o {
	case Drained:
		return "drained"
	case Deferred:
		return "deferred"
	case Blocked:
		return "blocked"
	case Stopped:
		return "stopped"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result describes one run.
type Result struct {
	Outcome     Outcome
	Requests    int       // HTTP requests whose outcome was known (retries not counted)
	Accepted    int       // events the server stored
	Duplicates  int       // events the server already had
	Rejected    int       // events the server rejected as invalid in a 200 response
	Dropped     int       // single events removed after a 400, 413 or 415
	NextAttempt time.Time // when Deferred or Blocked: the earliest next attempt
}

// Removed is the number of events that left the queue in the run.
func (r Result) Removed() int { return r.Accepted + r.Duplicates + r.Rejected + r.Dropped }

// verdict is how one request (or split of requests) ended.
type verdict int

const (
	vOK verdict = iota
	vDeferred
	vBlocked
	vStopped
	vStoreErr
)

type run struct {
	s       *Sender
	q       Queue
	st      State
	res     Result
	size    int    // current batch size; halved after a 413
	dropped uint64 // the queue's dropped counter to report, from the batch's Peek
	err     error  // the cause of vDeferred or vStoreErr
	saved   []byte // st as last loaded or saved
}

// Run sends queued events, oldest first, in batches: Peek, POST, and Ack of
// what the server took, until the queue is empty, a request fails (the next
// attempt is then scheduled in the persisted [State]), or ctx ends. The queue
// file is locked only for the short Peek and Ack transactions, never while a
// request is in flight.
//
// Run does not consult the schedule (see [Policy.Check]) except an auth
// block for the same key, which makes it return [ErrUnauthorized] at once.
// The caller should hold the queue's send lock ([TryLock]).
func (s *Sender) Run(ctx context.Context, q Queue) (Result, error) {
	st, err := LoadState(ctx, q)
	if err != nil {
		return Result{Outcome: Stopped}, fmt.Errorf("upload: read state: %w", err)
	}
	now := s.cfg.Now()
	if st.AuthBlocked(s.cfg.APIKey, now) {
		return Result{Outcome: Blocked, NextAttempt: st.AuthBlockedUntil}, ErrUnauthorized
	}
	r := &run{s: s, q: q, st: st, size: s.cfg.BatchSize}
	r.saved, _ = json.Marshal(st)
	defer s.client.HTTPClient.CloseIdleConnections()

	v := r.loop(ctx)
	switch v {
	case vOK:
		r.res.Outcome = Drained
		if r.res.Requests > 0 {
			r.st.LastResult = "ok"
		}
	case vDeferred:
		r.res.Outcome = Deferred
		r.res.NextAttempt = r.st.NextAttempt
	case vBlocked:
		r.res.Outcome = Blocked
		r.res.NextAttempt = r.st.AuthBlockedUntil
	default:
		r.res.Outcome = Stopped
	}
	if serr := r.save(ctx); serr != nil {
		s.cfg.Logger.Warn("telemetry: send state not saved", "err", serr)
	}
	switch v {
	case vDeferred:
		return r.res, fmt.Errorf("%w: %v", ErrDeferred, r.err)
	case vBlocked:
		return r.res, ErrUnauthorized
	case vStopped:
		if err := ctx.Err(); err != nil {
			return r.res, err
		}
		return r.res, nil
	case vStoreErr:
		return r.res, fmt.Errorf("upload: queue: %w", r.err)
	}
	return r.res, nil
}

// detached bounds the queue operations that must finish even when the run's
// context has just ended: acknowledging what the server committed, saving the
// schedule.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
}

func (r *run) save(ctx context.Context) error {
	b, err := json.Marshal(r.st)
	if err != nil || bytes.Equal(b, r.saved) {
		return err // unchanged: no write, no fsync
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	if err := r.q.PutMeta(ctx, StateKey, b); err != nil {
		return err
	}
	r.saved = b
	return nil
}

func (r *run) loop(ctx context.Context) verdict {
	for {
		if ctx.Err() != nil || (r.s.cfg.Continue != nil && !r.s.cfg.Continue()) {
			return vStopped
		}
		b, err := r.q.Peek(ctx, r.size, r.s.cfg.MaxBatchBytes)
		if err != nil {
			if ctx.Err() != nil {
				return vStopped
			}
			r.err = err
			return vStoreErr
		}
		if len(b.Records) == 0 {
			return vOK
		}
		r.dropped = b.Dropped
		if v := r.deliver(ctx, b.Records); v != vOK {
			return v
		}
	}
}

// deliver sends recs, splitting them after a 400, 413 or 415 until the bad
// or oversized event is alone, and drops such an event.
func (r *run) deliver(ctx context.Context, recs []store.Record) verdict {
	if ctx.Err() != nil || (r.s.cfg.Continue != nil && !r.s.cfg.Continue()) {
		return vStopped
	}
	rep := r.s.post(ctx, recs, r.dropped+r.st.Unreported)
	now := r.s.cfg.Now()
	if rep.err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			// The run's time ran out waiting for the server: as much a
			// failure of the server as an attempt timeout.
			r.deferNext(now, -1, "timeout", rep.err)
			return vDeferred
		case ctx.Err() != nil:
			return vStopped
		}
		r.deferNext(now, -1, "network", rep.err)
		return vDeferred
	}
	r.res.Requests++
	switch st := rep.status; {
	case st >= 200 && st < 300:
		return r.accepted(ctx, recs, rep, now)
	case st == http.StatusBadRequest || st == http.StatusUnsupportedMediaType || st == http.StatusRequestEntityTooLarge:
		if len(recs) == 1 {
			return r.dropOne(ctx, recs[0], st, rep.body)
		}
		half := len(recs) / 2
		if st == http.StatusRequestEntityTooLarge && half < r.size {
			r.size = max(1, half)
		}
		if v := r.deliver(ctx, recs[:half]); v != vOK {
			return v
		}
		return r.deliver(ctx, recs[half:])
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		r.st.AuthBlockedUntil = now.Add(r.s.cfg.AuthBlock)
		r.st.AuthKey = KeyFingerprint(r.s.cfg.APIKey)
		r.st.LastResult = "http_" + strconv.Itoa(st)
		r.s.cfg.Logger.Warn("telemetry: the server refused the write key; sending paused",
			"status", st, "until", r.st.AuthBlockedUntil)
		return vBlocked
	case st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable:
		r.deferNext(now, rep.retryAfter, "http_"+strconv.Itoa(st), fmt.Errorf("status %d", st))
		return vDeferred
	default:
		r.deferNext(now, -1, "http_"+strconv.Itoa(st), fmt.Errorf("status %d", st))
		return vDeferred
	}
}

func (r *run) accepted(ctx context.Context, recs []store.Record, rep reply, now time.Time) verdict {
	if rep.readErr != nil {
		// Cut off: the server may or may not have committed the batch. It is
		// kept and sent again later; the server de-duplicates by event_id.
		r.deferNext(now, -1, "truncated_response", rep.readErr)
		return vDeferred
	}
	body, err := wire.ParseResponse(rep.body)
	if err != nil {
		r.deferNext(now, -1, "bad_response", fmt.Errorf("unreadable 200 response: %v", err))
		return vDeferred
	}
	n := body.Accepted + body.Duplicates + len(body.Rejected)
	if n < len(recs) {
		// Some events are unaccounted for: keep them all, resending is safe.
		r.deferNext(now, -1, "short_response", fmt.Errorf("response accounts for %d of %d events", n, len(recs)))
		return vDeferred
	}
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	err = r.ack(ctx, ids, r.dropped)
	if err != nil {
		// Not acknowledged locally: the events are sent again later and
		// counted once by the server.
		r.err = err
		return vStoreErr
	}
	for _, rj := range body.Rejected {
		r.s.cfg.Logger.Warn("telemetry: the server rejected an event", "index", rj.Index, "reason", rj.Reason)
	}
	r.st.Delivered = true
	r.res.Accepted += body.Accepted
	r.res.Duplicates += body.Duplicates
	r.res.Rejected += len(body.Rejected)
	hadUnreported := r.st.Unreported > 0
	r.dropped = 0
	r.st.Unreported = 0
	r.st.NextAttempt = time.Time{}
	r.st.BackoffSeconds = 0
	r.st.AuthBlockedUntil, r.st.AuthKey = time.Time{}, ""
	if hadUnreported {
		// Reported: do not report it twice if this process dies now.
		if err := r.save(ctx); err != nil {
			r.s.cfg.Logger.Warn("telemetry: send state not saved", "err", err)
		}
	}
	return vOK
}

// ack removes what the server took from the queue. It must not be lost to a
// busy queue file (the events would be sent again), so it retries while the
// lock is contended, for a few seconds, even after ctx ended.
func (r *run) ack(ctx context.Context, ids []string, dropped uint64) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for {
		err := r.q.Ack(actx, ids, dropped)
		if !errors.Is(err, store.ErrLocked) {
			return err
		}
		select {
		case <-actx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// dropOne removes an event the server refuses on its own, and counts it.
func (r *run) dropOne(ctx context.Context, rec store.Record, status int, body []byte) verdict {
	err := r.ack(ctx, []string{rec.ID}, 0)
	if err != nil {
		r.err = err
		return vStoreErr
	}
	r.st.Unreported++
	r.res.Dropped++
	r.s.cfg.Logger.Warn("telemetry: the server refused an event; dropped",
		"event_id", rec.ID, "status", status, "response", string(truncate(body, 200)))
	return vOK
}

// deferNext schedules the next attempt: after retryAfter (clamped) when the
// server gave one (retryAfter >= 0), else after the current backoff step with
// jitter; and doubles the step.
func (r *run) deferNext(now time.Time, retryAfter time.Duration, reason string, err error) {
	cfg := r.s.cfg
	step := min(max(r.st.Backoff(), cfg.BackoffMin), cfg.BackoffMax)
	wait := step/2 + rand.N(step/2+1)
	if retryAfter >= 0 {
		wait = min(max(retryAfter, time.Second), cfg.RetryAfterMax)
	}
	r.st.NextAttempt = now.Add(wait)
	r.st.BackoffSeconds = int64(min(2*step, cfg.BackoffMax) / time.Second)
	r.st.LastResult = reason
	r.err = err
	cfg.Logger.Debug("telemetry: send deferred", "reason", reason, "err", err, "next_attempt", r.st.NextAttempt)
}

// reply is the outcome of one request, after go-retryablehttp's retries.
type reply struct {
	status     int
	body       []byte
	readErr    error
	retryAfter time.Duration // -1 when the response had none
	err        error         // no response at all
}

const maxResponse = 1 << 20

func (s *Sender) post(ctx context.Context, recs []store.Record, dropped uint64) reply {
	body := encodeBody(recs, dropped, s.cfg.UserID)
	var encoding string
	if len(body) >= s.cfg.GzipMin {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
		body, encoding = buf.Bytes(), wire.ContentEncoding
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, s.url, body)
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Content-Type", wire.ContentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if s.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.APIKey)
	}
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return reply{err: err}
	}
	defer resp.Body.Close()
	rep := reply{status: resp.StatusCode, retryAfter: -1}
	rep.body, rep.readErr = io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.cfg.Now()); ok {
		rep.retryAfter = d
	}
	return rep
}

// encodeBody builds the request body around the queued JSON, with userID
// filled into the events queued without one.
func encodeBody(recs []store.Record, dropped uint64, userID string) []byte {
	n := 32
	events := make([][]byte, len(recs))
	for i, r := range recs {
		n += len(r.Data) + 1 + len(userID)
		events[i] = FillUserID(r.Data, userID)
	}
	return wire.AppendBatch(make([]byte, 0, n), dropped, events...)
}

// pendingUserID is how an event recorded before its anonymous ID was known
// names its user: a CLI run does not derive the ID (a keyed hash of the
// machine ID) on every run; the sender, and `telemetry show`, fill it in.
var pendingUserID = []byte(`,"user_id":"",`)

// FillUserID returns event with id as its user_id when it was queued with
// an empty one, and event itself otherwise. The event is an encoding of
// [wire.AppendEvent], whose members come in a fixed order, so the first
// "user_id" member is the event's own, never one inside its metadata.
func FillUserID(event []byte, id string) []byte {
	if id == "" {
		return event
	}
	i := bytes.Index(event, pendingUserID)
	if i < 0 {
		return event
	}
	out := make([]byte, 0, len(event)+len(id))
	out = append(out, event[:i+len(`,"user_id":"`)]...)
	out = append(out, id...)
	return append(out, event[i+len(`,"user_id":"`):]...)
}

// checkRetry decides retries within one request: network errors (but not
// timeouts: a server that does not answer is not asked again in this run),
// 5xx but 501, and 429/503 when Retry-After is short. A long Retry-After is
// not slept here: the run ends and the attempt is scheduled instead.
func (s *Sender) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	switch c := resp.StatusCode; {
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.cfg.Now())
		return ok && d <= s.cfg.RetryWaitMax, nil
	case c >= 500 && c != http.StatusNotImplemented:
		return true, nil
	}
	return false, nil
}

// backoff is the wait before a retry within one request: the server's short
// Retry-After, else exponential from min to max with jitter.
func (s *Sender) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.cfg.Now()); ok {
			return min(d, hi)
		}
	}
	d := hi
	if attempt < 16 {
		d = min(lo<<attempt, hi)
	}
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(365*24*time.Hour/time.Second) {
			n = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
