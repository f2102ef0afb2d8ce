package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// SDKName and SDKVersion identify this SDK in every event and in the
// User-Agent of every request.
const (
	SDKName    = "telemetry-kit-go"
	SDKVersion = "0.1.0"
)

// Client records events. Create one with [New]; it is safe for concurrent use.
//
// Every method is a no-op on a nil *Client, and every method of a client whose
// telemetry is off (see [Client.Enabled]) is cheap and records nothing, so a
// host never needs to check before calling.
type Client struct {
	cfg      Config
	decision privacy.Decision
	on       atomic.Bool // records events; cleared by Disable
	running  bool        // library mode's writer goroutine was started
	debug    bool        // <SERVICE>_TELEMETRY_DEBUG: print events, store and send nothing
	// The local queue: opened in New when the client records, else on
	// first use (see localQueue). Set only through queueOnce.
	queue     *store.Queue
	queueOnce sync.Once
	queueErr  error
	env       wire.Env
	sdk       wire.SDK
	userID    string // the anonymous ID events carry; "" in CLI mode, filled in when sent

	// The command begun in CLI mode (BeginCommand) and its run file.
	beginMu sync.Mutex
	begunID uuid
	run     store.RunStart

	idOnce   sync.Once
	idValue  string
	idErr    error
	scrubber func() privacy.Scrubber // this machine's home, host and user names, read once

	sessionMu  sync.Mutex
	session    atomic.Pointer[string]
	lastActive atomic.Int64 // unix nanoseconds of the latest Track

	echoMu sync.Mutex
	echo   io.Writer

	// Library mode.
	ch       chan *pending
	flushReq chan chan error
	stop     chan struct{}
	done     chan struct{}

	closeOnce sync.Once
	closed    atomic.Bool
	lost      atomic.Uint64 // events lost in memory: buffer full, or unwritable

	snd *sending // delivery to the server, see send.go; nil when nothing is sent
}

// pending is an event on its way from Track to the queue. It carries only
// what Track must capture; the rest of the event is built at persist time.
type pending struct {
	id      uuid
	typ     string
	name    string // feature or method name, for feature_used and method_called
	ts      time.Time
	session *string
	props   map[string]any
}

// New validates cfg once and returns a client.
//
// New resolves consent (see package consent): when telemetry is off, the
// returned client records nothing. In CLI mode New may show the author's
// opt-out notice or ask the opt-in question on the terminal (stderr), once.
// New does no network I/O.
func New(cfg Config) (*Client, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if marker := cfg.Host.Getenv(sender.ProcessEnv); marker != "" {
		return senderProcess(cfg, marker)
	}
	// Filled in field by field: the compiler builds a composite literal of
	// this size on the stack first, which makes New's frame larger.
	c := new(Client)
	c.cfg = cfg
	c.scrubber = sync.OnceValue(privacy.LocalScrubber)
	c.sdk = wire.SDK{Name: SDKName, Version: SDKVersion}
	c.env = wire.Env{OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()}
	if name, ok := privacy.DetectCI(cfg.Host.Getenv); ok {
		c.env.CI, c.env.CIName = true, name
	}
	c.decision = c.resolveConsent()
	enabled := c.decision.Enabled
	c.debug = privacy.DebugEnabled(cfg.ServiceName, cfg.Host.Getenv)
	// A CLI run records its event without the anonymous ID, a keyed hash
	// of the machine ID that the sender and `telemetry show` fill in
	// (sender.FillUserID): most runs never send, and deriving it costs
	// every run.
	if enabled && cfg.Mode == LibraryMode {
		id, err := c.anonymousID()
		if err != nil {
			// Without an identity there is nothing anonymous to record.
			cfg.Logger.Warn("telemetry: no anonymous id; recording nothing", "err", err)
			enabled = false
		}
		c.userID = id
	}
	// Only a client that records opens its queue now: with telemetry off
	// (DO_NOT_TRACK, an opt-out) a run neither reads nor creates anything
	// for it, and the queue is opened when the person asks about it.
	if enabled {
		if _, err := c.localQueue(); err != nil {
			return nil, err
		}
	}
	c.on.Store(enabled)
	c.newSession(cfg.Host.Now())
	if enabled && cfg.Mode == LibraryMode {
		c.running = true
		c.ch = make(chan *pending, cfg.Library.BufferSize)
		c.flushReq = make(chan chan error)
		c.stop = make(chan struct{})
		c.done = make(chan struct{})
		go c.loop()
	}
	c.startSending()
	c.pendingErasure()
	return c, nil
}

