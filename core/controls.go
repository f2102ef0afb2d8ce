package core

import (
	"context"
	"fmt"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// Status is what `telemetry status` tells a user.
type Status struct {
	Enabled   bool           // whether this process records events
	Source    privacy.Source // which rule decided
	Reason    string         // the decision in words, e.g. "DO_NOT_TRACK is set"
	UserID    string         // the anonymous ID events carry
	Endpoint  string         // where events are sent; empty when they are not
	QueuePath string         // the local queue file
	Queued    int            // events waiting in the local queue
	Dropped   uint64         // events the queue dropped over its limits, not yet reported
	Debug     bool           // <SERVICE>_TELEMETRY_DEBUG is set: events are printed, not stored
	Collects  string         // what is collected, in one sentence, as the notice says it
	// NoticePending says that the opt-out notice has not yet been shown
	// where a person could see it: events are recorded but not sent.
	NoticePending bool

	// ErasurePending is when the person asked, with `telemetry delete`,
	// for an erasure the server has not yet confirmed; zero when none
	// waits.
	ErasurePending time.Time

	// The sender's schedule, kept in the queue file across runs.
	LastSendResult      string    // how the latest send that changed the schedule ended: "ok", "network", "http_503", …
	NextSendAttempt     time.Time // after a failure, no send starts before this; zero when none is deferred
	SendingBlockedUntil time.Time // after the server refused the write key (401/403); zero when not blocked
}

// Status reports the client's consent decision and the state of its queue.
func (c *Client) Status(ctx context.Context) (st Status, err error) {
	if c == nil {
		return Status{}, nil
	}
	defer c.recoverPanicErr("status", &err)
	st = Status{
		Enabled:       c.on.Load(),
		Source:        c.decision.Source,
		Reason:        c.decision.Detail,
		Endpoint:      c.cfg.Endpoint,
		QueuePath:     c.cfg.Queue.Path,
		Debug:         c.debug,
		Collects:      c.consentOptions().CollectsText(),
		NoticePending: c.noticePending(),
	}
	// Also when telemetry is off, so that users can see what would be
	// sent. Deriving it sends nothing.
	st.UserID, _ = c.anonymousID()
	if e, ok := sender.PendingErasure(c.cfg.Queue.Path); ok {
		st.ErasurePending = e.RequestedAt
	}
	q, err := c.reapedQueue(ctx)
	if err != nil {
		return st, err
	}
	if st.Queued, err = q.Len(ctx); err != nil {
		return st, fmt.Errorf("telemetry: reading the queue: %w", err)
	}
	if st.Dropped, err = q.Dropped(ctx); err != nil {
		return st, fmt.Errorf("telemetry: reading the queue: %w", err)
	}
	sched, err := sender.LoadState(ctx, q)
	if err != nil {
		return st, fmt.Errorf("telemetry: reading the send schedule: %w", err)
	}
	now := c.cfg.Host.Now()
	st.LastSendResult = sched.LastResult
	if sched.NextAttempt.After(now) {
		st.NextSendAttempt = sched.NextAttempt
	}
	if sched.AuthBlocked(c.cfg.APIKey, now) {
		st.SendingBlockedUntil = sched.AuthBlockedUntil
	}
	return st, nil
}

// Queued calls fn with every queued event, oldest first, as the JSON that
// will be sent.
func (c *Client) Queued(ctx context.Context, fn func(event []byte) error) (err error) {
	if c == nil {
		return nil
	}
	defer c.recoverPanicErr("queued", &err)
	q, err := c.reapedQueue(ctx)
	if err != nil {
		return err
	}
	id, _ := c.anonymousID()
	return q.All(ctx, func(r store.Record) error { return fn(sender.FillUserID(r.Data, id)) })
}

// Enable stores the user's decision to take part, for the author's current
// policy version. It takes effect from the next process on.
func (c *Client) Enable() (err error) {
	if c == nil {
		return nil
	}
	defer c.recoverPanicErr("enable", &err)
	return privacy.Enable(c.consentOptions())
}

// Disable stores the user's decision not to take part and deletes every
// event queued locally. This client records nothing more.
func (c *Client) Disable(ctx context.Context) (err error) {
	if c == nil {
		return nil
	}
	defer c.recoverPanicErr("disable", &err)
	if err := privacy.Disable(c.consentOptions()); err != nil {
		return err
	}
	c.on.Store(false)
	q, err := c.localQueue()
	if err != nil {
		return err
	}
	return q.Purge(ctx)
}
