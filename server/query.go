package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Query asks for metrics of a project's events, grouped by dimensions,
// filtered, over a range of UTC days. It is the query API's language,
// shaped like Plausible's Stats API v2; [ParseQuery] reads and validates
// one, and a [Querier] answers it. docs/api.md lists every metric,
// dimension and filter.
type Query struct {
	Metrics    []Metric
	Dimensions []Dimension
	Filters    []Filter
	// From and To are the first and last UTC day of the range, both
	// included, at midnight UTC.
	From, To time.Time
	// DateRange is the range as asked ("30d", "month", or "from,to").
	DateRange string
	OrderBy   []Order
	Limit     int
	Offset    int
	// Comparison asks for the same query over the previous period: the
	// same number of days right before From.
	Comparison bool
	// TotalRows asks for the number of rows without Limit and Offset.
	TotalRows bool
}

// Metric is a measure of a group of events.
type Metric string

// Metrics.
const (
	MetricEvents      Metric = "events"       // number of events
	MetricUsers       Metric = "users"        // distinct anonymous users
	MetricSessions    Metric = "sessions"     // distinct sessions
	MetricSuccessRate Metric = "success_rate" // share of runs with a known outcome that succeeded, 0–1
	MetricFailureRate Metric = "failure_rate" // 1 − success_rate
	MetricDurationAvg Metric = "duration_avg" // mean duration_ms of the runs that report one
	MetricDurationP50 Metric = "duration_p50" // median duration_ms
	MetricDurationP90 Metric = "duration_p90"
	MetricDurationP95 Metric = "duration_p95"
	MetricDurationP99 Metric = "duration_p99"
	MetricFirstSeen   Metric = "first_seen" // earliest event time
	MetricLastSeen    Metric = "last_seen"  // latest event time
	// MetricUsersShare is the row's users over the users of all rows of
	// its time bucket (of the whole range without a time dimension),
	// under the same filters: a version's share of a day's active users.
	// A user active in two rows counts in both, so shares may add up to
	// more than 1.
	MetricUsersShare  Metric = "users_share"
	MetricEventsShare Metric = "events_share" // the row's share of its time bucket's events
)

// Metrics lists the metrics a query may ask for, in documentation order.
var Metrics = []Metric{
	MetricEvents, MetricUsers, MetricSessions, MetricSuccessRate, MetricFailureRate,
	MetricDurationAvg, MetricDurationP50, MetricDurationP90, MetricDurationP95, MetricDurationP99,
	MetricFirstSeen, MetricLastSeen, MetricUsersShare, MetricEventsShare,
}

// Dimension is an attribute of events to group them by.
type Dimension string

// Dimensions.
const (
	DimDay       Dimension = "time:day"   // the UTC day, "2026-11-30"
	DimWeek      Dimension = "time:week"  // the ISO week's Monday, "2026-11-30"
	DimMonth     Dimension = "time:month" // the month's first day, "2026-11-01"
	DimEventType Dimension = "event_type"
	DimName      Dimension = "name"    // command, feature or method name
	DimCommand   Dimension = "command" // name of command_executed events only
	DimFeature   Dimension = "feature" // name of feature_used events only
	DimMethod    Dimension = "method"  // name of method_called events only
	DimService   Dimension = "service"
	DimVersion   Dimension = "version"
	DimOS        Dimension = "os"
	DimArch      Dimension = "arch"
	DimGoVersion Dimension = "go_version"
	DimCI        Dimension = "ci" // true or false
	DimCIName    Dimension = "ci_name"
	DimSDK       Dimension = "sdk_version"
	DimSuccess   Dimension = "success" // true, false or null (outcome unknown)
	DimErrorKind Dimension = "error_kind"
	DimExitCode  Dimension = "exit_code"
	DimFlag      Dimension = "flag"       // each flag set in a command run
	DimFlagValue Dimension = "flag_value" // the collected value of that flag
)

// Dimensions lists the dimensions a query may group by, in documentation
// order.
var Dimensions = []Dimension{
	DimDay, DimWeek, DimMonth, DimEventType, DimName, DimCommand, DimFeature, DimMethod,
	DimService, DimVersion, DimOS, DimArch, DimGoVersion, DimCI, DimCIName, DimSDK,
	DimSuccess, DimErrorKind, DimExitCode, DimFlag, DimFlagValue,
}

// IsTime reports whether d is one of the time dimensions.
func (d Dimension) IsTime() bool { return d == DimDay || d == DimWeek || d == DimMonth }

// Boolean reports whether d's values are true and false.
func (d Dimension) Boolean() bool { return d == DimCI || d == DimSuccess }

