package httpapi

import (
	"container/list"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Connection limits. See [ConnLimitConfig] for what can be set.
const (
	// DefaultConnReserve is the number of file descriptors a derived
	// [ConnLimitConfig.Max] leaves for everything but the listener's
	// connections, when [ConnLimitConfig.Reserve] is zero.
	DefaultConnReserve = 64
	// MinConnections is the least [ConnLimiter.Max]: a limit on open files
	// that leaves less room than that is ignored, with a warning.
	MinConnections = 16
	// RefusingConns is the most connections a [ConnLimiter] holds beyond
	// its Max while it refuses them: each gets its 503 and then up to half
	// a second to read it and hang up, so that the answer is not lost to a
	// reset. Further refused connections are closed at once after the 503.
	RefusingConns = 8

	defaultMaxConns     = 1024            // where the limit on open files is unknown
	defaultPressureIdle = 5 * time.Second // see ConnLimitConfig.PressureIdleTimeout
	silentGrace         = time.Second     // a new connection that sent nothing this long may be closed
	pressureSweep       = 16              // idle connections closed per accepted one under pressure
	refusalWrite        = 50 * time.Millisecond
	refusalLinger       = 500 * time.Millisecond
)

// refusalResponse is the whole answer to a connection the limiter cannot
// take: written straight to the socket, without net/http.
var refusalResponse = func() []byte {
	const body = "too many connections: retry in a second\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// ConnLimitConfig configures a [ConnLimiter]. Its zero value is usable.
type ConnLimitConfig struct {
	// Max is the most connections open at once. Zero means as many as the
	// process's limit on open files (RLIMIT_NOFILE) allows after Reserve
	// and [RefusingConns]; 1024 where that limit is unknown or unlimited.
	// A Max above
	// what the limit allows is lowered to it, and neither goes below
	// [MinConnections]; both cases are logged as warnings.
	Max int
	// Reserve is the number of file descriptors kept for everything but
	// this listener's connections (database pool, other listeners, logs,
	// the runtime's own). Zero means [DefaultConnReserve].
	Reserve int
	// PressureIdleTimeout applies once more than three quarters of Max
	// are open: each accepted connection then closes the connections that
	// have been idle this long (a few at a time), so that room is made
	// before the table is full. Zero means 5 seconds; negative means
	// never: idle connections are then closed only to make room, or by
	// [http.Server.IdleTimeout].
	PressureIdleTimeout time.Duration
	// Name labels the listener in logs and metrics. Empty means "api".
	Name string
	// Logger receives the limit in use at start, the refusals (at most one
	// line per second, with counts) and the requests net/http refused by
	// itself. Nil discards them.
	Logger *slog.Logger
	// Metrics receives the counts; several limiters can share one. Nil
	// means none.
	Metrics *ConnMetrics
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// ConnLimiter bounds the connections of an [http.Server] and keeps it
// reachable for new clients.
//
// At most [ConnLimiter.Max] connections are open at once. When a new one
// arrives at the cap, the limiter makes room by closing the connection
// that has been idle longest: a keep-alive connection between requests,
// or a new one that has sent nothing for a second. Only when every
// connection is busy with a request is the new one refused: it gets a
// 503 with Retry-After: 1 and Connection: close, written without blocking
// the accept loop for more than 50 ms. So idle clients can never lock new
// ones out. See [ConnLimitConfig.PressureIdleTimeout] for idle
// connections closed before the cap is reached.
//
// It also logs, at WARN, each response that net/http writes by itself
// before any handler runs (431, 400, 501, 505, 417), with its status and
// the client's address only.
type ConnLimiter struct {
	max           int
	pressureAt    int // more than this many open: under pressure
	pressureIdle  time.Duration
	grace         time.Duration // see silentGrace
	name          string
	log           *slog.Logger
	m             *connMetrics
	now           func() time.Time
	refusing      chan struct{} // one token per connection lingering after its 503
	refusalLogs   *rate.Limiter // "request refused" lines
	flushInterval time.Duration

	mu    sync.Mutex
	open  int
	peak  int
	idle  list.List // *limitedConn idle between requests, longest idle first
	fresh list.List // *limitedConn that have sent nothing yet, oldest first
	sum   connSummary
	armed bool // a flush of sum is scheduled
	// requests refused by net/http whose line was not written
	unlogged int
}

// connSummary counts what the limiter did since its last log line.
type connSummary struct {
	refused, madeRoom, pressure, fdLimit int
}

// NewConnLimiter validates cfg, fills in the defaults and returns a
// [ConnLimiter]. It logs the limit in use at INFO, and at WARN when the
// limit on open files left too little room.
func NewConnLimiter(cfg ConnLimitConfig) (*ConnLimiter, error) {
	if cfg.Max < 0 {
		return nil, errors.New("server: ConnLimitConfig.Max must not be negative")
	}
	if cfg.Reserve < 0 {
		return nil, errors.New("server: ConnLimitConfig.Reserve must not be negative")
	}
	if cfg.Reserve == 0 {
		cfg.Reserve = DefaultConnReserve
	}
	if cfg.PressureIdleTimeout == 0 {
		cfg.PressureIdleTimeout = defaultPressureIdle
	}
	if cfg.Name == "" {
		cfg.Name = "api"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	nofile, known := fileLimit()
	n, lowered := connCap(cfg.Max, cfg.Reserve, nofile, known)
	attrs := []slog.Attr{slog.String("listener", cfg.Name), slog.Int("max", n)}
	if known {
		attrs = append(attrs, slog.Uint64("nofile", nofile), slog.Int("reserve", cfg.Reserve))
	}
	switch {
	case lowered && n == MinConnections:
		cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn,
			"the limit on open files leaves little room for connections: raise it (ulimit -n, systemd LimitNOFILE=)", attrs...)
	case lowered:
		cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn,
			"connection cap lowered to what the limit on open files allows", append(attrs, slog.Int("asked", cfg.Max))...)
	default:
		cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "connections limited", attrs...)
	}
	l := &ConnLimiter{
		max:           n,
		pressureAt:    n * 3 / 4,
		pressureIdle:  cfg.PressureIdleTimeout,
		grace:         silentGrace,
		name:          cfg.Name,
		log:           cfg.Logger,
		m:             cfg.Metrics.forListener(cfg.Name),
		now:           cfg.Now,
		refusing:      make(chan struct{}, RefusingConns),
		refusalLogs:   rate.NewLimiter(10, 10),
		flushInterval: time.Second,
	}
	l.m.setMax(n)
	return l, nil
}

// connCap returns the connection cap for a configured max (0: derive),
// reserve and limit on open files (when known), and whether the limit
// lowered it.
func connCap(asked, reserve int, nofile uint64, known bool) (n int, lowered bool) {
	if !known {
		if asked == 0 {
			return defaultMaxConns, false
		}
		return asked, false
	}
	room := int64(nofile) - int64(reserve) - RefusingConns
	switch {
	case asked == 0 && room >= MinConnections:
		return int(room), false
	case asked == 0:
		return MinConnections, true
	case int64(asked) <= room:
		return asked, false
	default:
		return max(MinConnections, int(max(room, 0))), true
	}
}

// Max returns the most connections open at once.
func (l *ConnLimiter) Max() int { return l.max }

// Open returns the number of connections open now.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Serve serves hs on ln within the limit. It sets hs.ConnState and
// hs.ConnContext (calling the functions already set there) and wraps
// hs.Handler, so call it instead of hs.Serve, once.
func (l *ConnLimiter) Serve(hs *http.Server, ln net.Listener) error {
	l.install(hs)
	return hs.Serve(&limitListener{Listener: ln, l: l})
}

// install hooks the limiter into hs.
func (l *ConnLimiter) install(hs *http.Server) {
	prevState, prevContext := hs.ConnState, hs.ConnContext
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		l.connState(c, s)
		if prevState != nil {
			prevState(c, s)
		}
	}
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if lc, ok := c.(*limitedConn); ok {
			ctx = context.WithValue(ctx, limitedConnKey{}, lc)
		}
		if prevContext != nil {
			ctx = prevContext(ctx, c)
		}
		return ctx
	}
	next := hs.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Whatever is written on the connection from now until it goes
		// idle is this handler's response, not a refusal by net/http.
		if lc, ok := r.Context().Value(limitedConnKey{}).(*limitedConn); ok {
			lc.handled.Store(true)
		}
		next.ServeHTTP(w, r)
	})
}

