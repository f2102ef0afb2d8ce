package server

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per key id.
type limiters struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	m     map[int64]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond < 0 {
		return nil
	}
	return &limiters{limit: rate.Limit(perSecond), burst: burst, m: make(map[int64]*rate.Limiter)}
}

// allow takes a token for key id at now; when none is left it returns how
// long to wait. A nil *limiters allows everything.
func (l *limiters) allow(id int64, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.m[id]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[id] = lim
	}
	l.mu.Unlock()
	return take(lim, now)
}

// newLimiter returns a token bucket of perSecond tokens a second and twice
// as many at once (at least 1), or nil for a negative rate.
func newLimiter(perSecond float64) *rate.Limiter {
	if perSecond < 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(2*perSecond)))
}

// take takes a token from lim at now; when none is left it returns how
// long to wait. A nil lim allows everything.
func take(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
	if lim == nil {
		return true, 0
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	if !r.OK() || d <= 0 {
		d = time.Second
	}
	return false, d
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
