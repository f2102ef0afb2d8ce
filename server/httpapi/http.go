package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// Config configures a [Server]. Its zero value, with a Store, is usable.
type Config struct {
	// Store keeps the events. Required.
	Store server.Store
	// Logger receives structured logs. Nil discards them.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics.
	// Nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// SeparateMetrics leaves /metrics out of [Server.Handler], for a server
	// that serves [Server.MetricsHandler] on a listener of its own (one the
	// public cannot reach). False means Handler serves /metrics too.
	SeparateMetrics bool
	// Retention is how long events are kept; older events are rejected.
	// Zero means [DefaultRetention].
	Retention time.Duration
	// RateLimit is the sustained number of ingest requests per second
	// allowed for one key. Zero means 200; negative means no limit.
	RateLimit float64
	// RateBurst is the number of requests one key may send at once.
	// Zero means twice RateLimit (at least 1).
	RateBurst int
	// KeyLookupRate is the number of database lookups per second, for
	// all clients together, of keys the server does not have in memory,
	// with a burst of twice as many; each client address may use a tenth
	// of it (at least 1 a second). A request beyond either gets 429. It
	// keeps a flood of made-up keys off the database, and one client from
	// taking the whole budget. Valid write keys are in memory when
	// [Server.WatchKeys] runs, and need no lookup. Zero means 100;
	// negative means no limit.
	KeyLookupRate float64
	// DecodeMemory is the most bytes that request bodies (decompressed, and
	// while their events are stored, with the copies made of them) may
	// hold at once; a request that would need more is refused with 503
	// and Retry-After: 1 at once. Zero means [DefaultDecodeMemory];
	// negative means no limit.
	DecodeMemory int64
	// RetryAfter is the wait suggested with 503 when the database fails.
	// Zero means 5 seconds.
	RetryAfter time.Duration
	// RequestTimeout bounds the work for one request, database included.
	// Zero means 30 seconds.
	RequestTimeout time.Duration
	// Querier answers the query API (/api/v2/query, export, retention,
	// versions, quality) for read keys. Nil means the Store when it is
	// one, else the API is not served.
	Querier server.Querier
	// QueryRateLimit is the sustained number of query API requests per
	// second allowed for one read key, with a burst of QueryRateBurst.
	// Zero means 5; negative means no limit.
	QueryRateLimit float64
	// QueryRateBurst is the number of query API requests one read key may
	// send at once. Zero means 20.
	QueryRateBurst int
	// MaxQueries is the number of query API requests (exports included)
	// the server answers at once; more wait up to a second, then get 503
	// with Retry-After. It keeps readers from taking the database
	// connections that ingest needs. Zero means 4.
	MaxQueries int
	// MaxExports is the number of exports that may stream at once, within
	// MaxQueries; more get 503 at once. Zero means 2.
	MaxExports int
	// CORSOrigins are the origins whose pages may call the query API from
	// a browser ("*" for any). Empty means none: no CORS headers are sent.
	CORSOrigins []string
	// TrustedProxies are the addresses of the reverse proxies in front of
	// the server (Caddy, nginx, a load balancer). A request from one of
	// them is taken to come from the address its X-Forwarded-For names:
	// the right-most one that is not itself a trusted proxy. That address
	// is what the per-client limits (new keys looked up, dashboard
	// sign-ins) and the request log see. Empty: X-Forwarded-For is
	// ignored, as anyone can send it.
	TrustedProxies []netip.Prefix
	// Dashboard, unless nil, serves every path the API does not (the
	// authors' dashboard, package dashboard).
	Dashboard http.Handler
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Server is the HTTP edge of the collection server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	limits  *limiters[int64] // per key
	lookups lookupBudget     // lookups of keys not in memory
	keys    keyCache

	mem *memBudget // request bodies

	querier    server.Querier
	rights     server.Rights     // nil when the store has none
	keyManager server.KeyManager // nil when the store has none
	readLimits *limiters[int64]  // per read key
	readKeys   readKeyCache
	// Slots of the query API: one per request being answered, one per
	// export streaming.
	querySlots, exportSlots chan struct{}

	// Gzip readers, reused across requests.
	gzipReaders sync.Pool
}