type limitedConnKey struct{}

// limitListener admits the connections of its inner listener within l's
// limit.
type limitListener struct {
	net.Listener
	l *ConnLimiter
}

// Accept returns the next connection it admits; the ones it refuses it
// answers and closes itself, and goes on accepting.
func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if isFDExhausted(err) {
				// The cap was set too high for the process: free a
				// descriptor for the next try (net/http retries).
				ln.l.closeForFD()
			}
			return nil, err
		}
		if lc := ln.l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit counts c in, making room if needed, or refuses it and returns nil.
func (l *ConnLimiter) admit(c net.Conn) *limitedConn {
	now := l.now()
	var buf [pressureSweep + 1]*limitedConn
	victims := buf[:0]
	l.mu.Lock()
	if l.open > l.pressureAt && l.pressureIdle > 0 {
		for e := l.idle.Front(); e != nil && len(victims) < pressureSweep; e = l.idle.Front() {
			v := e.Value.(*limitedConn)
			if now.Sub(v.since) < l.pressureIdle {
				break
			}
			l.dropLocked(v)
			victims = append(victims, v)
		}
		l.sum.pressure += len(victims)
	}
	pressured := len(victims)
	if l.open >= l.max {
		v := l.victimLocked(now)
		if v == nil {
			l.sum.refused++
			l.scheduleFlushLocked()
			l.mu.Unlock()
			l.closeAll(victims)
			l.m.closed(reasonPressure, pressured)
			l.m.opened(-pressured)
			l.refuse(c)
			return nil
		}
		l.dropLocked(v)
		victims = append(victims, v)
		l.sum.madeRoom++
	}
	lc := &limitedConn{Conn: c, l: l, since: now}
	lc.elem, lc.list = l.fresh.PushBack(lc), &l.fresh
	lc.silent.Store(true)
	l.open++
	l.peak = max(l.peak, l.open)
	if len(victims) > 0 {
		l.scheduleFlushLocked()
	}
	l.mu.Unlock()
	l.closeAll(victims)
	l.m.closed(reasonPressure, pressured)
	l.m.closed(reasonMakeRoom, len(victims)-pressured)
	l.m.opened(1 - len(victims))
	return lc
}

