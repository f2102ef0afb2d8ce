package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// sending is the client's side of delivery to the server.
type sending struct {
	policy sender.Policy

	// The HTTP sender, built on first use: a CLI-mode run only checks
	// whether a send is due and leaves sending to a detached process, and
	// building the HTTP client touches much code a fresh process would
	// otherwise not load.
	build     func() (*sender.Sender, error)
	buildOnce sync.Once
	sender    *sender.Sender
	buildErr  error

	// Library mode's background sender.
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	stopOnce sync.Once
	stopping chan struct{} // closed when Close begins: no new request starts
}

// get returns the HTTP sender, building it on first use.
func (s *sending) get() (*sender.Sender, error) {
	s.buildOnce.Do(func() { s.sender, s.buildErr = s.build() })
	return s.sender, s.buildErr
}

// newSender builds the HTTP sender for c's configuration cfg. It derives
// the anonymous ID that it fills into events queued without one.
func (c *Client) newSender(cfg Config, cont func() bool) (*sender.Sender, error) {
	id, err := c.anonymousID()
	if err != nil {
		return nil, fmt.Errorf("no anonymous id: %w", err)
	}
	return sender.New(sender.Config{
		Endpoint:  cfg.Endpoint,
		APIKey:    cfg.APIKey,
		UserAgent: SDKName + "/" + SDKVersion,
		UserID:    id,
		BatchSize: cfg.Send.BatchSize,
		Logger:    cfg.Logger,
		Now:       cfg.Host.Now,
		Continue:  cont,
	})
}

func policyFor(cfg Config) sender.Policy {
	return sender.Policy{
		MinEvents:  cfg.Send.MinEvents,
		MaxAge:     cfg.Send.MaxAge,
		StartGrace: cfg.Send.Timeout,
		APIKey:     cfg.APIKey,
	}
}

// startSending prepares delivery at the end of New and, in library mode,
// starts the background sender. Nothing happens without an endpoint, with
// telemetry off, or in debug mode.
func (c *Client) startSending() {
	if c.cfg.Endpoint == "" || !c.on.Load() || c.debug || c.noticePending() {
		return
	}
	if err := sender.CheckEndpoint(c.cfg.Endpoint); err != nil {
		c.cfg.Logger.Warn("telemetry: events will not be sent", "err", err)
		return
	}
	s := &sending{policy: policyFor(c.cfg), stopping: make(chan struct{})}
	s.build = func() (*sender.Sender, error) {
		return c.newSender(c.cfg, func() bool {
			select {
			case <-s.stopping:
				return false
			default:
				return c.on.Load()
			}
		})
	}
	c.snd = s
	if c.cfg.Mode != LibraryMode {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.wake = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	s.cancel = cancel
	go c.sendLoop(ctx)
}

// checkEvery is how often library mode's sender looks whether a send became
// due by age or after a backoff.
func (c *Client) checkEvery() time.Duration {
	return min(max(c.cfg.Send.MaxAge/4, 50*time.Millisecond), time.Minute)
}

// sendLoop is library mode's background sender: woken after events were
// persisted and on a ticker, it sends when the policy says a send is due.
func (c *Client) sendLoop(ctx context.Context) {
	s := c.snd
	defer close(s.done)
	defer s.cancel()
	defer c.recoverPanic("sender")
	t := time.NewTicker(c.checkEvery())
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-t.C:
		}
		c.sendIfDue(ctx)
	}
}

// afterPersist runs after events reached the queue: it wakes library mode's
// sender, which decides whether a send is due.
func (c *Client) afterPersist() {
	if c.snd == nil || c.snd.wake == nil {
		return
	}
	select {
	case c.snd.wake <- struct{}{}:
	default:
	}
}