// New validates cfg, fills in the defaults and returns a [Server].
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Retention <= 0 {
		cfg.Retention = server.DefaultRetention
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 200
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(1, int(2*cfg.RateLimit))
	}
	if cfg.KeyLookupRate == 0 {
		cfg.KeyLookupRate = 100
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DecodeMemory == 0 {
		cfg.DecodeMemory = DefaultDecodeMemory
	}
	if cfg.QueryRateLimit == 0 {
		cfg.QueryRateLimit = 5
	}
	if cfg.QueryRateBurst <= 0 {
		cfg.QueryRateBurst = 20
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	s.querier = cfg.Querier
	s.rights, _ = cfg.Store.(server.Rights)
	s.keyManager, _ = cfg.Store.(server.KeyManager)
	if q, ok := cfg.Store.(server.Querier); ok && s.querier == nil {
		s.querier = q
	}
	s.readLimits = newLimiters[int64](cfg.QueryRateLimit, cfg.QueryRateBurst, 100_000)
	if cfg.MaxQueries <= 0 {
		cfg.MaxQueries = 4
	}
	if cfg.MaxExports <= 0 {
		cfg.MaxExports = 2
	}
	s.cfg.MaxQueries, s.cfg.MaxExports = cfg.MaxQueries, cfg.MaxExports
	s.querySlots = make(chan struct{}, cfg.MaxQueries)
	s.exportSlots = make(chan struct{}, cfg.MaxExports)
	s.metrics = newMetrics(cfg.Registry)
	s.limits = newLimiters[int64](cfg.RateLimit, cfg.RateBurst, 0)
	s.lookups = newLookupBudget(cfg.KeyLookupRate)
	s.mem = newMemBudget(cfg.DecodeMemory)
	return s, nil
}

// Handler returns the server's routes wrapped in its middleware: panic
// recovery, request timeout, request log and latency metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.Handler) {
		mux.Handle(pattern, s.observe(name)(h))
	}
	route("POST /v1/events", "/v1/events", s.handleIngest())
	route("GET /healthz", "/healthz", handleHealthz())
	route("GET /readyz", "/readyz", s.handleReadyz())
	if s.querier != nil {
		route("POST /api/v2/query", "/api/v2/query", s.handleQuery())
		route("GET /api/v2/export", "/api/v2/export", s.handleExport())
		route("POST /api/v2/retention", "/api/v2/retention", s.handleRetention())
		route("POST /api/v2/versions", "/api/v2/versions", s.handleVersions())
		route("POST /api/v2/quality", "/api/v2/quality", s.handleQuality())
	}
	if s.rights != nil {
		route("POST /v1/erasures", "/v1/erasures", s.handleErasure())
		route("DELETE /v1/users/{id}", "/v1/users/{id}", s.handleEraseUser())
		route("GET /api/v2/audit", "/api/v2/audit", s.handleAudit())
	}
	if s.keyManager != nil {
		route("GET /api/v2/keys", "/api/v2/keys", s.handleKeys())
		route("POST /api/v2/keys", "/api/v2/keys", s.handleCreateKey())
		route("DELETE /api/v2/keys/{id}", "/api/v2/keys/{id}", s.handleRevokeKey())
	}
	route("GET /api/v2/openapi.yaml", "/api/v2/openapi.yaml", handleOpenAPI())
	if !s.cfg.SeparateMetrics {
		route("GET /metrics", "/metrics", s.metricsRoute())
	}
	if s.cfg.Dashboard != nil {
		route("/", "dashboard", s.cfg.Dashboard)
	}
	return Chain(mux, s.clientAddr, s.recoverPanics, s.logRequests, s.cors, s.timeout)
}

// MetricsHandler serves /metrics alone, for a listener of its own (see
// Config.SeparateMetrics).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.observe("/metrics")(s.metricsRoute()))
	return Chain(mux, s.recoverPanics, s.timeout)
}

func (s *Server) metricsRoute() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Store.Ping(ctx); err != nil {
			s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "database unavailable",
				RetryAfter: s.cfg.RetryAfter, Err: err})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// writeError writes err as {"error": "..."} with the status of its kind,
// and logs it when it is the server's fault.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *server.Error
	if !errors.As(err, &e) {
		e = &server.Error{Kind: server.KindInternal, Message: "internal error", Err: err}
	}
	code := e.Kind.Status()
	ri := info(r)
	ri.reason = e.Message
	if code >= 500 && (e.Err != nil || e.Kind == server.KindInternal) {
		ri.failed = true
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", code), slog.String("error", e.Error())}
		if ri.project != 0 {
			attrs = append(attrs, slog.Int64("project", ri.project))
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", attrs...)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.RetryAfter)))
	}
	if code == http.StatusUnauthorized {
		// RFC 6750: the scheme to use, and whether the key sent was bad.
		challenge := `Bearer realm="telemetry-kit"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeJSON(w, code, wire.ErrorResponse{Error: e.Message})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", wire.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