// victimLocked returns the connection to close to make room: the one idle
// longest, else the oldest new one that has sent nothing for the grace
// period, else nil.
func (l *ConnLimiter) victimLocked(now time.Time) *limitedConn {
	if e := l.idle.Front(); e != nil {
		return e.Value.(*limitedConn)
	}
	if e := l.fresh.Front(); e != nil {
		if v := e.Value.(*limitedConn); now.Sub(v.since) >= l.grace {
			return v
		}
	}
	return nil
}

// closeForFD closes one idle connection after accept ran out of file
// descriptors.
func (l *ConnLimiter) closeForFD() {
	l.mu.Lock()
	v := l.victimLocked(l.now())
	if v != nil {
		l.dropLocked(v)
	}
	l.sum.fdLimit++
	l.scheduleFlushLocked()
	l.mu.Unlock()
	if v != nil {
		v.Conn.Close()
		l.m.closed(reasonFDLimit, 1)
		l.m.opened(-1)
	}
}

// dropLocked counts v out; the caller closes its socket.
func (l *ConnLimiter) dropLocked(v *limitedConn) {
	l.unlistLocked(v)
	v.closed = true
	l.open--
}

func (l *ConnLimiter) unlistLocked(c *limitedConn) {
	if c.elem != nil {
		c.list.Remove(c.elem)
		c.elem, c.list = nil, nil
	}
	c.silent.Store(false)
}

func (l *ConnLimiter) closeAll(cs []*limitedConn) {
	for _, c := range cs {
		c.Conn.Close()
	}
}

// refuse answers c with a 503 and closes it. The write has a short
// deadline; the wait for the client to read the answer and hang up, which
// keeps the kernel from resetting the connection under it, happens on at
// most RefusingConns goroutines, and without one the connection is closed
// at once.
func (l *ConnLimiter) refuse(c net.Conn) {
	l.m.refused()
	c.SetWriteDeadline(time.Now().Add(refusalWrite))
	if _, err := c.Write(refusalResponse); err != nil {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
		go func() {
			defer func() { <-l.refusing }()
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(refusalLinger))
			io.Copy(io.Discard, io.LimitReader(c, 64<<10))
			c.Close()
		}()
	default:
		c.Close()
	}
}

