package httpapi

import (
	"bufio"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// The query API: POST /api/v2/query answers a [server.Query], GET
// /api/v2/export streams raw events. Both take a read key; docs/api.md
// documents them and api/openapi.yaml describes them.

// authenticateRead finds the read key of a request: in the read key
// cache, else by a lookup within the lookup budget. A write key is refused
// with 403.
func (s *Server) authenticateRead(r *http.Request) (server.Key, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return server.Key{}, server.Errorf(server.KindUnauthorized, "missing read key: send Authorization: Bearer <read key>")
	}
	token = strings.TrimSpace(token)
	if !server.WellFormedKey(token) {
		return server.Key{}, server.Errorf(server.KindUnauthorized, "unknown key")
	}
	if strings.HasPrefix(token, server.WriteKeyPrefix) {
		return server.Key{}, server.Errorf(server.KindForbidden, "a write key cannot read: use the project's read key (tk_r_…)")
	}
	hash := server.HashKey(token)
	now := s.cfg.Now()
	if key, ok := s.readKeys.get(hash, now); ok {
		info(r).project = key.ProjectID
		return key, nil
	}
	if ok, wait := s.lookups.allow(r, now); !ok {
		return server.Key{}, &server.Error{Kind: server.KindRateLimited, Message: "too many requests with keys not seen yet", RetryAfter: wait}
	}
	key, err := s.cfg.Store.KeyByHash(r.Context(), hash)
	if errors.Is(err, server.ErrKeyNotFound) || (err == nil && subtle.ConstantTimeCompare(key.Hash[:], hash[:]) != 1) {
		return server.Key{}, server.Errorf(server.KindUnauthorized, "unknown key")
	}
	if err != nil {
		return server.Key{}, &server.Error{Kind: server.KindUnavailable, Message: "cannot check the key now, retry later",
			RetryAfter: s.cfg.RetryAfter, Err: err}
	}
	if key.RevokedAt != nil {
		return server.Key{}, server.Errorf(server.KindForbidden, "the key is revoked")
	}
	if !key.Kind.CanRead() {
		return server.Key{}, server.Errorf(server.KindForbidden, "a write key cannot read: use the project's read key (tk_r_…)")
	}
	s.readKeys.put(hash, key, now)
	info(r).project = key.ProjectID
	return key, nil
}

// readAccess authenticates a query API request and takes its token from
// the key's rate limit, setting the RateLimit-* headers (the IETF
// draft's Limit, Remaining and Reset). It writes the refusal and returns
// false when the request may not go on.
func (s *Server) readAccess(w http.ResponseWriter, r *http.Request) (server.Key, bool) {
	key, err := s.authenticateRead(r)
	if err != nil {
		s.writeError(w, r, err)
		return server.Key{}, false
	}
	ok, wait, remaining := s.readLimits.take(key.ID, s.cfg.Now())
	if s.readLimits != nil {
		h := w.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(s.readLimits.burst))
		h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(retryAfterSeconds(wait)))
	}
	if !ok {
		s.writeError(w, r, &server.Error{Kind: server.KindRateLimited, Message: "too many queries with this key", RetryAfter: wait})
		return server.Key{}, false
	}
	return key, true
}

// querySlotWait is how long a query API request waits for a slot.
const querySlotWait = time.Second

// acquire takes one of slots, waiting up to querySlotWait (not at all when
// wait is false), and returns its release; when none frees up it writes
// 503 and returns nil.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request, slots chan struct{}, wait bool) func() {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }
	default:
	}
	if wait {
		t := time.NewTimer(querySlotWait)
		defer t.Stop()
		select {
		case slots <- struct{}{}:
			return func() { <-slots }
		case <-t.C:
		case <-r.Context().Done():
		}
	}
	s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, RetryAfter: time.Second,
		Message: "the server is answering as many queries as it allows; retry shortly"})
	return nil
}

func (s *Server) handleQuery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, res, asCSV, ok := answer(s, w, r, server.ParseQuery, s.querier.Query)
		if !ok {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if asCSV {
			writeQueryCSV(w, q, res)
			return
		}
		writeJSON(w, http.StatusOK, queryResponse(q, res))
	})
}