// localQueue returns the local queue, opening it on first use. A client
// that records opened it in New.
func (c *Client) localQueue() (*store.Queue, error) {
	c.queueOnce.Do(func() { c.queue, c.queueErr = openQueue(&c.cfg, c.buildRun) })
	return c.queue, c.queueErr
}

// openQueue opens the local queue that cfg names; build builds the events
// of the runs in its runs log (see run.go).
func openQueue(cfg *Config, build func([]byte) ([]byte, error)) (*store.Queue, error) {
	q, err := store.Open(cfg.Queue.Path, store.Options{
		MaxEvents:   cfg.Queue.MaxEvents,
		MaxBytes:    cfg.Queue.MaxBytes,
		LockTimeout: cfg.Queue.LockTimeout,
		// One short process per event: one write each, moved into the
		// queue file in bulk later.
		Journal:     cfg.Mode == CLIMode,
		JournalSync: cfg.Queue.Fsync,
		Logger:      cfg.Logger,
		BuildRun:    build,
	})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return q, nil
}

func (c *Client) consentOptions() privacy.Options {
	return privacy.Options{
		Service:       c.cfg.ServiceName,
		Mode:          c.cfg.Consent,
		PolicyVersion: c.cfg.Policy.Version,
		DisableInCI:   c.cfg.Policy.DisableInCI,
		Dir:           c.cfg.ConfigDir,
		Getenv:        c.cfg.Host.Getenv,
		Stdin:         c.cfg.Host.Stdin,
		Stderr:        c.cfg.Host.Stderr,
		Now:           c.cfg.Host.Now,
		Collects:      c.cfg.Policy.Collects,
		CommandHint:   c.cfg.Policy.CommandHint,
		FlagValues:    c.cfg.Policy.FlagValues,
	}
}

// resolveConsent decides whether this process records events. Only CLI mode
// talks to the user; a library never prompts on its host's terminal.
func (c *Client) resolveConsent() privacy.Decision {
	o := c.consentOptions()
	if c.cfg.Mode == CLIMode {
		return privacy.Ensure(o)
	}
	return privacy.Resolve(o)
}

// Enabled reports whether this client records events.
func (c *Client) Enabled() bool { return c != nil && c.on.Load() }

// Track records an event of the author's own type, a snake_case name such as
// "plugin_loaded", with props as its metadata. An invalid type is logged and
// dropped.
//
// Track takes ownership of props: do not modify the map after the call.
// In library mode Track never blocks and does no I/O; in CLI mode it returns
// once the event is durable in the local queue (or after LockTimeout at most).
func (c *Client) Track(eventType string, props Props) {
	if !c.Enabled() {
		return
	}
	if !wire.ValidEventType(eventType) {
		c.cfg.Logger.Warn("telemetry: invalid event type; dropped", "event_type", eventType)
		return
	}
	c.record(eventType, "", props)
}

// TrackFeature records that a feature was used: a feature_used event whose
// metadata holds "feature": name and props.
func (c *Client) TrackFeature(name string, props Props) {
	if !c.Enabled() {
		return
	}
	c.record(wire.EventFeatureUsed, name, props)
}

// TrackMethod records that an API method was called: a method_called event
// whose metadata holds "method": name and props.
func (c *Client) TrackMethod(name string, props Props) {
	if !c.Enabled() {
		return
	}
	c.record(wire.EventMethodCalled, name, props)
}

// Command describes one finished command invocation for [Client.TrackCommand].
type Command struct {
	// Path is the full command path without the root name, e.g. "remote add".
	Path string
	// Flags are the names of the flags the user set, without dashes.
	Flags []string
	// FlagValues holds values only for flags the author allowlisted; they are
	// scrubbed like every other string.
	FlagValues map[string]string
	// Args is the number of positional arguments.
	Args int
	// Err is the command's error, nil on success. Its message is never
	// recorded: only its kind, see [privacy.ErrorKind].
	Err error
	// ErrorKind overrides the kind derived from Err.
	ErrorKind string
	// ExitCode is the process exit code the command leads to.
	ExitCode int
	// Duration is how long the command ran.
	Duration time.Duration
}

