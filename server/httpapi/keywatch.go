package httpapi

import (
	"context"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// How [Server.WatchKeys] refreshes its keys.
const (
	keyRefresh    = time.Minute            // a listing at least this often, whatever the watch says
	keyListingGap = 100 * time.Millisecond // at most one listing in this time
)

// WatchKeys keeps every valid write key of the store in memory until ctx
// ends, when the store is a [KeyLister]; it returns at once otherwise. It
// lists the keys at once, again after each change the store reports, and
// at least once a minute; when the watch fails it tries again after a
// pause, listing meanwhile as often. Run it in a goroutine beside the
// server.
//
// With it, a valid key needs no lookup: a flood of made-up keys, which
// only lookups cost, cannot keep a valid key out, not even right after a
// start. A key created while the server runs is in memory as soon as the
// store reports it; until then it is looked up, within the lookup budget.
func (s *Server) WatchKeys(ctx context.Context) {
	kl, ok := s.cfg.Store.(server.KeyLister)
	if !ok {
		return
	}
	list := make(chan struct{}, 1)
	signal := func() {
		select {
		case list <- struct{}{}:
		default:
		}
	}
	signal()
	go func() {
		t := time.NewTicker(keyRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-list:
			case <-t.C:
			}
			keys, err := kl.WriteKeys(ctx, maxListedKeys)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("listing the write keys failed", "error", err)
				}
			} else {
				s.metrics.keysInMemory.Set(float64(s.keys.replace(keys)))
				s.readKeys.clear()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(keyListingGap):
			}
		}
	}()
	pause := time.Second
	for {
		start := time.Now()
		err := kl.WatchKeys(ctx, signal, signal)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("watching the keys failed; trying again", "error", err, "in", pause)
		if time.Since(start) > time.Minute {
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		signal()
		pause = min(2*pause, 30*time.Second)
	}
}