// wantsCSV reports whether the client asked for CSV: format=csv, or an
// Accept header that prefers text/csv to JSON.
func wantsCSV(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
	default:
		return false, server.Errorf(server.KindBadRequest, "format must be json or csv")
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/csv":
			return true, nil
		case "application/json", "*/*":
			return false, nil
		}
	}
	return false, nil
}

// jsonRow is a result row in JSON.
type jsonRow struct {
	Dimensions []any     `json:"dimensions"`
	Metrics    []any     `json:"metrics"`
	Comparison *jsonComp `json:"comparison,omitempty"`
}

type jsonComp struct {
	Metrics []any `json:"metrics"`
	Change  []any `json:"change"` // percent change, null when not defined
}

type jsonQuery struct {
	Metrics    []server.Metric    `json:"metrics"`
	Dimensions []server.Dimension `json:"dimensions"`
	Filters    [][]any            `json:"filters"`
	DateRange  [2]string          `json:"date_range"`
	OrderBy    [][2]string        `json:"order_by,omitempty"`
	Limit      int                `json:"limit"`
	Offset     int                `json:"offset"`
	Comparison *[2]string         `json:"comparison_date_range,omitempty"`
}

type jsonResult struct {
	Results []jsonRow      `json:"results"`
	Meta    map[string]any `json:"meta"`
	Query   jsonQuery      `json:"query"`
}

func queryResponse(q server.Query, res server.Result) jsonResult {
	out := jsonResult{Results: make([]jsonRow, len(res.Rows)), Meta: map[string]any{"time_zone": "UTC"}}
	for i, r := range res.Rows {
		jr := jsonRow{Dimensions: make([]any, len(r.Dimensions)), Metrics: make([]any, len(r.Metrics))}
		for j, v := range r.Dimensions {
			jr.Dimensions[j] = jsonValue(v, q.Dimensions[j].IsTime())
		}
		for j, v := range r.Metrics {
			jr.Metrics[j] = jsonValue(v, false)
		}
		if r.Previous != nil {
			c := &jsonComp{Metrics: make([]any, len(r.Previous)), Change: make([]any, len(r.Previous))}
			for j, v := range r.Previous {
				c.Metrics[j] = jsonValue(v, false)
				c.Change[j] = change(r.Metrics[j], v)
			}
			jr.Comparison = c
		}
		out.Results[i] = jr
	}
	if q.TotalRows {
		out.Meta["total_rows"] = res.TotalRows
	}
	out.Query = jsonQuery{Metrics: q.Metrics, Dimensions: q.Dimensions, Filters: [][]any{}, Limit: q.Limit, Offset: q.Offset,
		DateRange: [2]string{q.From.Format(time.DateOnly), q.To.Format(time.DateOnly)}}
	if out.Query.Dimensions == nil {
		out.Query.Dimensions = []server.Dimension{}
	}
	for _, f := range q.Filters {
		if f.Op == server.OpGTE || f.Op == server.OpLT {
			out.Query.Filters = append(out.Query.Filters, []any{f.Op, f.Dimension, f.Values[0]})
			continue
		}
		out.Query.Filters = append(out.Query.Filters, []any{f.Op, f.Dimension, f.Values})
	}
	for _, o := range q.OrderBy {
		dir := "asc"
		if o.Desc {
			dir = "desc"
		}
		out.Query.OrderBy = append(out.Query.OrderBy, [2]string{o.By, dir})
	}
	if q.Comparison {
		p := q.Previous()
		out.Query.Comparison = &[2]string{p.From.Format(time.DateOnly), p.To.Format(time.DateOnly)}
	}
	return out
}