// connState follows a connection through net/http's states.
func (l *ConnLimiter) connState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateIdle:
		c.handled.Store(false)
		l.mu.Lock()
		if !c.closed {
			l.unlistLocked(c)
			c.since = l.now()
			c.elem, c.list = l.idle.PushBack(c), &l.idle
			c.silent.Store(true)
		}
		l.mu.Unlock()
	case http.StateActive, http.StateHijacked, http.StateClosed:
		if c.silent.Load() {
			l.busy(c)
		}
	}
}

// busy takes c out of the idle and new lists: it is reading a request.
func (l *ConnLimiter) busy(c *limitedConn) {
	l.mu.Lock()
	l.unlistLocked(c)
	l.mu.Unlock()
}

// release counts c out once it is closed.
func (l *ConnLimiter) release(c *limitedConn) {
	l.mu.Lock()
	if c.closed {
		l.mu.Unlock()
		return
	}
	l.dropLocked(c)
	l.mu.Unlock()
	l.m.opened(-1)
}

// scheduleFlushLocked makes sure the counts in l.sum are logged within
// a second: at most one line per second, however many events.
func (l *ConnLimiter) scheduleFlushLocked() {
	if !l.armed {
		l.armed = true
		time.AfterFunc(l.flushInterval, l.flush)
	}
}

// flush logs what the limiter did since the last line.
func (l *ConnLimiter) flush() {
	l.mu.Lock()
	s, open := l.sum, l.open
	l.sum, l.armed = connSummary{}, false
	l.mu.Unlock()
	level, msg := slog.LevelInfo, "idle connections closed"
	if s.refused > 0 || s.fdLimit > 0 {
		level, msg = slog.LevelWarn, "connections refused"
	}
	l.log.LogAttrs(context.Background(), level, msg,
		slog.String("listener", l.name), slog.Int("refused", s.refused),
		slog.Int("closed_to_make_room", s.madeRoom), slog.Int("closed_under_pressure", s.pressure),
		slog.Int("out_of_files", s.fdLimit), slog.Int("open", open), slog.Int("max", l.max))
}

// refusedByHTTP logs and counts a response that net/http wrote by itself.
// Lines are limited to 10 a second; the next line says how many were left
// out meanwhile.
func (l *ConnLimiter) refusedByHTTP(c *limitedConn, code int) {
	l.m.httpRefused(code)
	l.mu.Lock()
	if !l.refusalLogs.Allow() {
		l.unlogged++
		l.mu.Unlock()
		return
	}
	unlogged := l.unlogged
	l.unlogged = 0
	l.mu.Unlock()
	attrs := []slog.Attr{slog.String("listener", l.name), slog.Int("status", code),
		slog.String("remote", c.RemoteAddr().String())}
	if unlogged > 0 {
		attrs = append(attrs, slog.Int("unlogged_before", unlogged))
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "request refused", attrs...)
}

// limitedConn is a connection counted by a [ConnLimiter].
type limitedConn struct {
	net.Conn
	l *ConnLimiter

	// Guarded by l.mu.
	elem   *list.Element // in list, nil when in none
	list   *list.List    // &l.idle or &l.fresh
	since  time.Time     // when it entered list
	closed bool          // counted out

	// silent is set, under l.mu, while the connection is in a list; a
	// read that returns bytes takes it out.
	silent atomic.Bool
	// handled is set when a handler starts on the connection's current
	// request and cleared when the connection goes idle.
	handled atomic.Bool
	// refusal is set once a refusal by net/http was seen.
	refusal atomic.Bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.silent.Load() {
		c.l.busy(c)
	}
	return n, err
}

// Write passes p on. Outside a handler, net/http writes only its own
// refusals ("HTTP/1.1 431 …" in one write, or a 417 after an Expect it
// does not support): those are logged.
func (c *limitedConn) Write(p []byte) (int, error) {
	if !c.handled.Load() && !c.refusal.Load() {
		if code := statusLine(p); code >= 400 {
			c.refusal.Store(true)
			c.l.refusedByHTTP(c, code)
		}
	}
	return c.Conn.Write(p)
}

func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// CloseWrite shuts down the writing side, as net/http does before it
// lingers after a refusal.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// statusLine returns the status code of the response p starts with, or 0.
func statusLine(p []byte) int {
	if len(p) < 13 || string(p[:7]) != "HTTP/1." || p[8] != ' ' || p[12] != ' ' {
		return 0
	}
	code := 0
	for _, b := range p[9:12] {
		if b < '0' || b > '9' {
			return 0
		}
		code = code*10 + int(b-'0')
	}
	return code
}