// sendIfDue runs one send in this process when one is due and no other
// sender holds the queue, bounded by Send.Timeout.
func (c *Client) sendIfDue(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Send.Timeout)
	defer cancel()
	d, err := c.snd.policy.Check(ctx, c.queue, c.cfg.Host.Now(), true)
	if err != nil || !d.Due {
		return
	}
	lock, err := sender.TryLock(c.queue.Path())
	if err != nil {
		return
	}
	defer lock.Unlock()
	c.reapRuns(ctx, c.queue)
	snd, err := c.snd.get()
	if err != nil {
		return
	}
	res, err := snd.Run(ctx, c.queue)
	c.cfg.Logger.Debug("telemetry: send", "outcome", res.Outcome, "requests", res.Requests,
		"accepted", res.Accepted, "duplicates", res.Duplicates, "err", err)
}

// atExit runs at Close once buffered events are queued. Library mode's
// sender is stopped. In CLI mode, when a send is due: with Send.SyncAtExit
// it sends here within ctx and Send.Timeout; otherwise it starts a detached
// sender process and returns without waiting for it.
func (c *Client) atExit(ctx context.Context) error {
	if err := c.stopSending(ctx); err != nil {
		return err
	}
	if c.snd == nil || !c.on.Load() || c.debug || c.cfg.Mode != CLIMode {
		return nil
	}
	if c.cfg.Send.SyncAtExit {
		c.sendIfDue(ctx)
		return nil
	}
	c.startDetached()
	return nil
}

// stopSending stops library mode's sender. A request in flight may finish
// until ctx's deadline and is then cancelled (at once when ctx has no
// deadline); its events stay queued.
func (c *Client) stopSending(ctx context.Context) error {
	s := c.snd
	if s == nil || s.stop == nil {
		return nil
	}
	s.stopOnce.Do(func() {
		close(s.stopping)
		close(s.stop)
	})
	if _, ok := ctx.Deadline(); !ok {
		s.cancel()
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}

// abortSending stops library mode's sender without waiting, when Close's
// context ended before the client's writer stopped.
func (c *Client) abortSending() {
	s := c.snd
	if s == nil || s.stop == nil {
		return
	}
	s.stopOnce.Do(func() {
		close(s.stopping)
		close(s.stop)
	})
	s.cancel()
}

// startDetached starts the detached sender process when a send is due and
// no sender runs (see [sender.StartDetached]).
func (c *Client) startDetached() {
	// No deadline of its own: the check's waits are bounded by LockTimeout,
	// and a timer would set up the runtime's poller in every run.
	pid, reason, err := sender.StartDetached(context.Background(), c.queue, c.snd.policy, c.cfg.Host.Now)
	switch {
	case err != nil:
		c.cfg.Logger.Warn("telemetry: sender not started", "err", err)
	case pid != 0:
		c.cfg.Logger.Debug("telemetry: sender started", "pid", pid, "reason", reason)
	}
}

// sendNow sends what is queued, within ctx (and Send.Timeout when ctx has
// no deadline), ignoring the schedule but not a refused key. It waits for a
// sender that is already running to finish first.
func (c *Client) sendNow(ctx context.Context) error {
	if c.cfg.Endpoint == "" {
		return errNoEndpoint
	}
	if c.noticePending() {
		return errNoticePending
	}
	if c.debug {
		return nil
	}
	if c.snd == nil {
		return errors.New("telemetry: sending is not available")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Send.Timeout)
		defer cancel()
	}
	lock, err := sender.WaitLock(ctx, c.queue.Path())
	if err != nil {
		return fmt.Errorf("telemetry: send: %w", err)
	}
	defer lock.Unlock()
	c.reapRuns(ctx, c.queue)
	snd, err := c.snd.get()
	if err != nil {
		return fmt.Errorf("telemetry: send: %w", err)
	}
	if _, err := snd.Run(ctx, c.queue); err != nil {
		return fmt.Errorf("telemetry: send: %w", err)
	}
	return nil
}