// change is the percent change from prev to cur, rounded to 0.1, or nil
// when either is missing or prev is zero.
func change(cur, prev any) any {
	c, ok1 := number(cur)
	p, ok2 := number(prev)
	if !ok1 || !ok2 || p == 0 {
		return nil
	}
	return math.Round((c-p)/p*1000) / 10
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// jsonValue is a result value as the API shows it: days as "YYYY-MM-DD",
// times as RFC 3339 in UTC.
func jsonValue(v any, day bool) any {
	switch x := v.(type) {
	case time.Time:
		if day {
			return x.Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return v
}

// csvValue is a result value in CSV: empty for null.
func csvValue(v any, day bool) string {
	switch x := jsonValue(v, day).(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// writeQueryCSV writes the result as RFC 4180 CSV: a header of the
// dimensions then the metrics (then, with a comparison, each metric's
// previous value and change), and one record per row.
func writeQueryCSV(w http.ResponseWriter, q server.Query, res server.Result) {
	cw := startCSV(w, "query")
	var head []string
	for _, d := range q.Dimensions {
		head = append(head, string(d))
	}
	for _, m := range q.Metrics {
		head = append(head, string(m))
	}
	if q.Comparison {
		for _, m := range q.Metrics {
			head = append(head, string(m)+"_previous", string(m)+"_change")
		}
	}
	_ = cw.Write(safeCSV(head))
	for _, r := range res.Rows {
		rec := make([]string, 0, len(head))
		for j, v := range r.Dimensions {
			rec = append(rec, csvValue(v, q.Dimensions[j].IsTime()))
		}
		for _, v := range r.Metrics {
			rec = append(rec, csvValue(v, false))
		}
		if q.Comparison {
			for j, v := range r.Previous {
				rec = append(rec, csvValue(v, false), csvValue(change(r.Metrics[j], v), false))
			}
		}
		_ = cw.Write(safeCSV(rec))
	}
	cw.Flush()
}

// safeCSV keeps a spreadsheet from reading a value that a client sent (a
// command name, a flag value) as a formula: a value starting with = + -
// @ or a tab is prefixed with a single quote, as OWASP advises. Numbers
// are left alone.
func safeCSV(rec []string) []string {
	for i, v := range rec {
		if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			continue
		}
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			continue
		}
		rec[i] = "'" + v
	}
	return rec
}

// exportColumns are the export's fields, in CSV order.
var exportColumns = []string{
	"event_id", "timestamp", "received_at", "service_name", "service_version", "event_type", "name",
	"success", "duration_ms", "exit_code", "error_kind", "user_id", "session_id", "sdk_name", "sdk_version",
	"os", "arch", "ci", "ci_name", "go_version", "metadata",
}

// exportEvent is an exported event in NDJSON: the wire protocol's event
// with what the server adds (name, received_at).
type exportEvent struct {
	EventID        string          `json:"event_id"`
	Timestamp      string          `json:"timestamp"`
	ReceivedAt     string          `json:"received_at"`
	ServiceName    string          `json:"service_name"`
	ServiceVersion string          `json:"service_version"`
	EventType      string          `json:"event_type"`
	Name           string          `json:"name"`
	Success        *bool           `json:"success"`
	DurationMS     *int64          `json:"duration_ms"`
	ExitCode       *int32          `json:"exit_code"`
	ErrorKind      *string         `json:"error_kind"`
	UserID         string          `json:"user_id"`
	SessionID      string          `json:"session_id"`
	SDK            wire.SDK        `json:"sdk"`
	Env            exportEnv       `json:"env"`
	Metadata       json.RawMessage `json:"metadata"`
}

type exportEnv struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CI        bool   `json:"ci"`
	CIName    string `json:"ci_name"`
	GoVersion string `json:"go_version"`
}

func toExport(e *server.ExportedEvent) exportEvent {
	return exportEvent{
		EventID: uuid.UUID(e.EventID).String(), Timestamp: e.Timestamp.Format(time.RFC3339Nano),
		ReceivedAt: e.ReceivedAt.Format(time.RFC3339Nano), ServiceName: e.ServiceName, ServiceVersion: e.ServiceVersion,
		EventType: e.EventType, Name: e.Name, Success: e.Success, DurationMS: e.DurationMS, ExitCode: e.ExitCode,
		ErrorKind: e.ErrorKind, UserID: "anon_" + hex.EncodeToString(e.UserID[:]), SessionID: uuid.UUID(e.SessionID).String(),
		SDK: wire.SDK{Name: e.SDKName, Version: e.SDKVersion}, Metadata: e.Metadata,
		Env: exportEnv{OS: e.OS, Arch: e.Arch, CI: e.CI, CIName: e.CIName, GoVersion: e.GoVersion},
	}
}

// exportWriteWindow is how long the export may take to write one page:
// the server's write timeout is pushed back by it before each page, so
// that an export of any length is not cut off, while a client that stops
// reading is.
const exportWriteWindow = 60 * time.Second

// handleExport streams the project's events over a date range as NDJSON
// (the default) or CSV, with no row limit. after=<event_id> resumes an
// export after the last event received.
func (s *Server) handleExport() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.readAccess(w, r)
		if !ok {
			return
		}
		releaseExport := s.acquire(w, r, s.exportSlots, false)
		if releaseExport == nil {
			return
		}
		defer releaseExport()
		release := s.acquire(w, r, s.querySlots, true)
		if release == nil {
			return
		}
		defer release()
		params := r.URL.Query()
		format := params.Get("format")
		if format == "" {
			if csv, _ := wantsCSV(r); csv {
				format = "csv"
			} else {
				format = "ndjson"
			}
		}
		if format != "ndjson" && format != "csv" {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, "format must be ndjson or csv"))
			return
		}
		from, to, err := server.ParseExportRange(params.Get("date_range"), params.Get("from"), params.Get("to"), s.cfg.Now())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var after [16]byte
		if a := params.Get("after"); a != "" {
			var ok bool
			if after, ok = wire.ParseUUID(a); !ok {
				s.writeError(w, r, server.Errorf(server.KindBadRequest, "after must be the event_id of the last event received"))
				return
			}
		}
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		name := "events-" + from.Format(time.DateOnly) + "-" + to.AddDate(0, 0, -1).Format(time.DateOnly)
		bw := bufio.NewWriterSize(w, 64<<10)
		var write func(*server.ExportedEvent) error
		started := false
		start := func() {
			started = true
			w.WriteHeader(http.StatusOK)
		}
		n := 0
		flushEvery := func() error {
			n++
			if n%1000 != 0 {
				return nil
			}
			_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
			if err := bw.Flush(); err != nil {
				return err
			}
			return rc.Flush()
		}
		switch format {
		case "csv":
			h.Set("Content-Type", "text/csv; charset=utf-8; header=present")
			h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
			cw := csv.NewWriter(bw)
			cw.UseCRLF = true
			rec := make([]string, len(exportColumns))
			write = func(e *server.ExportedEvent) error {
				if !started {
					start()
					_ = cw.Write(exportColumns)
				}
				x := toExport(e)
				rec = rec[:0]
				rec = append(rec, x.EventID, x.Timestamp, x.ReceivedAt, x.ServiceName, x.ServiceVersion, x.EventType, x.Name,
					optional(x.Success), optional(x.DurationMS), optional(x.ExitCode), optional(x.ErrorKind), x.UserID,
					x.SessionID, x.SDK.Name, x.SDK.Version, x.Env.OS, x.Env.Arch, strconv.FormatBool(x.Env.CI),
					x.Env.CIName, x.Env.GoVersion, string(x.Metadata))
				if err := cw.Write(safeCSV(rec)); err != nil {
					return err
				}
				cw.Flush()
				return flushEvery()
			}
			defer func() {
				if !started {
					start()
					_ = cw.Write(exportColumns)
				}
				cw.Flush()
			}()
		default:
			h.Set("Content-Type", "application/x-ndjson")
			h.Set("Content-Disposition", `attachment; filename="`+name+`.ndjson"`)
			enc := json.NewEncoder(bw)
			write = func(e *server.ExportedEvent) error {
				if !started {
					start()
				}
				if err := enc.Encode(toExport(e)); err != nil {
					return err
				}
				return flushEvery()
			}
			defer func() {
				if !started {
					start()
				}
			}()
		}
		err = s.querier.Export(r.Context(), key.ProjectID, from, to, after, write)
		if err != nil && !started {
			s.writeError(w, r, err)
			started = true // writeError wrote the response
			return
		}
		if err != nil {
			// The status is sent: end the body early, so that the client
			// sees a broken stream and resumes with after=.
			info(r).reason = "export interrupted"
			panic(http.ErrAbortHandler)
		}
		_ = bw.Flush()
	})
}