// TrackCommand records a command_executed event.
func (c *Client) TrackCommand(cmd Command) {
	if !c.Enabled() {
		return
	}
	c.beginMu.Lock()
	id, run := c.begunID, c.run
	c.begunID, c.run = uuid{}, store.RunStart{}
	c.beginMu.Unlock()
	if !id.isZero() && c.finishRun(id, run, cmd) {
		return
	}
	c.recordID(id, wire.EventCommandExecuted, "", commandProps(cmd))
	run.End()
}

// finishRun writes the whole of a begun run to the runs log as its record
// (see run.go). It reports false when the run must queue its event itself:
// in debug mode and when the event is shown, which need it now, and when
// the runs log could not take it.
func (c *Client) finishRun(id uuid, run store.RunStart, cmd Command) (ok bool) {
	defer c.recoverPanic("finish")
	c.echoMu.Lock()
	shown := c.echo != nil
	c.echoMu.Unlock()
	if c.debug || shown || !c.on.Load() {
		return false
	}
	return run.Finish(c.runData(id, cmd, true))
}

// BeginCommand notes, in CLI mode, that a command's own code is about to
// run. If the process then ends without [Client.TrackCommand] (os.Exit or
// log.Fatal in the command, a signal, kill -9), a later run of the tool, or
// its sender, queues a command_executed event for it with what was known
// at the start: the command, its flags and their collected values, the
// argument count and the start time, with error_kind "unknown" and neither
// success, duration nor exit code. TrackCommand completes the run under
// the same event_id, so that a run is never counted twice. The adapters
// call both.
func (c *Client) BeginCommand(cmd Command) {
	if !c.Enabled() || c.cfg.Mode != CLIMode {
		return
	}
	defer c.recoverPanic("begin")
	c.beginMu.Lock()
	defer c.beginMu.Unlock()
	if !c.begunID.isZero() || c.closed.Load() {
		return
	}
	id := newID()
	c.begunID = id
	c.run = c.queue.BeginRun(id.String(), c.runData(id, cmd, false))
}

// startedProps is what is known of a command when it starts.
func startedProps(cmd Command) Props {
	p := commandProps(cmd)
	delete(p, wire.MetaSuccess)
	delete(p, wire.MetaDurationMS)
	delete(p, wire.MetaExitCode)
	p[wire.MetaErrorKind] = "unknown"
	return p
}

// outcome returns the error kind and the exit code cmd ended with.
func outcome(cmd Command) (kind string, exit int) {
	kind = cmd.ErrorKind
	if kind == "" && cmd.Err != nil {
		kind = privacy.ErrorKind(cmd.Err)
	}
	exit = cmd.ExitCode
	if exit == 0 && cmd.Err != nil {
		exit = 1 // a command that failed with an error exits non-zero unless told otherwise
	}
	return kind, exit
}

func commandProps(cmd Command) Props {
	kind, exit := outcome(cmd)
	flags := cmd.Flags
	if flags == nil {
		flags = []string{}
	}
	p := Props{
		wire.MetaCommand:    cmd.Path,
		wire.MetaFlags:      flags,
		"args_count":        cmd.Args,
		wire.MetaSuccess:    kind == "" && exit == 0,
		wire.MetaErrorKind:  kind,
		wire.MetaDurationMS: cmd.Duration.Milliseconds(),
		wire.MetaExitCode:   exit,
	}
	if len(cmd.FlagValues) > 0 {
		fv := make(map[string]any, len(cmd.FlagValues))
		for k, v := range cmd.FlagValues {
			fv[k] = v
		}
		p[wire.MetaFlagValues] = fv
	}
	return p
}

// record captures an event and hands it on: to the buffer in library mode,
// straight to the queue in CLI mode.
func (c *Client) record(typ, name string, props Props) {
	c.recordID(uuid{}, typ, name, props)
}

// recordID is record with the event's id, or a new one when id is nil.
func (c *Client) recordID(id uuid, typ, name string, props Props) {
	defer c.recoverPanic("track")
	if c.closed.Load() {
		return
	}
	now := c.cfg.Host.Now()
	if id.isZero() {
		id = newID()
	}
	p := &pending{id: id, typ: typ, name: name, ts: now, session: c.touchSession(now), props: props}
	if c.cfg.Mode == CLIMode {
		c.persist([]*pending{p})
		return
	}
	select {
	case c.ch <- p:
	default:
		c.lost.Add(1)
	}
}

