package core

import (
	"context"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// eraseTimeout bounds the erasure request that `telemetry delete` sends
// while the person waits.
const eraseTimeout = 15 * time.Second

// Deletion says what [Client.Delete] did.
type Deletion struct {
	Queued int    // events deleted from the local queue
	UserID string // the anonymous ID whose data was erased
	// Server is what the server erased; nil when it was not reached, or
	// when no endpoint is configured (then nothing ever left the machine).
	Server *wire.ErasureResponse
	// Pending says that the request waits on this machine: the next run
	// of the tool sends it. SendErr says why it could not be sent now.
	Pending bool
	SendErr error
}

// Delete carries out a person's request to erase what this tool recorded
// about them: it turns telemetry off (as [Client.Disable], deleting the
// local queue), then asks the server to erase every event and per-user
// row of this machine's anonymous ID recorded until now, and waits for
// the answer (15 seconds at most). When the server cannot be reached, the
// request is kept beside the queue and the next runs of the tool deliver
// it through the detached sender, with telemetry off, until the server
// confirms it.
func (c *Client) Delete(ctx context.Context) (d Deletion, err error) {
	if c == nil {
		return d, nil
	}
	defer c.recoverPanicErr("delete", &err)
	if q, err := c.reapedQueue(ctx); err == nil {
		d.Queued, _ = q.Len(ctx)
	}
	if err := c.Disable(ctx); err != nil {
		return d, err
	}
	if c.cfg.Endpoint == "" {
		return d, nil
	}
	if d.UserID, err = c.anonymousID(); err != nil {
		return d, nil // without an identity nothing was ever sent
	}
	e := sender.Erasure{RequestedAt: c.cfg.Host.Now()}
	path := c.cfg.Queue.Path
	if err := sender.SaveErasure(path, e); err != nil {
		return d, err
	}
	d.Pending = true
	ctx, cancel := context.WithTimeout(ctx, eraseTimeout)
	defer cancel()
	res, err := c.sendErasure(ctx, e, false)
	if err != nil {
		d.SendErr = err
		return d, nil
	}
	d.Pending, d.Server = false, &res
	return d, nil
}

// sendErasure delivers a pending erasure; on success it clears it. After a
// failure of the detached sender's (backoff), the next attempt waits; after
// the person's own attempt, the next run tries again at once.
func (c *Client) sendErasure(ctx context.Context, e sender.Erasure, backoff bool) (wire.ErasureResponse, error) {
	path := c.cfg.Queue.Path
	s, err := c.newSender(c.cfg, nil)
	var res wire.ErasureResponse
	if err == nil {
		res, err = s.Erase(ctx, e)
	}
	if err != nil {
		if backoff {
			sender.SaveErasure(path, e.Failed(c.cfg.Host.Now()))
		}
		return res, err
	}
	return res, sender.ClearErasure(path)
}

// pendingErasure starts the delivery of a pending erasure, if any is due:
// in a CLI run through the detached sender, in a library in the
// background. It looks only while telemetry is off by the person's own
// choice, the state `telemetry delete` leaves, and costs such a run one
// file read. While telemetry is on, the detached sender delivers the
// erasure on its next run, before any event; while DO_NOT_TRACK or the
// tool's variable turns telemetry off, nothing is sent at all.
func (c *Client) pendingErasure() {
	if c.cfg.Endpoint == "" || c.debug || c.on.Load() || c.decision.Source != privacy.SourceUser {
		return
	}
	e, ok := sender.PendingErasure(c.cfg.Queue.Path)
	if !ok || e.NextAttempt.After(c.cfg.Host.Now()) {
		return
	}
	if c.cfg.Mode == CLIMode {
		if pid, err := sender.StartErasure(c.cfg.Queue.Path, c.cfg.Host.Now()); err != nil {
			c.cfg.Logger.Warn("telemetry: erasure sender not started", "err", err)
		} else if pid != 0 {
			c.cfg.Logger.Debug("telemetry: erasure sender started", "pid", pid)
		}
		return
	}
	go func() {
		defer c.recoverPanic("erasure")
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Send.Timeout)
		defer cancel()
		c.sendErasure(ctx, e, true)
	}()
}