func optional[T any](p *T) string {
	if p == nil {
		return ""
	}
	switch v := any(*p).(type) {
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case string:
		return v
	}
	return ""
}

// OpenAPI is the OpenAPI 3 document of the server's API.
//
//go:embed openapi.yaml
var OpenAPI []byte

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(OpenAPI)
	})
}

// queryRoutes are the read side's paths, for CORS.
var queryRoutes = []string{"/api/v2/query", exportPath, "/api/v2/retention", "/api/v2/versions", "/api/v2/quality"}

const exportPath = "/api/v2/export"

// cors answers the query API's CORS requests from the configured
// origins; other origins, and every other route, get no CORS headers.
func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(queryRoutes, r.URL.Path) ||
			!(slices.Contains(s.cfg.CORSOrigins, origin) || slices.Contains(s.cfg.CORSOrigins, "*")) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, Content-Disposition")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type jsonCohort struct {
	Week      string    `json:"week"`
	Users     int64     `json:"users"`
	Active    []int64   `json:"active"`
	Retention []float64 `json:"retention"`
}

type jsonWeek struct {
	Week      string `json:"week"`
	Active    int64  `json:"active"`
	New       int64  `json:"new"`
	Returning int64  `json:"returning"`
	Dormant   int64  `json:"dormant"`
}

