package sender

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// StateKey is the queue meta key under which the sender keeps its [State].
const StateKey = "upload.state"

// Queue is what the sender needs from the local queue; *store.Queue has it.
type Queue interface {
	Path() string
	Peek(ctx context.Context, max, maxBytes int) (store.Batch, error)
	Ack(ctx context.Context, ids []string, dropped uint64) error
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, val []byte) error
	Summary(ctx context.Context, metaKey string) (store.Summary, error)
	JournalSize() int64
}

var _ Queue = (*store.Queue)(nil)

// State is the sender's schedule, persisted in the queue file (JSON under
// [StateKey]) so that it holds across process runs: a server that is down
// costs later invocations nothing until the next attempt is due.
type State struct {
	// NextAttempt is when the next send may start after a failure; zero
	// when nothing is deferred.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// BackoffSeconds is the current backoff step: doubled after every
	// failure, up to Config.BackoffMax, and cleared by a success.
	BackoffSeconds int64 `json:"backoff_s,omitempty"`
	// AuthBlockedUntil stops sending after a 401 or 403, for the key whose
	// fingerprint is AuthKey: a new key is not blocked.
	AuthBlockedUntil time.Time `json:"auth_blocked_until,omitzero"`
	AuthKey          string    `json:"auth_key,omitempty"`
	// Unreported counts events the sender itself dropped (a single event the
	// server refused with 400, 413 or 415) that the next request reports in
	// its "dropped" field.
	Unreported uint64 `json:"unreported,omitempty"`
	// LastResult says how the latest run that changed the schedule ended:
	// "ok", "network", "timeout", "http_<status>", "truncated_response"...
	LastResult string `json:"last_result,omitempty"`
	// Delivered is set once the server acknowledged a batch from this
	// queue. Until then a send is due as soon as an event is queued, so
	// that an author trying the SDK sees the first events on the server
	// at once, not after 100 events or an hour.
	Delivered bool `json:"delivered,omitempty"`
}

// Backoff returns the current backoff step.
func (s State) Backoff() time.Duration { return time.Duration(s.BackoffSeconds) * time.Second }

// KeyFingerprint identifies a write key in [State.AuthKey] without storing it.
func KeyFingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// maxDeferral bounds how far ahead a persisted schedule is believed: one
// further ahead comes from a clock that jumped back, and is ignored.
const maxDeferral = 25 * time.Hour

// deferred reports whether until is still ahead of now, and believable.
func deferred(until, now time.Time) bool {
	return now.Before(until) && until.Sub(now) <= maxDeferral
}

// AuthBlocked reports whether sending with key is paused at now.
func (s State) AuthBlocked(key string, now time.Time) bool {
	return deferred(s.AuthBlockedUntil, now) && s.AuthKey == KeyFingerprint(key)
}

func decodeState(b []byte) State {
	var s State
	if len(b) == 0 {
		return s
	}
	// Every CLI run with an endpoint reads the state at exit: a flat object
	// is read here without encoding/json, whose reflection a short process
	// would pay for on each run. Anything else goes to encoding/json.
	if s, ok := scanState(b); ok {
		return s
	}
	// A damaged state is treated as empty: at worst one early attempt.
	_ = json.Unmarshal(b, &s)
	return s
}

// scanState reads b when it is a flat JSON object of State's members with
// plain values (strings without escapes, integers, booleans), as the
// sender writes it. ok is false for anything else.
func scanState(b []byte) (s State, ok bool) {
	i := 0
	skip := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return "", false
			}
			j++
		}
		if j >= len(b) {
			return "", false
		}
		v := string(b[i+1 : j])
		i = j + 1
		return v, true
	}
	skip()
	if i >= len(b) || b[i] != '{' {
		return s, false
	}
	i++
	for first := true; ; first = false {
		skip()
		if i < len(b) && b[i] == '}' {
			i++
			skip()
			return s, i == len(b)
		}
		if !first {
			if i >= len(b) || b[i] != ',' {
				return s, false
			}
			i++
			skip()
		}
		key, ok := str()
		if !ok {
			return s, false
		}
		skip()
		if i >= len(b) || b[i] != ':' {
			return s, false
		}
		i++
		skip()
		switch key {
		case "next_attempt", "auth_blocked_until", "auth_key", "last_result":
			v, ok := str()
			if !ok {
				return s, false
			}
			switch key {
			case "auth_key":
				s.AuthKey = v
			case "last_result":
				s.LastResult = v
			default:
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return s, false
				}
				if key == "next_attempt" {
					s.NextAttempt = t
				} else {
					s.AuthBlockedUntil = t
				}
			}
		case "backoff_s", "unreported":
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			n, err := strconv.ParseUint(string(b[i:j]), 10, 63)
			if err != nil {
				return s, false
			}
			i = j
			if key == "backoff_s" {
				s.BackoffSeconds = int64(n)
			} else {
				s.Unreported = n
			}
		case "delivered":
			switch {
			case bytes.HasPrefix(b[i:], []byte("true")):
				s.Delivered, i = true, i+4
			case bytes.HasPrefix(b[i:], []byte("false")):
				i += 5
			default:
				return s, false
			}
		default:
			return s, false
		}
	}
}