// EventType is the event type a dimension implies ("command" only groups
// command_executed events), or "".
func (d Dimension) EventType() string {
	switch d {
	case DimCommand, DimFlag, DimFlagValue:
		return "command_executed"
	case DimFeature:
		return "feature_used"
	case DimMethod:
		return "method_called"
	}
	return ""
}

// Filter keeps the events whose Dimension compares with Values by Op.
type Filter struct {
	Op        FilterOp
	Dimension Dimension
	// Values are strings, or booleans for ci and success; "is" and "is_not"
	// take a list; "gte" and "lt" one version.
	Values []any
}

// FilterOp is how a filter compares.
type FilterOp string

// Filter operators.
const (
	OpIs       FilterOp = "is"       // the value is one of Values
	OpIsNot    FilterOp = "is_not"   // the value is none of Values
	OpContains FilterOp = "contains" // the value contains one of Values (case-insensitive)
	OpGTE      FilterOp = "gte"      // version: this one and later ("from X onward")
	OpLT       FilterOp = "lt"       // version: before this one
)

// Order sorts the rows by a metric or a dimension of the query.
type Order struct {
	By   string // a metric or dimension of the query
	Desc bool
}

// Result is the answer to a [Query].
type Result struct {
	Rows      []Row
	TotalRows int64 // when Query.TotalRows: the rows without Limit and Offset
}

// Row is one group: its dimension values, then its metric values, in the
// query's order. Values are int64, float64, bool, string, time.Time or
// nil (no value, such as a rate over no runs, or a missing error_kind).
type Row struct {
	Dimensions []any
	Metrics    []any
	// Previous holds the metrics of the same group in the previous
	// period, when Query.Comparison: the row with the same dimensions,
	// time buckets matched by their place in the range.
	Previous []any
}

// EmptyMetrics are the metrics of a group without events: zero counts,
// no rates, durations or times.
func EmptyMetrics(ms []Metric) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		switch m {
		case MetricEvents, MetricUsers, MetricSessions:
			out[i] = int64(0)
		}
	}
	return out
}

// Buckets are the starts of the days, ISO weeks or months of d that
// [from, to] touches.
func Buckets(d Dimension, from, to time.Time) []time.Time {
	var out []time.Time
	t := from
	switch d {
	case DimWeek:
		t = from.AddDate(0, 0, -((int(from.Weekday()) + 6) % 7))
	case DimMonth:
		t = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	for !t.After(to) {
		out = append(out, t)
		switch d {
		case DimWeek:
			t = t.AddDate(0, 0, 7)
		case DimMonth:
			t = t.AddDate(0, 1, 0)
		default:
			t = t.AddDate(0, 0, 1)
		}
	}
	return out
}

// A Querier answers queries about one project's events. The project comes
// from the read key, never from the query.
type Querier interface {
	Query(ctx context.Context, projectID int64, q Query) (Result, error)
	// Export calls fn with each event of the project that occurred in
	// [from, to), in (Timestamp, EventID) order, starting after the event
	// after (zero: from the start). It reads the events in pages, each a
	// short statement, so that an export of any size holds neither memory
	// nor a statement open for long.
	Export(ctx context.Context, projectID int64, from, to time.Time, after [16]byte, fn func(*ExportedEvent) error) error
	// Retention answers a retention query.
	Retention(ctx context.Context, projectID int64, q RetentionQuery) (Retention, error)
	// Versions answers a versions query, newest version first.
	Versions(ctx context.Context, projectID int64, q VersionsQuery) ([]VersionAdoption, error)
	// Quality answers a data quality query: one entry per day of the
	// range, days without anything to report included.
	Quality(ctx context.Context, projectID int64, q QualityQuery) ([]QualityDay, error)
}

// ExportedEvent is a stored event as the export writes it.
type ExportedEvent struct {
	Event
	ReceivedAt time.Time
}

// Query limits.
const (
	DefaultQueryLimit = 1000
	MaxQueryLimit     = 10000
	MaxQueryOffset    = 1_000_000
	MaxQueryDays      = 400 // longer than the default retention
	maxQueryItems     = 12  // metrics, dimensions or filters
	maxFilterValues   = 100
	maxFilterValueLen = 200
)

// MaxQueryBody is the largest query request body.
const MaxQueryBody = 64 << 10

// wireQuery is a query's JSON form.
type wireQuery struct {
	Metrics    []string          `json:"metrics"`
	Dimensions []string          `json:"dimensions"`
	Filters    []json.RawMessage `json:"filters"`
	DateRange  json.RawMessage   `json:"date_range"`
	OrderBy    [][]string        `json:"order_by"`
	Pagination *struct {
		Limit  *int `json:"limit"`
		Offset *int `json:"offset"`
	} `json:"pagination"`
	Include *struct {
		Comparison string `json:"comparison"`
		TotalRows  bool   `json:"total_rows"`
	} `json:"include"`
}

// decodeStrict reads body, one JSON value, into v; members v does not
// have are refused. what names the query in messages.
func decodeStrict(body []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return badQuery("invalid %s: %s", what, jsonProblem(err))
	}
	if dec.More() {
		return badQuery("invalid %s: more than one JSON value", what)
	}
	return nil
}