type jsonRetention struct {
	Cohorts []jsonCohort   `json:"cohorts"`
	Weeks   []jsonWeek     `json:"weeks"`
	Meta    map[string]any `json:"meta"`
}

// handleRetention answers a retention query: weekly cohorts and new,
// returning and dormant users per week.
func (s *Server) handleRetention() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, res, asCSV, ok := answer(s, w, r, server.ParseRetentionQuery, s.querier.Retention)
		if !ok {
			return
		}
		out := jsonRetention{Cohorts: []jsonCohort{}, Weeks: []jsonWeek{},
			Meta: map[string]any{"time_zone": "UTC", "weeks": q.Weeks, "week_starts": "monday"}}
		for _, c := range res.Cohorts {
			jc := jsonCohort{Week: c.Week.Format(time.DateOnly), Users: c.Users, Active: c.Active, Retention: make([]float64, len(c.Active))}
			for k, n := range c.Active {
				if c.Users > 0 {
					jc.Retention[k] = math.Round(float64(n)/float64(c.Users)*10000) / 10000
				}
			}
			out.Cohorts = append(out.Cohorts, jc)
		}
		for _, wk := range res.Weeks {
			out.Weeks = append(out.Weeks, jsonWeek{Week: wk.Week.Format(time.DateOnly), Active: wk.Active, New: wk.New,
				Returning: wk.Returning, Dormant: wk.Dormant})
		}
		w.Header().Set("Cache-Control", "no-store")
		if !asCSV {
			writeJSON(w, http.StatusOK, out)
			return
		}
		cw := startCSV(w, "retention")
		head := []string{"week", "active", "new", "returning", "dormant", "cohort_users"}
		for k := 0; k < q.Weeks; k++ {
			head = append(head, "retention_week_"+strconv.Itoa(k))
		}
		_ = cw.Write(head)
		for i, c := range out.Cohorts {
			wk := out.Weeks[i]
			rec := []string{c.Week, strconv.FormatInt(wk.Active, 10), strconv.FormatInt(wk.New, 10),
				strconv.FormatInt(wk.Returning, 10), strconv.FormatInt(wk.Dormant, 10), strconv.FormatInt(c.Users, 10)}
			for k := 0; k < q.Weeks; k++ {
				v := ""
				if k < len(c.Retention) {
					v = strconv.FormatFloat(c.Retention[k], 'f', -1, 64)
				}
				rec = append(rec, v)
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
	})
}

// answer runs the steps every read endpoint but the export shares: the
// key and its rate limit, the format, the body, parse and ask. It writes
// the refusal of the first step that fails and returns ok false then.
func answer[Q, R any](s *Server, w http.ResponseWriter, r *http.Request, parse func([]byte, time.Time) (Q, error),
	ask func(context.Context, int64, Q) (R, error)) (q Q, res R, asCSV, ok bool) {
	key, ok := s.readAccess(w, r)
	if !ok {
		return q, res, false, false
	}
	release := s.acquire(w, r, s.querySlots, true)
	if release == nil {
		return q, res, false, false
	}
	defer release()
	asCSV, err := wantsCSV(r)
	var body []byte
	if err == nil {
		body, err = readBody(r)
	}
	if err == nil {
		q, err = parse(body, s.cfg.Now())
	}
	if err == nil {
		res, err = ask(r.Context(), key.ProjectID, q)
	}
	if err != nil {
		s.writeError(w, r, err)
		return q, res, false, false
	}
	w.Header().Set("Cache-Control", "no-store")
	return q, res, asCSV, true
}

