package httpapi

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per id: a key id, or a client address.
// It holds at most max buckets (0: no bound); when full it starts over,
// which gives every id a full bucket again, so the bound must be far above
// the number of ids that matter at once.
type limiters[K comparable] struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	max   int
	m     map[K]*rate.Limiter
}

func newLimiters[K comparable](perSecond float64, burst, max int) *limiters[K] {
	if perSecond < 0 {
		return nil
	}
	return &limiters[K]{limit: rate.Limit(perSecond), burst: burst, max: max, m: make(map[K]*rate.Limiter)}
}

// allow takes a token for id at now; when none is left it returns how
// long to wait. A nil *limiters allows everything.
func (l *limiters[K]) allow(id K, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	return take(l.of(id), now)
}

// of returns id's token bucket, made on first use.
func (l *limiters[K]) of(id K) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[id]
	if !ok {
		if l.max > 0 && len(l.m) >= l.max {
			clear(l.m)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[id] = lim
	}
	return lim
}

// take is allow that also tells how many requests are left in the
// burst. A nil *limiters allows everything.
func (l *limiters[K]) take(id K, now time.Time) (ok bool, wait time.Duration, remaining int) {
	if l == nil {
		return true, 0, 0
	}
	lim := l.of(id)
	ok, wait = take(lim, now)
	remaining = max(0, int(lim.TokensAt(now)))
	if ok && remaining < l.burst {
		// Until the bucket is full again.
		wait = time.Duration(float64(l.burst-remaining) / float64(l.limit) * float64(time.Second))
	}
	return ok, wait, remaining
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

// maxLookupClients bounds the client addresses whose lookup budgets are
// kept.
const maxLookupClients = 10_000

// lookupBudget is what lookups of keys not in memory may cost: each client
// address its own share, and all clients together the server-wide rate, so
// that one client cannot take the whole budget from others.
type lookupBudget struct {
	clients *limiters[netip.Prefix]
	all     *rate.Limiter
}

// newLookupBudget allows perSecond lookups a second in all (burst twice
// that), and a tenth of it (at least 1) per client; negative: no limit.
func newLookupBudget(perSecond float64) lookupBudget {
	if perSecond < 0 {
		return lookupBudget{}
	}
	per := max(1, perSecond/10)
	return lookupBudget{
		clients: newLimiters[netip.Prefix](per, max(1, int(2*per)), maxLookupClients),
		all:     newLimiter(perSecond),
	}
}

// allow takes a lookup for the client of r: first from its own budget, so
// that a client past it takes nothing from the others, then from the
// server-wide one.
func (b lookupBudget) allow(r *http.Request, now time.Time) (bool, time.Duration) {
	if ok, wait := b.clients.allow(clientPrefix(r), now); !ok {
		return false, wait
	}
	return take(b.all, now)
}

// clientPrefix is the client a request's lookups are counted against: its
// IPv4 address, or the /64 of its IPv6 address (one host usually holds a
// whole /64).
func clientPrefix(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}