func (c *Client) newSession(now time.Time) *string {
	id := newID().String()
	c.session.Store(&id)
	c.lastActive.Store(now.UnixNano())
	return &id
}

// touchSession returns the current session, starting a new one in library
// mode after Library.SessionTimeout without events.
func (c *Client) touchSession(now time.Time) *string {
	if c.cfg.Mode == CLIMode {
		return c.session.Load()
	}
	n := now.UnixNano()
	last := c.lastActive.Swap(n)
	if n-last <= int64(c.cfg.Library.SessionTimeout) {
		return c.session.Load()
	}
	c.sessionMu.Lock()
	defer c.sessionMu.Unlock()
	return c.newSession(now)
}

// SessionID returns the current session's ID.
func (c *Client) SessionID() string {
	if c == nil {
		return ""
	}
	return *c.session.Load()
}

// event builds the wire event for p, scrubbing every string in its metadata.
func (c *Client) event(p *pending) *wire.Event {
	sc := c.scrubber()
	meta := make(map[string]any, len(p.props)+1)
	for k, v := range p.props {
		meta[k] = sc.ScrubValue(v)
	}
	switch p.typ {
	case wire.EventFeatureUsed:
		meta[wire.MetaFeature] = sc.Scrub(p.name)
	case wire.EventMethodCalled:
		meta[wire.MetaMethod] = sc.Scrub(p.name)
	}
	return &wire.Event{
		EventID:        p.id.String(),
		SchemaVersion:  wire.SchemaVersion,
		ServiceName:    c.cfg.ServiceName,
		ServiceVersion: c.cfg.ServiceVersion,
		EventType:      p.typ,
		Timestamp:      wire.Timestamp{Time: p.ts.UTC().Truncate(time.Millisecond)},
		UserID:         c.userID,
		SessionID:      *p.session,
		SDK:            c.sdk,
		Env:            c.env,
		Metadata:       meta,
	}
}

// persist writes events to the local queue (or, in debug mode, to stderr).
// It reports whether the events are durable.
func (c *Client) persist(ps []*pending) bool {
	if len(ps) == 0 || !c.on.Load() {
		return true // nothing to write, or the user opted out meanwhile: discard
	}
	recs := make([]store.Record, 0, len(ps))
	for _, p := range ps {
		data, err := c.encode(p)
		if err != nil {
			c.cfg.Logger.Warn("telemetry: event not encodable; dropped", "event_type", p.typ, "err", err)
			c.lost.Add(1)
			continue
		}
		c.show(data)
		recs = append(recs, store.Record{ID: p.id.String(), Data: data})
	}
	if c.debug || len(recs) == 0 {
		return true
	}
	// No deadline of its own: every wait in Append is bounded by LockTimeout
	// (and a context with a deadline would start a timer in every process).
	if err := c.queue.Append(context.Background(), recs...); err != nil {
		c.cfg.Logger.Warn("telemetry: events not queued", "count", len(recs), "err", err)
		return false
	}
	c.afterPersist()
	return true
}

// encode builds and marshals p's event. A panic in a value's MarshalJSON
// costs that event only.
func (c *Client) encode(p *pending) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while encoding: %v", r)
		}
	}()
	return wire.AppendEvent(make([]byte, 0, 512), c.event(p))
}

// show writes an event to stderr in debug mode and to the echo writer, if any.
func (c *Client) show(data []byte) {
	c.echoMu.Lock()
	w := c.echo
	c.echoMu.Unlock()
	if !c.debug && w == nil {
		return
	}
	id, _ := c.anonymousID()
	data = sender.FillUserID(data, id)
	if c.debug {
		fmt.Fprintf(c.cfg.Host.Stderr, "%s\n", data)
	}
	if w != nil {
		fmt.Fprintf(w, "%s\n", data)
	}
}

// EchoTo makes the client also write every event it records from now on to
// w, as one JSON object per line, exactly as it will be sent. Adapters use it
// for --show-telemetry. A nil w stops echoing.
func (c *Client) EchoTo(w io.Writer) {
	if c == nil {
		return
	}
	c.echoMu.Lock()
	c.echo = w
	c.echoMu.Unlock()
}