// senderProcess is New in a process started as a detached sender. When the
// marker names this client's queue, it sends the due events, bounded by
// Send.Timeout (a timer ends the process at that limit whatever happens),
// and exits the process. A client for another queue is returned switched
// off: it records nothing and never starts a sender.
func senderProcess(cfg Config, marker string) (*Client, error) {
	c := &Client{
		cfg:      cfg,
		sdk:      wire.SDK{Name: SDKName, Version: SDKVersion},
		env:      wire.Env{OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()},
		decision: privacy.Decision{Detail: "this process is a telemetry sender"},
		// It builds the events of the runs it reaps (run.go).
		scrubber: sync.OnceValue(privacy.LocalScrubber),
	}
	q, err := c.localQueue()
	if err != nil {
		return nil, err
	}
	c.newSession(cfg.Host.Now())
	if filepath.Clean(marker) != q.Path() {
		return c, nil
	}
	hard := time.AfterFunc(cfg.Send.Timeout, func() { os.Exit(0) })
	defer hard.Stop()
	c.runSenderProcess()
	os.Exit(0)
	return nil, nil
}

// runSenderProcess is the detached sender's work: it sends only while the
// user's consent still holds, never prints or prompts, and never starts
// another sender.
func (c *Client) runSenderProcess() {
	defer c.recoverPanic("sender process")
	cfg := c.cfg
	if cfg.Endpoint == "" || privacy.DebugEnabled(cfg.ServiceName, cfg.Host.Getenv) {
		return
	}
	// Leave time inside the hard limit to record the outcome.
	budget := cfg.Send.Timeout - min(cfg.Send.Timeout/10, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	// A starting host holds the lock for a moment; a sender holds it longer.
	lctx, lcancel := context.WithTimeout(ctx, time.Second)
	lock, err := sender.WaitLock(lctx, c.queue.Path())
	lcancel()
	if err != nil {
		return // another sender runs
	}
	defer lock.Unlock()
	lock.MarkStarted(time.Time{}) // started: the lock guards from here on
	// A person's erasure request goes whatever the consent: they asked
	// for it, usually with telemetry turned off.
	if e, ok := sender.PendingErasure(c.queue.Path()); ok {
		if _, err := c.sendErasure(ctx, e, true); err != nil {
			cfg.Logger.Debug("telemetry: erasure not delivered", "err", err)
		}
	}
	if d := privacy.Resolve(c.consentOptions()); !d.Enabled || d.NeedsNotice {
		return // off, or nobody has seen the notice yet
	}
	c.reapRuns(ctx, c.queue)
	d, err := policyFor(cfg).Check(ctx, c.queue, cfg.Host.Now(), true)
	if err != nil || !d.Due {
		return
	}
	s, err := c.newSender(cfg, nil)
	if err != nil {
		return
	}
	res, err := s.Run(ctx, c.queue)
	cfg.Logger.Debug("telemetry: send", "outcome", res.Outcome, "requests", res.Requests,
		"accepted", res.Accepted, "duplicates", res.Duplicates, "err", err)
}

// errNoticePending is why a CLI run does not send: the opt-out notice has
// not been shown where a person could see it.
var errNoticePending = errors.New("telemetry: nothing is sent before the notice has been shown on a terminal; run the tool once in a terminal")

// noticePending reports whether this CLI run holds its events back because
// nobody has had the chance to see the opt-out notice (stderr was never a
// terminal). Library mode has no notice: its author informs users.
func (c *Client) noticePending() bool {
	return c.cfg.Mode == CLIMode && c.decision.NeedsNotice
}

// reapedQueue returns the local queue with the runs of its runs log queued:
// the runs recorded while telemetry was on are queued events too.
func (c *Client) reapedQueue(ctx context.Context) (*store.Queue, error) {
	q, err := c.localQueue()
	if err == nil {
		c.reapRuns(ctx, q)
	}
	return q, err
}

// reapRuns queues, from q's runs log, the events of the finished runs and
// of the commands whose process ended without finishing them (see
// [Client.BeginCommand] and run.go).
func (c *Client) reapRuns(ctx context.Context, q *store.Queue) {
	if n, err := q.ReapRuns(ctx, store.ProcessAlive); err != nil {
		c.cfg.Logger.Warn("telemetry: runs that ended early not queued", "err", err)
	} else if n > 0 {
		c.cfg.Logger.Debug("telemetry: queued runs that ended early", "runs", n)
	}
}