// parseFilters reads the filters of a query.
func parseFilters(raws []json.RawMessage) ([]Filter, error) {
	if len(raws) > maxQueryItems {
		return nil, badQuery("at most %d filters", maxQueryItems)
	}
	var fs []Filter
	for i, raw := range raws {
		f, err := parseFilter(raw)
		if err != nil {
			return nil, badQuery("filters[%d]: %s", i, err.Message)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func badQuery(format string, args ...any) *Error {
	return Errorf(KindBadRequest, format, args...)
}

// ParseQuery reads a query's JSON form and validates it; now sets what
// relative date ranges ("30d") mean. Every problem is a [KindBadRequest]
// [*Error] whose message says what to change.
func ParseQuery(body []byte, now time.Time) (Query, error) {
	var w wireQuery
	if err := decodeStrict(body, "query", &w); err != nil {
		return Query{}, err
	}
	var q Query
	if len(w.Metrics) == 0 {
		return Query{}, badQuery(`"metrics" is required: a list such as ["events", "users"]`)
	}
	if len(w.Metrics) > maxQueryItems || len(w.Dimensions) > maxQueryItems || len(w.Filters) > maxQueryItems {
		return Query{}, badQuery("at most %d metrics, %d dimensions and %d filters", maxQueryItems, maxQueryItems, maxQueryItems)
	}
	for _, m := range w.Metrics {
		if !slices.Contains(Metrics, Metric(m)) {
			return Query{}, badQuery("unknown metric %q; known: %s", clip(m), joinNames(Metrics))
		}
		if slices.Contains(q.Metrics, Metric(m)) {
			return Query{}, badQuery("metric %q is asked twice", m)
		}
		q.Metrics = append(q.Metrics, Metric(m))
	}
	times := 0
	for _, d := range w.Dimensions {
		dim := Dimension(d)
		if !slices.Contains(Dimensions, dim) {
			return Query{}, badQuery("unknown dimension %q; known: %s", clip(d), joinNames(Dimensions))
		}
		if slices.Contains(q.Dimensions, dim) {
			return Query{}, badQuery("dimension %q is asked twice", d)
		}
		if dim.IsTime() {
			times++
		}
		q.Dimensions = append(q.Dimensions, dim)
	}
	if times > 1 {
		return Query{}, badQuery("at most one time dimension (time:day, time:week or time:month)")
	}
	if slices.Contains(q.Dimensions, DimFlagValue) && !slices.Contains(q.Dimensions, DimFlag) {
		return Query{}, badQuery(`dimension "flag_value" needs "flag" too: a value is a value of a flag`)
	}
	if err := checkEventTypes(q.Dimensions); err != nil {
		return Query{}, err
	}
	var err error
	if q.Filters, err = parseFilters(w.Filters); err != nil {
		return Query{}, err
	}
	if q.From, q.To, q.DateRange, err = parseDateRange(w.DateRange, now); err != nil {
		return Query{}, err
	}
	for i, o := range w.OrderBy {
		if len(o) != 2 || (o[1] != "asc" && o[1] != "desc") {
			return Query{}, badQuery(`order_by[%d]: want ["<metric or dimension>", "asc" or "desc"]`, i)
		}
		if !slices.Contains(q.Metrics, Metric(o[0])) && !slices.Contains(q.Dimensions, Dimension(o[0])) {
			return Query{}, badQuery("order_by[%d]: %q is not one of the query's metrics or dimensions", i, clip(o[0]))
		}
		q.OrderBy = append(q.OrderBy, Order{By: o[0], Desc: o[1] == "desc"})
	}
	q.Limit = DefaultQueryLimit
	if p := w.Pagination; p != nil {
		if p.Limit != nil {
			if *p.Limit < 1 || *p.Limit > MaxQueryLimit {
				return Query{}, badQuery("pagination.limit must be between 1 and %d", MaxQueryLimit)
			}
			q.Limit = *p.Limit
		}
		if p.Offset != nil {
			if *p.Offset < 0 || *p.Offset > MaxQueryOffset {
				return Query{}, badQuery("pagination.offset must be between 0 and %d", MaxQueryOffset)
			}
			q.Offset = *p.Offset
		}
	}
	if in := w.Include; in != nil {
		switch in.Comparison {
		case "":
		case "previous_period":
			q.Comparison = true
		default:
			return Query{}, badQuery(`include.comparison must be "previous_period"`)
		}
		q.TotalRows = in.TotalRows
	}
	return q, nil
}

// checkEventTypes refuses dimensions that imply different event types,
// such as "command" with "feature": no event has both.
func checkEventTypes(dims []Dimension) *Error {
	var typ string
	var first Dimension
	for _, d := range dims {
		t := d.EventType()
		if t == "" {
			continue
		}
		if typ != "" && t != typ {
			return badQuery("dimensions %q and %q never apply to the same event", first, d)
		}
		typ, first = t, d
	}
	return nil
}

// TimeDimension is the query's time dimension, or "".
func (q Query) TimeDimension() Dimension {
	for _, d := range q.Dimensions {
		if d.IsTime() {
			return d
		}
	}
	return ""
}

// EventType is the event type the query's dimensions and filters limit it
// to, or "" for all events.
func (q Query) EventType() string {
	for _, d := range q.Dimensions {
		if t := d.EventType(); t != "" {
			return t
		}
	}
	for _, f := range q.Filters {
		if t := f.Dimension.EventType(); t != "" && f.Op != OpIsNot {
			return t
		}
	}
	return ""
}

// Days is the number of days in the query's range.
func (q Query) Days() int { return int(q.To.Sub(q.From)/(24*time.Hour)) + 1 }

// Previous is the same query over the previous period.
func (q Query) Previous() Query {
	p := q
	n := time.Duration(q.Days()) * 24 * time.Hour
	p.From, p.To = q.From.Add(-n), q.To.Add(-n)
	p.Comparison, p.TotalRows = false, false
	p.Limit, p.Offset = MaxQueryLimit, 0
	return p
}

func parseFilter(raw json.RawMessage) (Filter, *Error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != 3 {
		return Filter{}, badQuery(`want ["<operator>", "<dimension>", <values>]`)
	}
	var op, dim string
	if json.Unmarshal(parts[0], &op) != nil || json.Unmarshal(parts[1], &dim) != nil {
		return Filter{}, badQuery("the operator and the dimension are strings")
	}
	f := Filter{Op: FilterOp(op), Dimension: Dimension(dim)}
	if !slices.Contains(Dimensions, f.Dimension) || f.Dimension.IsTime() {
		return Filter{}, badQuery("cannot filter on %q (the date range selects days); known: %s", clip(dim), joinNames(Dimensions[3:]))
	}
	switch f.Op {
	case OpIs, OpIsNot, OpContains:
		var vals []any
		dec := json.NewDecoder(bytes.NewReader(parts[2]))
		dec.UseNumber()
		if err := dec.Decode(&vals); err != nil || len(vals) == 0 || len(vals) > maxFilterValues {
			return Filter{}, badQuery("%q takes a list of 1 to %d values", op, maxFilterValues)
		}
		for _, v := range vals {
			var ok bool
			switch {
			case f.Dimension.Boolean():
				_, ok = v.(bool)
				ok = ok && f.Op != OpContains
			case f.Dimension == DimExitCode:
				var n json.Number
				if n, ok = v.(json.Number); ok {
					i, err := strconv.ParseInt(string(n), 10, 32)
					ok = err == nil && f.Op != OpContains
					v = i
				}
			default:
				var s string
				s, ok = v.(string)
				ok = ok && len(s) <= maxFilterValueLen && (f.Op != OpContains || s != "") && !strings.ContainsRune(s, 0)
			}
			if !ok {
				return Filter{}, badQuery("%q values of %q must be %s", op, dim, valueKind(f.Dimension, f.Op))
			}
			f.Values = append(f.Values, v)
		}
	case OpGTE, OpLT:
		if f.Dimension != DimVersion {
			return Filter{}, badQuery("%q compares versions: only the dimension \"version\"", op)
		}
		var v string
		if json.Unmarshal(parts[2], &v) != nil || !versionPattern.MatchString(v) {
			return Filter{}, badQuery(`%q takes one version such as "1.4.0" or "v2.0.0-rc.1"`, op)
		}
		f.Values = []any{v}
	default:
		return Filter{}, badQuery("unknown operator %q; known: is, is_not, contains, gte, lt", clip(op))
	}
	return f, nil
}

// versionPattern is what the version comparisons understand: a semantic
// version, with or without "v", minor and patch optional. Versions of
// another form never match "gte" or "lt".
var versionPattern = regexp.MustCompile(`^v?[0-9]{1,9}(\.[0-9]{1,9}){0,2}(-[0-9A-Za-z.-]{1,64})?(\+[0-9A-Za-z.-]{1,64})?$`)

func valueKind(d Dimension, op FilterOp) string {
	switch {
	case d.Boolean():
		return "true or false (and the operator is or is_not)"
	case d == DimExitCode:
		return "integers (and the operator is or is_not)"
	case op == OpContains:
		return fmt.Sprintf("non-empty strings of at most %d bytes, without NUL", maxFilterValueLen)
	}
	return fmt.Sprintf("strings of at most %d bytes, without NUL", maxFilterValueLen)
}

// parseDateRange reads "day", "7d", "30d", "90d", "180d", "month",
// "last_month", "year", "all" or ["YYYY-MM-DD", "YYYY-MM-DD"] (UTC days,
// both included). The relative ranges end today (UTC) and include it.
func parseDateRange(raw json.RawMessage, now time.Time) (from, to time.Time, label string, err error) {
	today := now.UTC().Truncate(24 * time.Hour)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, time.Time{}, "", badQuery(`"date_range" is required: "7d", "30d", "90d", "180d", "day", "month", "last_month", "year", "all" or ["2026-01-01", "2026-01-31"]`)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "day":
			return today, today, s, nil
		case "7d", "30d", "90d", "180d", "365d":
			n, _ := strconv.Atoi(strings.TrimSuffix(s, "d"))
			return today.AddDate(0, 0, -(n - 1)), today, s, nil
		case "month":
			return time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC), today, s, nil
		case "last_month":
			first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
			return first.AddDate(0, -1, 0), first.AddDate(0, 0, -1), s, nil
		case "year":
			return time.Date(today.Year(), 1, 1, 0, 0, 0, 0, time.UTC), today, s, nil
		case "all":
			return today.AddDate(0, 0, -(MaxQueryDays - 1)), today, s, nil
		}
		return time.Time{}, time.Time{}, "", badQuery("unknown date_range %q; use 7d, 30d, 90d, 180d, 365d, day, month, last_month, year, all or [from, to]", clip(s))
	}
	var pair []string
	if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
		return time.Time{}, time.Time{}, "", badQuery(`date_range: want a name such as "30d" or ["YYYY-MM-DD", "YYYY-MM-DD"]`)
	}
	for i, p := range pair {
		d, perr := time.Parse(time.DateOnly, p)
		if perr != nil {
			return time.Time{}, time.Time{}, "", badQuery("date_range[%d]: %q is not a date YYYY-MM-DD", i, clip(p))
		}
		if i == 0 {
			from = d
		} else {
			to = d
		}
	}
	switch {
	case to.Before(from):
		return time.Time{}, time.Time{}, "", badQuery("date_range: %s is after %s", pair[0], pair[1])
	case to.Sub(from) >= MaxQueryDays*24*time.Hour:
		return time.Time{}, time.Time{}, "", badQuery("date_range spans more than %d days (events are kept for %d days)", MaxQueryDays, int(DefaultRetention.Hours()/24))
	case from.Year() < 2000 || to.After(today.AddDate(1, 0, 0)):
		return time.Time{}, time.Time{}, "", badQuery("date_range must lie between 2000-01-01 and a year from today")
	}
	return from, to, pair[0] + "," + pair[1], nil
}

func jsonProblem(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	return clip(s)
}

// clip shortens what a client sent before it goes into an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return strconv.Quote(s[:n]) + "…"
	}
	return s
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// ParseExportRange reads the export's range: a date_range name as in
// queries ("30d", "all"), or from and to as UTC days YYYY-MM-DD, both
// included (to defaults to today). It returns the range as [from, end).
func ParseExportRange(dateRange, from, to string, now time.Time) (time.Time, time.Time, error) {
	var raw []byte
	switch {
	case dateRange != "" && (from != "" || to != ""):
		return time.Time{}, time.Time{}, badQuery("give date_range, or from and to, not both")
	case dateRange != "":
		raw, _ = json.Marshal(dateRange)
	case from != "":
		if to == "" {
			to = now.UTC().Format(time.DateOnly)
		}
		raw, _ = json.Marshal([]string{from, to})
	default:
		return time.Time{}, time.Time{}, badQuery(`give date_range (such as "30d" or "all") or from=YYYY-MM-DD (and to=)`)
	}
	f, t, _, err := parseDateRange(raw, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return f, t.AddDate(0, 0, 1), nil
}