// loop is library mode's writer: it collects events from Track and writes
// them to the queue in batches.
func (c *Client) loop() {
	defer close(c.done)
	defer c.recoverPanic("writer")
	var (
		buf   []*pending
		timer *time.Timer
		tick  <-chan time.Time
	)
	flush := func() bool {
		if timer != nil {
			timer.Stop()
			timer, tick = nil, nil
		}
		if c.persist(buf) {
			clear(buf)
			buf = buf[:0]
			return true
		}
		// Keep the events for the next attempt, within the buffer's bound.
		if over := len(buf) - c.cfg.Library.BufferSize; over > 0 {
			c.lost.Add(uint64(over))
			buf = append(buf[:0], buf[over:]...)
		}
		timer = time.NewTimer(c.cfg.Library.PersistInterval)
		tick = timer.C
		return false
	}
	// drain moves what is waiting in the channel to buf, up to max events,
	// so that a backlog is written in a few large transactions.
	drain := func(max int) {
		for len(buf) < max {
			select {
			case p := <-c.ch:
				buf = append(buf, p)
			default:
				return
			}
		}
	}
	maxBatch := 10 * c.cfg.Library.PersistBatch
	for {
		select {
		case p := <-c.ch:
			buf = append(buf, p)
			if len(buf) >= c.cfg.Library.PersistBatch {
				drain(maxBatch)
				flush()
			} else if timer == nil {
				timer = time.NewTimer(c.cfg.Library.PersistInterval)
				tick = timer.C
			}
		case <-tick:
			timer, tick = nil, nil
			flush()
		case reply := <-c.flushReq:
			drain(len(buf) + cap(c.ch))
			if flush() {
				reply <- nil
			} else {
				reply <- errNotQueued
			}
		case <-c.stop:
			drain(len(buf) + cap(c.ch))
			flush()
			return
		}
	}
}

// Flush writes buffered events to the local queue and sends what is queued
// to the server now, within ctx.
func (c *Client) Flush(ctx context.Context) (err error) {
	if !c.Enabled() {
		return nil
	}
	defer c.recoverPanicErr("flush", &err)
	if err := c.persistBuffered(ctx); err != nil {
		return err
	}
	return c.sendNow(ctx)
}

func (c *Client) persistBuffered(ctx context.Context) error {
	if !c.running || c.closed.Load() {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case c.flushReq <- reply:
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes buffered events to the local queue, starts a send when one is
// due, and stops the client's goroutines. It returns when they have stopped
// or ctx is done, whichever is first; the goroutines then stop within
// LockTimeout. Close is safe to call more than once.
func (c *Client) Close(ctx context.Context) (err error) {
	if c == nil {
		return nil
	}
	defer c.recoverPanicErr("close", &err)
	c.closeOnce.Do(func() {
		if c.running {
			close(c.stop)
		}
	})
	if c.running {
		select {
		case <-c.done:
		case <-ctx.Done():
			c.closed.Store(true)
			c.abortSending()
			return ctx.Err()
		}
	}
	c.closed.Store(true)
	return c.atExit(ctx)
}

// Lost returns how many events this client could not queue: Track calls
// dropped because library mode's buffer was full, or events that could not be
// written. Events the queue itself dropped over its limits are counted there
// and reported to the server instead.
func (c *Client) Lost() uint64 {
	if c == nil {
		return 0
	}
	return c.lost.Load()
}

func (c *Client) recoverPanic(where string) {
	if r := recover(); r != nil {
		c.cfg.Logger.Error("telemetry: recovered from panic", "in", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

func (c *Client) recoverPanicErr(where string, err *error) {
	if r := recover(); r != nil {
		c.cfg.Logger.Error("telemetry: recovered from panic", "in", where, "panic", fmt.Sprint(r))
		*err = fmt.Errorf("telemetry: internal error in %s", where)
	}
}

// mainModuleVersion is the host's version from its build information.
func mainModuleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "(devel)" {
		return ""
	}
	return bi.Main.Version
}

var (
	errNoEndpoint = errors.New("telemetry: no endpoint configured")
	errNotQueued  = errors.New("telemetry: events could not be written to the local queue")
)

// anonymousID derives this client's anonymous user ID once.
func (c *Client) anonymousID() (string, error) {
	c.idOnce.Do(func() { c.idValue, c.idErr = privacy.AnonymousID(c.cfg.ServiceName, c.cfg.ConfigDir) })
	return c.idValue, c.idErr
}
