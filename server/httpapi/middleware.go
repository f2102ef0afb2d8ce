package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Chain wraps h in middleware; the first one listed is the outermost.
func Chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// statusRecorder remembers the status code and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func recorder(w http.ResponseWriter) *statusRecorder {
	if rec, ok := w.(*statusRecorder); ok {
		return rec
	}
	return &statusRecorder{ResponseWriter: w}
}

// recoverPanics turns a panic in a handler into a 500 and a log line.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorder(w)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.LogAttrs(r.Context(), slog.LevelError, "panic",
					slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				if rec.code == 0 {
					writeJSON(rec, http.StatusInternalServerError, map[string]string{"error": "internal error"})
				}
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestInfo is what the handlers tell the request log of a request.
type requestInfo struct {
	project int64  // the key's project, once authenticated; 0 before
	reason  string // why the request was refused, as told the client
	failed  bool   // the server failed (a 5xx with a cause), not the client
}

type requestInfoKey struct{}

// info returns the requestInfo of r, or a throwaway one when r did not
// come through logRequests.
func info(r *http.Request) *requestInfo {
	if ri, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// logRequests writes one structured log line per request: at INFO when it
// succeeded, at WARN when it was refused (4xx) and at ERROR when it failed
// (5xx), with the reason of a refusal and the project once known. Keys and
// bodies are never logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorder(w)
		ri := &requestInfo{}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, ri)))
		// A 503 that sheds load (busy, rate limits) is a refusal; a
		// failure with a cause, or a 5xx no handler explained, an error.
		level := slog.LevelInfo
		switch {
		case ri.failed || rec.code >= 500 && ri.reason == "":
			level = slog.LevelError
		case rec.code >= 400:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.code), slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr)}
		if ri.project != 0 {
			attrs = append(attrs, slog.Int64("project", ri.project))
		}
		if ri.reason != "" {
			attrs = append(attrs, slog.String("reason", ri.reason))
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// timeout bounds the work for one request.
func (s *Server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == exportPath {
			// An export streams for as long as it has events; each of
			// its statements has the query timeout, each page a write
			// deadline.
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// observe records the latency of a route.
func (s *Server) observe(route string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := recorder(w)
			next.ServeHTTP(rec, r)
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.latency.WithLabelValues(route, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		})
	}
}

// clientAddr sets r.RemoteAddr, for a request from a trusted proxy, to
// the client its X-Forwarded-For names (see Config.TrustedProxies).
func (s *Server) clientAddr(next http.Handler) http.Handler {
	if len(s.cfg.TrustedProxies) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := forwardedFor(r, s.cfg.TrustedProxies); ok {
			r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedFor returns the client of a request that came through trusted
// proxies: walking X-Forwarded-For from the right (the hop nearest to
// us), the first address that is not a trusted proxy. ok is false when
// the request's peer is not trusted, or the header names no such address.
func forwardedFor(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !isTrusted(peer.Addr()) {
		return netip.Addr{}, false
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false // a malformed hop: trust nothing before it
		}
		if !isTrusted(a) {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