// LoadState reads the sender's state from q.
func LoadState(ctx context.Context, q Queue) (State, error) {
	b, err := q.GetMeta(ctx, StateKey)
	if err != nil {
		return State{}, err
	}
	return decodeState(b), nil
}

// SaveState writes the sender's state to q.
func SaveState(ctx context.Context, q Queue, s State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return q.PutMeta(ctx, StateKey, b)
}

// Policy says when a send is due.
type Policy struct {
	// MinEvents: a send is due when at least this many events are queued.
	// Zero: 100.
	MinEvents int
	// MaxAge: a send is due when the oldest queued event is this old.
	// Zero: 1 hour.
	MaxAge time.Duration
	// StartGrace is how long a detached sender marked as started (see
	// [Lock.MarkStarted]) is given to take the lock; no other is started
	// meanwhile. Zero: 30 seconds.
	StartGrace time.Duration
	// APIKey is the write key, to tell whether an auth block applies.
	APIKey string
}

func (p Policy) withDefaults() Policy {
	if p.MinEvents <= 0 {
		p.MinEvents = 100
	}
	if p.MaxAge <= 0 {
		p.MaxAge = time.Hour
	}
	if p.StartGrace <= 0 {
		p.StartGrace = 30 * time.Second
	}
	return p
}

// Decision is the outcome of [Policy.Check].
type Decision struct {
	Due    bool
	Reason string // why, or why not: "first", "count", "age", "empty", "backoff", "auth", "started", "not_yet"
	State  State
	Len    int       // events queued
	Oldest time.Time // when the oldest queued event was recorded; zero when unknown
}

// Check reads q's summary (one open of the queue file) and decides whether a
// send is due at now. A sender process ignores the started mark (pass
// ignoreStarted), since it is the process that was started.
func (p Policy) Check(ctx context.Context, q Queue, now time.Time, ignoreStarted bool) (Decision, error) {
	p = p.withDefaults()
	sum, err := q.Summary(ctx, StateKey)
	if err != nil {
		return Decision{}, err
	}
	st := decodeState(sum.Meta)
	d := Decision{State: st, Len: sum.Len}
	d.Oldest, _ = RecordTime(sum.Oldest)
	switch {
	case sum.Len == 0:
		d.Reason = "empty"
	case st.AuthBlocked(p.APIKey, now):
		d.Reason = "auth"
	case deferred(st.NextAttempt, now):
		d.Reason = "backoff"
	case !st.Delivered:
		d.Due, d.Reason = true, "first"
	case sum.Len >= p.MinEvents:
		d.Due, d.Reason = true, "count"
	default:
		if t := d.Oldest; !t.IsZero() && now.Sub(t) >= p.MaxAge {
			d.Due, d.Reason = true, "age"
		} else {
			d.Reason = "not_yet"
		}
	}
	// Only a send that would be due reads the lock file: most runs find
	// nothing due without it.
	if d.Due && !ignoreStarted && recentlyStarted(q.Path(), now, p.StartGrace) {
		d.Due, d.Reason = false, "started"
	}
	return d, nil
}

// RecordTime returns when a queued event was recorded: from its ID when that
// is a UUIDv7 (whose first 48 bits are Unix milliseconds), else from the
// event's "timestamp" field.
func RecordTime(r store.Record) (time.Time, bool) {
	if t, ok := wire.EventIDTime(r.ID); ok {
		return t, true
	}
	var ev struct {
		Timestamp time.Time `json:"timestamp"`
	}
	if len(r.Data) > 0 && json.Unmarshal(r.Data, &ev) == nil && !ev.Timestamp.IsZero() {
		return ev.Timestamp, true
	}
	return time.Time{}, false
}

func recentlyStarted(queuePath string, now time.Time, grace time.Duration) bool {
	t := StartedAt(queuePath)
	return !t.IsZero() && !t.After(now) && now.Before(t.Add(grace))
}