// readBody reads a query body of at most [server.MaxQueryBody] bytes.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, server.MaxQueryBody+1))
	if err != nil {
		return nil, server.Errorf(server.KindBadRequest, "cannot read the body")
	}
	if len(body) > server.MaxQueryBody {
		return nil, server.Errorf(server.KindTooLarge, "a query is at most %d bytes", server.MaxQueryBody)
	}
	return body, nil
}

type jsonVersion struct {
	Version     string  `json:"version"`
	FirstSeen   string  `json:"first_seen"`
	Users       int64   `json:"users"`
	Events      int64   `json:"events"`
	HalfReached *string `json:"half_reached"`
	DaysToHalf  *int    `json:"days_to_half"`
}

// handleVersions answers a versions query: each version's adoption.
func (s *Server) handleVersions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, vs, asCSV, ok := answer(s, w, r, server.ParseVersionsQuery, s.querier.Versions)
		if !ok {
			return
		}
		out := make([]jsonVersion, len(vs))
		for i, v := range vs {
			out[i] = jsonVersion{Version: v.Version, FirstSeen: v.FirstSeen.Format(time.DateOnly), Users: v.Users, Events: v.Events}
			if v.HalfReached != nil {
				h, d := v.HalfReached.Format(time.DateOnly), v.DaysToHalf()
				out[i].HalfReached, out[i].DaysToHalf = &h, &d
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		if !asCSV {
			writeJSON(w, http.StatusOK, map[string]any{"versions": out, "meta": map[string]any{"time_zone": "UTC"}})
			return
		}
		cw := startCSV(w, "versions")
		_ = cw.Write([]string{"version", "first_seen", "users", "events", "half_reached", "days_to_half"})
		for _, v := range out {
			rec := []string{v.Version, v.FirstSeen, strconv.FormatInt(v.Users, 10), strconv.FormatInt(v.Events, 10), "", ""}
			if v.HalfReached != nil {
				rec[4], rec[5] = *v.HalfReached, strconv.Itoa(*v.DaysToHalf)
			}
			_ = cw.Write(safeCSV(rec))
		}
		cw.Flush()
	})
}

type jsonQualityDay struct {
	Day      string           `json:"day"`
	Dropped  int64            `json:"dropped"`
	Rejected map[string]int64 `json:"rejected"`
	Folded   map[string]int64 `json:"folded"`
}

// handleQuality answers a data quality query.
func (s *Server) handleQuality() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, days, asCSV, ok := answer(s, w, r, server.ParseQualityQuery, s.querier.Quality)
		if !ok {
			return
		}
		out := make([]jsonQualityDay, len(days))
		total := jsonQualityDay{Day: "", Rejected: map[string]int64{}, Folded: map[string]int64{}}
		for i, d := range days {
			out[i] = jsonQualityDay{Day: d.Day.Format(time.DateOnly), Dropped: d.Dropped, Rejected: d.Rejected, Folded: d.Folded}
			total.Dropped += d.Dropped
			for k, n := range d.Rejected {
				total.Rejected[k] += n
			}
			for k, n := range d.Folded {
				total.Folded[k] += n
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		if !asCSV {
			writeJSON(w, http.StatusOK, map[string]any{"days": out, "total": map[string]any{
				"dropped": total.Dropped, "rejected": total.Rejected, "folded": total.Folded}, "meta": map[string]any{"time_zone": "UTC"}})
			return
		}
		cw := startCSV(w, "quality")
		_ = cw.Write([]string{"day", "kind", "name", "events"})
		for _, d := range out {
			_ = cw.Write([]string{d.Day, "dropped", "", strconv.FormatInt(d.Dropped, 10)})
			for _, k := range slices.Sorted(maps.Keys(d.Rejected)) {
				_ = cw.Write(safeCSV([]string{d.Day, "rejected", k, strconv.FormatInt(d.Rejected[k], 10)}))
			}
			for _, k := range slices.Sorted(maps.Keys(d.Folded)) {
				_ = cw.Write(safeCSV([]string{d.Day, "folded", k, strconv.FormatInt(d.Folded[k], 10)}))
			}
		}
		cw.Flush()
	})
}

// startCSV sends the headers of a CSV answer named name and returns its
// writer (RFC 4180: CRLF line ends).
func startCSV(w http.ResponseWriter, name string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return cw
}
