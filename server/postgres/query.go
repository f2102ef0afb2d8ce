package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-kit/telemetry-kit/server"
)

var _ server.Querier = (*DB)(nil)

// DefaultQueryTimeout bounds each statement of the query API when
// Config.QueryTimeout is zero.
const DefaultQueryTimeout = 10 * time.Second

// dimExpr is the SQL of each dimension over events e (and the flags f of
// a command run, for flag and flag_value). Only these strings, never a
// client's, are put into a statement; values go in as parameters.
var dimExpr = map[server.Dimension]string{
	server.DimDay:       "(e.occurred_at AT TIME ZONE 'UTC')::date",
	server.DimWeek:      "date_trunc('week', e.occurred_at AT TIME ZONE 'UTC')::date",
	server.DimMonth:     "date_trunc('month', e.occurred_at AT TIME ZONE 'UTC')::date",
	server.DimEventType: "e.event_type",
	server.DimName:      "e.name",
	server.DimCommand:   "e.name",
	server.DimFeature:   "e.name",
	server.DimMethod:    "e.name",
	server.DimService:   "e.service_name",
	server.DimVersion:   "e.service_version",
	server.DimOS:        "e.os",
	server.DimArch:      "e.arch",
	server.DimGoVersion: "e.go_version",
	server.DimCI:        "e.ci",
	server.DimCIName:    "e.ci_name",
	server.DimSDK:       "e.sdk_version",
	server.DimSuccess:   "e.success",
	server.DimErrorKind: "e.error_kind",
	server.DimExitCode:  "e.exit_code::bigint",
	server.DimFlag:      "f.flag",
	server.DimFlagValue: "(e.metadata->'flag_values'->>f.flag)",
}

var metricExpr = map[server.Metric]string{
	server.MetricEvents:      "count(*)",
	server.MetricUsers:       "count(DISTINCT e.user_id)",
	server.MetricSessions:    "count(DISTINCT e.session_id)",
	server.MetricSuccessRate: "avg(e.success::int)::float8",
	server.MetricFailureRate: "avg((NOT e.success)::int)::float8",
	server.MetricDurationAvg: "avg(e.duration_ms)::float8",
	server.MetricDurationP50: "percentile_cont(0.5) WITHIN GROUP (ORDER BY e.duration_ms)",
	server.MetricDurationP90: "percentile_cont(0.9) WITHIN GROUP (ORDER BY e.duration_ms)",
	server.MetricDurationP95: "percentile_cont(0.95) WITHIN GROUP (ORDER BY e.duration_ms)",
	server.MetricDurationP99: "percentile_cont(0.99) WITHIN GROUP (ORDER BY e.duration_ms)",
	server.MetricFirstSeen:   "min(e.occurred_at)",
	server.MetricLastSeen:    "max(e.occurred_at)",
	// The shares are counted here and divided by their bucket's total
	// afterwards (see shares).
	server.MetricUsersShare:  "count(DISTINCT e.user_id)",
	server.MetricEventsShare: "count(*)",
}

// flagsJoin expands a command run into one row per distinct flag it set.
const flagsJoin = ` CROSS JOIN LATERAL (SELECT DISTINCT x AS flag FROM jsonb_array_elements_text(
    CASE WHEN jsonb_typeof(e.metadata->'flags') = 'array' THEN e.metadata->'flags' ELSE '[]' END) AS x) f`

// stmt builds a statement and its parameters.
type stmt struct {
	sql     strings.Builder
	args    []any
	project string                      // the parameter that holds the project's id
	exprs   map[server.Dimension]string // the dimensions' SQL; nil: over events e
	// versions is a query of the distinct versions the statement reads,
	// for the version comparisons.
	versions string
}

// projectArg adds the project's id as a parameter and returns it.
func (s *stmt) projectArg(project int64) string {
	s.project = s.arg(project)
	return s.project
}

func (s *stmt) arg(v any) string {
	s.args = append(s.args, v)
	return "$" + strconv.Itoa(len(s.args))
}

// source is where a query's rows come from: the events, or the daily
// rollup of event counts.
type source struct {
	dims    map[server.Dimension]string
	metrics map[server.Metric]string
	// from is the FROM clause; where the condition on the project (%[1]s)
	// and the range of days (%[2]s and %[3]s, see days); eventType the
	// column of the event type.
	from, where, eventType string
	// days are the parameters of the range [from, to] of days.
	days func(from, to time.Time) (any, any)
	// versions selects the distinct versions of the source in the range,
	// with the parameters of where.
	versions string
	// flagRows: the source has a row per flag, no flags to expand.
	flagRows bool
	// rows, when set, writes the FROM item instead of from, with the
	// parameters of the project and the range of days.
	rows func(s *stmt, project, from, to string) string
}

var eventsSource = source{dims: dimExpr, metrics: metricExpr, from: "events e",
	where:     "e.project_id = %[1]s AND e.occurred_at >= %[2]s AND e.occurred_at < %[3]s",
	eventType: "e.event_type",
	days:      func(from, to time.Time) (any, any) { return from, to.AddDate(0, 0, 1) },
	versions:  eventVersions,
}

// eventVersions selects the distinct versions of a project's events in a
// range of times.
const eventVersions = `SELECT DISTINCT ev.service_version FROM events ev
    WHERE ev.project_id = %[1]s AND ev.occurred_at >= %[2]s AND ev.occurred_at < %[3]s`

// countsSource answers from daily_event_counts: events, users, outcomes,
// durations and first and last times by day, service, version, type,
// name, OS, arch, CI, Go version, outcome and error kind. Its values are those the cardinality caps admitted: what
// they fold is counted under "(other)" (see caps.go), where the events
// keep every value.
var countsSource = rollupSource("daily_event_counts", "c.event_type", withPlatform(map[server.Dimension]string{
	server.DimEventType: "c.event_type",
	server.DimName:      "c.name",
	server.DimCommand:   "c.name",
	server.DimFeature:   "c.name",
	server.DimMethod:    "c.name",
	server.DimSuccess:   "c.success",
	server.DimErrorKind: "c.error_kind",
}), map[server.Metric]string{
	server.MetricSuccessRate: "(coalesce(sum(c.events) FILTER (WHERE c.success), 0)::numeric / nullif(sum(c.events) FILTER (WHERE c.success IS NOT NULL), 0))::float8",
	server.MetricFailureRate: "(coalesce(sum(c.events) FILTER (WHERE NOT c.success), 0)::numeric / nullif(sum(c.events) FILTER (WHERE c.success IS NOT NULL), 0))::float8",
	server.MetricDurationAvg: "(sum(c.duration_ms_sum)::numeric / nullif(sum(c.duration_count), 0))::float8",
	// Merged t-digests: exact for few durations, estimates beyond. The
	// percentiles are elements of one aggregate, which PostgreSQL computes
	// once for all of them: merging the digests is the cost.
	server.MetricDurationP50: digestPercentile + "[1]",
	server.MetricDurationP90: digestPercentile + "[2]",
	server.MetricDurationP95: digestPercentile + "[3]",
	server.MetricDurationP99: digestPercentile + "[4]",
	server.MetricFirstSeen:   "min(c.first_at)",
	server.MetricLastSeen:    "max(c.last_at)",
})

// digestPercentile merges a group's t-digests into the durations' p50,
// p90, p95 and p99.
const digestPercentile = "(tdigest_percentile(c.durations, '{0.5,0.9,0.95,0.99}'::float8[]))"

// withPlatform adds to dims the columns that daily_event_counts and
// daily_platform_counts share: service, version and platform.
func withPlatform(dims map[server.Dimension]string) map[server.Dimension]string {
	dims[server.DimService] = "c.service_name"
	dims[server.DimVersion] = "c.service_version"
	dims[server.DimOS] = "c.os"
	dims[server.DimArch] = "c.arch"
	dims[server.DimCI] = "c.ci"
	dims[server.DimGoVersion] = "c.go_version"
	return dims
}

// rollupSource is the source of a rollup table of a row per project and
// day (alias c, with events and a users sketch): its time dimensions,
// events and users, and the dimensions and metrics of its own.
func rollupSource(table, eventType string, dims map[server.Dimension]string, metrics map[server.Metric]string) source {
	dims[server.DimDay] = "c.day"
	dims[server.DimWeek] = "date_trunc('week', c.day)::date"
	dims[server.DimMonth] = "date_trunc('month', c.day)::date"
	metrics[server.MetricEvents] = "coalesce(sum(c.events), 0)::bigint"
	metrics[server.MetricEventsShare] = metrics[server.MetricEvents]
	metrics[server.MetricUsers] = sketchUsers
	metrics[server.MetricUsersShare] = sketchUsers
	return source{
		dims:      dims,
		metrics:   metrics,
		from:      table + " c",
		where:     "c.project_id = %[1]s AND c.day BETWEEN %[2]s::date AND %[3]s::date",
		eventType: eventType,
		// As text: a time would be a timestamptz, made a date in the
		// session's time zone.
		days:     func(from, to time.Time) (any, any) { return from.Format(time.DateOnly), to.Format(time.DateOnly) },
		versions: rollupVersions,
	}
}

// rollupVersions selects the distinct versions of the rollups in a range
// of days from the smallest one: every rollup row's version, as the caps
// left it, has a row of daily_platform_counts (a projection of
// daily_event_counts, whose versions those of the flags are among).
const rollupVersions = `SELECT DISTINCT dv.service_version FROM daily_platform_counts dv
    WHERE dv.project_id = %[1]s AND dv.day BETWEEN %[2]s::date AND %[3]s::date`

// sketchUsers counts the distinct users of the rollup rows a group reads
// by merging their sketches: exact up to about 160 users, an estimate
// (standard error 2.3%) beyond.
const sketchUsers = "coalesce(round(hll_cardinality(hll_union_agg(c.users))), 0)::bigint"

// flagsSource answers from daily_flag_counts: the command runs that set
// each flag (or a flag to a value), and their users, by time, service,
// version, command, OS, arch and CI. It answers only queries that group by flag: a
// filter on flags without it keeps runs, which the flag rows cannot tell
// apart.
var flagsSource = func() source {
	src := rollupSource("daily_flag_counts", "'command_executed'", map[server.Dimension]string{
		server.DimName:      "c.command",
		server.DimCommand:   "c.command",
		server.DimService:   "c.service_name",
		server.DimVersion:   "c.service_version",
		server.DimFlag:      "c.flag",
		server.DimFlagValue: "c.value",
		server.DimOS:        "c.os",
		server.DimArch:      "c.arch",
		server.DimCI:        "c.ci",
	}, map[server.Metric]string{})
	// Flags are counted for command runs only (the event type above),
	// a row per flag.
	src.flagRows = true
	return src
}()

// platformSource answers from daily_platform_counts: events, users,
// outcomes and mean durations by time, service, version, OS, arch, CI
// and Go version, over events of every type.
var platformSource = rollupSource("daily_platform_counts", "", withPlatform(map[server.Dimension]string{}), map[server.Metric]string{
	server.MetricSuccessRate: "(sum(c.successes)::numeric / nullif(sum(c.outcomes), 0))::float8",
	server.MetricFailureRate: "((sum(c.outcomes) - sum(c.successes))::numeric / nullif(sum(c.outcomes), 0))::float8",
	server.MetricDurationAvg: "(sum(c.duration_ms_sum)::numeric / nullif(sum(c.duration_count), 0))::float8",
})

// periodDims and periodMetrics are those of period_counts (see
// periodSource).
var periodDims, periodMetrics = func() (map[server.Dimension]string, map[server.Metric]string) {
	dims := withPlatform(map[server.Dimension]string{
		server.DimEventType: "c.event_type",
		server.DimName:      "c.name",
		server.DimCommand:   "c.name",
		server.DimFeature:   "c.name",
		server.DimMethod:    "c.name",
	})
	delete(dims, server.DimGoVersion)
	return dims, map[server.Metric]string{
		server.MetricSuccessRate: "(sum(c.successes)::numeric / nullif(sum(c.outcomes), 0))::float8",
		server.MetricFailureRate: "((sum(c.outcomes) - sum(c.successes))::numeric / nullif(sum(c.outcomes), 0))::float8",
		server.MetricDurationAvg: countsSource.metrics[server.MetricDurationAvg],
		server.MetricDurationP50: countsSource.metrics[server.MetricDurationP50],
		server.MetricDurationP90: countsSource.metrics[server.MetricDurationP90],
		server.MetricDurationP95: countsSource.metrics[server.MetricDurationP95],
		server.MetricDurationP99: countsSource.metrics[server.MetricDurationP99],
		server.MetricFirstSeen:   countsSource.metrics[server.MetricFirstSeen],
		server.MetricLastSeen:    countsSource.metrics[server.MetricLastSeen],
	}
}()

// periods is what a query needs to know of the period rollups (see
// periods.go): the last day built, and the first day the retention keeps.
type periods struct {
	builtThrough, floor time.Time
}

// periodSource answers q from pr: by time,
// service, version, type, name, OS, arch and CI (and what pr adds), from
// the rows of the whole months, weeks and days of q's range
// (periodPieces) that are built, the rows of daily_event_counts of those
// days not compacted yet, and those of the days after them.
func periodSource(pr periodRollup, q server.Query, ps periods) source {
	src := rollupSource(pr.table, pr.eventType, maps.Clone(pr.dims), maps.Clone(pr.metrics))
	src.flagRows = pr.flagRows
	bt := ps.builtThrough
	if bt.IsZero() {
		bt = q.From.AddDate(0, 0, -1)
	}
	months, weeks, days := periodPieces(q.From, q.To, bt, ps.floor, q.TimeDimension())
	src.rows = func(s *stmt, p, from, to string) string {
		dates := func(ts []time.Time) string {
			v := make([]string, len(ts))
			for i, t := range ts {
				v[i] = t.Format(time.DateOnly)
			}
			return s.arg(v)
		}
		built := s.arg(bt.Format(time.DateOnly))
		counts := `SELECT project_id, day, ` + pr.key + `, ` + pr.counts + `
    FROM ` + pr.daily + ` WHERE project_id = %[1]s AND `
		return fmt.Sprintf(`(SELECT project_id, start AS day, `+pr.key+`, `+pr.values+`
    FROM `+pr.table+` WHERE project_id = %[1]s AND (period = 'm' AND start = ANY(%[4]s::date[])
        OR period = 'w' AND start = ANY(%[5]s::date[]) OR period = 'd' AND start = ANY(%[6]s::date[]))
UNION ALL `+counts+`day BETWEEN greatest(%[2]s::date, %[7]s::date + 1) AND %[3]s::date
UNION ALL `+counts+`day BETWEEN %[2]s::date AND least(%[3]s::date, %[7]s::date) AND shard <> 0
) c`, p, from, to, dates(months), dates(weeks), dates(days), built)
	}
	return src
}

// errorDims are the dimensions of period_error_counts.
var errorDims = func() map[server.Dimension]string {
	dims := maps.Clone(periodDims)
	dims[server.DimErrorKind] = "c.error_kind"
	return dims
}()

// sourceOf is the source that answers q: the smallest rollup that holds
// every metric and dimension q asks for or filters on, else the events.
func sourceOf(q server.Query, ps periods) source {
	if q.EventType() == "" && holds(platformSource, q) {
		return platformSource
	}
	for _, pr := range []periodRollup{periodCounts, periodErrors} {
		if src := periodSource(pr, q, ps); holds(src, q) {
			return src
		}
	}
	if holds(countsSource, q) {
		return countsSource
	}
	if slices.Contains(q.Dimensions, server.DimFlag) {
		if src := periodSource(periodFlags, q, ps); holds(src, q) {
			return src
		}
		if holds(flagsSource, q) {
			return flagsSource
		}
	}
	return eventsSource
}

// holds reports whether src has every metric and dimension of q.
func holds(src source, q server.Query) bool {
	for _, m := range q.Metrics {
		if _, ok := src.metrics[m]; !ok {
			return false
		}
	}
	for _, d := range q.Dimensions {
		if _, ok := src.dims[d]; !ok {
			return false
		}
	}
	for _, f := range q.Filters {
		if _, ok := src.dims[f.Dimension]; !ok {
			return false
		}
	}
	return true
}

// buildQuery returns the statement that answers q for project from src.
func buildQuery(project int64, q server.Query, src source) (string, []any) {
	s := stmt{exprs: src.dims}
	hasFlag := slices.Contains(q.Dimensions, server.DimFlag)
	s.sql.WriteString("SELECT ")
	for _, d := range q.Dimensions {
		s.sql.WriteString(src.dims[d])
		if textDim(d) {
			// Rows sort by bytes, the same on every database.
			s.sql.WriteString(` COLLATE "C"`)
		}
		s.sql.WriteString(", ")
	}
	for i, m := range q.Metrics {
		if i > 0 {
			s.sql.WriteString(", ")
		}
		s.sql.WriteString(src.metrics[m])
	}
	if q.TotalRows {
		s.sql.WriteString(", count(*) OVER ()")
	}
	from, to := src.days(q.From, q.To)
	p, a, b := s.projectArg(project), s.arg(from), s.arg(to)
	if src.rows != nil {
		s.sql.WriteString(" FROM " + src.rows(&s, p, a, b))
	} else {
		s.sql.WriteString(" FROM " + src.from)
	}
	if hasFlag && !src.flagRows {
		s.sql.WriteString(flagsJoin)
	}
	s.sql.WriteString(" WHERE ")
	fmt.Fprintf(&s.sql, src.where, p, a, b)
	s.versions = fmt.Sprintf(src.versions, p, a, b)
	if t := q.EventType(); t != "" {
		fmt.Fprintf(&s.sql, " AND %s = %s", src.eventType, s.arg(t))
	}
	for _, f := range q.Filters {
		s.sql.WriteString(" AND ")
		s.filter(f, hasFlag)
	}
	if len(q.Dimensions) > 0 {
		s.sql.WriteString(" GROUP BY ")
		for i := range q.Dimensions {
			if i > 0 {
				s.sql.WriteString(", ")
			}
			s.sql.WriteString(strconv.Itoa(i + 1))
		}
	}
	s.sql.WriteString(" ORDER BY ")
	for i, o := range orderOf(q) {
		if i > 0 {
			s.sql.WriteString(", ")
		}
		s.sql.WriteString(strconv.Itoa(o.col))
		if o.desc {
			s.sql.WriteString(" DESC NULLS LAST")
		} else {
			s.sql.WriteString(" ASC NULLS FIRST")
		}
	}
	fmt.Fprintf(&s.sql, " LIMIT %s OFFSET %s", s.arg(q.Limit), s.arg(q.Offset))
	return s.sql.String(), s.args
}

func textDim(d server.Dimension) bool {
	return !d.IsTime() && !d.Boolean() && d != server.DimExitCode
}

type orderCol struct {
	col  int
	desc bool
}

// orderOf is the query's order as output columns: the asked order, then
// by default the time dimension ascending, else the first metric
// descending; then every dimension ascending, so that pages are stable.
func orderOf(q server.Query) []orderCol {
	col := func(by string) int {
		if i := slices.Index(q.Dimensions, server.Dimension(by)); i >= 0 {
			return i + 1
		}
		return len(q.Dimensions) + slices.Index(q.Metrics, server.Metric(by)) + 1
	}
	var out []orderCol
	seen := map[int]bool{}
	add := func(c int, desc bool) {
		if !seen[c] {
			seen[c] = true
			out = append(out, orderCol{c, desc})
		}
	}
	for _, o := range q.OrderBy {
		add(col(o.By), o.Desc)
	}
	if len(q.OrderBy) == 0 {
		timeDim := slices.IndexFunc(q.Dimensions, server.Dimension.IsTime)
		if timeDim >= 0 {
			add(timeDim+1, false)
		}
		add(len(q.Dimensions)+1, true)
	}
	for i := range q.Dimensions {
		add(i+1, false)
	}
	return out
}

// filter writes the condition of f.
func (s *stmt) filter(f server.Filter, hasFlag bool) {
	if (f.Dimension == server.DimFlag || f.Dimension == server.DimFlagValue) && !hasFlag {
		s.runFlagFilter(f)
		return
	}
	exprs := s.exprs
	if exprs == nil {
		exprs = dimExpr
	}
	expr := exprs[f.Dimension]
	switch f.Op {
	case server.OpIs:
		fmt.Fprintf(&s.sql, "%s = ANY(%s)", expr, s.arg(filterValues(f)))
	case server.OpIsNot:
		fmt.Fprintf(&s.sql, "NOT coalesce(%s = ANY(%s), false)", expr, s.arg(filterValues(f)))
	case server.OpContains:
		fmt.Fprintf(&s.sql, "%s ILIKE ANY(%s)", expr, s.arg(likePatterns(f)))
	case server.OpGTE, server.OpLT:
		// The versions that compare are found once, among the distinct
		// versions of the statement's source (s.versions), rather than
		// by parsing the version of every event.
		op := ">="
		if f.Op == server.OpLT {
			op = "<"
		}
		// OFFSET 0 keeps the comparison out of the DISTINCT: else
		// PostgreSQL pushes it down and parses the version of every row.
		fmt.Fprintf(&s.sql, `%s = ANY(ARRAY(SELECT v FROM (%s OFFSET 0) vs(v) WHERE tk_version_key(v) %s tk_version_key(%s)))`,
			expr, s.versions, op, s.arg(f.Values[0].(string)))
	}
}

// runFlagFilter writes a flag or flag_value filter of a query that does
// not group by flag: it keeps the command runs that set one of the flags
// (or one flag to one of the values).
func (s *stmt) runFlagFilter(f server.Filter) {
	var cond string
	if f.Dimension == server.DimFlag {
		cond = "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.metadata->'flags') = 'array' THEN e.metadata->'flags' ELSE '[]' END) AS x WHERE x %s)"
	} else {
		cond = "EXISTS (SELECT 1 FROM jsonb_each_text(CASE WHEN jsonb_typeof(e.metadata->'flag_values') = 'object' THEN e.metadata->'flag_values' ELSE '{}' END) AS v WHERE v.value %s)"
	}
	var match string
	switch f.Op {
	case server.OpContains:
		match = "ILIKE ANY(" + s.arg(likePatterns(f)) + ")"
	default:
		match = "= ANY(" + s.arg(filterValues(f)) + ")"
	}
	c := fmt.Sprintf(cond, match)
	if f.Op == server.OpIsNot {
		c = "NOT " + c
	}
	s.sql.WriteString(c)
}

// filterValues is f's values as one typed array parameter.
func filterValues(f server.Filter) any {
	switch {
	case f.Dimension.Boolean():
		v := make([]bool, len(f.Values))
		for i, x := range f.Values {
			v[i] = x.(bool)
		}
		return v
	case f.Dimension == server.DimExitCode:
		v := make([]int64, len(f.Values))
		for i, x := range f.Values {
			v[i] = x.(int64)
		}
		return v
	}
	v := make([]string, len(f.Values))
	for i, x := range f.Values {
		v[i] = x.(string)
		if f.Dimension == server.DimFlag {
			v[i] = strings.TrimLeft(v[i], "-")
		}
	}
	return v
}

// likePatterns is f's values as ILIKE patterns that contain them.
func likePatterns(f server.Filter) []string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	v := make([]string, len(f.Values))
	for i, x := range f.Values {
		v[i] = "%" + r.Replace(x.(string)) + "%"
	}
	return v
}

// Query answers q over project's events, in a read-only transaction whose
// statements are bounded by the query timeout.
//
// A query for events, users, outcomes, durations and first and last
// times by time, service, version, type, name, OS, arch, CI, Go version,
// outcome or error kind is
// answered from the daily rollup of event counts, one for command runs
// and users by flag (and value), time, service, version and command from
// the rollup of flags; any other from the events.
func (db *DB) Query(ctx context.Context, project int64, q server.Query) (server.Result, error) {
	return db.query(ctx, project, q, false)
}

// QueryEvents answers q with plain SQL over the events table alone: the
// reference answer that tests and benchmarks compare Query with.
func (db *DB) QueryEvents(ctx context.Context, project int64, q server.Query) (server.Result, error) {
	return db.query(ctx, project, q, true)
}

func (db *DB) query(ctx context.Context, project int64, q server.Query, events bool) (server.Result, error) {
	var res server.Result
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		src := func(server.Query) source { return eventsSource }
		if !events {
			// In the transaction's snapshot, as every statement of it.
			bt, err := builtThrough(ctx, tx, project)
			if err != nil {
				return err
			}
			ps := periods{builtThrough: bt, floor: db.retentionFloor()}
			src = func(q server.Query) source { return sourceOf(q, ps) }
			if src(q).from != eventsSource.from {
				if err := noParallel(ctx, tx); err != nil {
					return err
				}
			}
		}
		rows, total, err := queryRows(ctx, tx, project, q, src)
		if err != nil {
			return err
		}
		res.Rows, res.TotalRows = rows, total
		if err := shares(ctx, tx, project, q, res.Rows, src); err != nil {
			return err
		}
		if q.Comparison {
			p := q.Previous()
			prev, _, err := queryRows(ctx, tx, project, p, src)
			if err != nil {
				return err
			}
			if err := shares(ctx, tx, project, p, prev, src); err != nil {
				return err
			}
			attachPrevious(q, res.Rows, prev)
		}
		return nil
	})
	if err != nil {
		return server.Result{}, err
	}
	return res, nil
}

func queryRows(ctx context.Context, tx pgx.Tx, project int64, q server.Query, src func(server.Query) source) ([]server.Row, int64, error) {
	sql, args := buildQuery(project, q, src(q))
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []server.Row
	var total int64
	nd, nm := len(q.Dimensions), len(q.Metrics)
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, 0, err
		}
		for i, v := range vals {
			vals[i] = normalize(v)
		}
		r := server.Row{Dimensions: vals[:nd:nd], Metrics: vals[nd : nd+nm : nd+nm]}
		if q.TotalRows {
			total, _ = vals[nd+nm].(int64)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if q.TotalRows && len(out) == 0 && q.Offset > 0 {
		// Past the last page: count without it.
		cq := q
		cq.Offset, cq.Limit = 0, 1
		r, t, err := queryRows(ctx, tx, project, cq, src)
		if err != nil {
			return nil, 0, err
		}
		if len(r) > 0 {
			total = t
		}
	}
	out = fillTime(q, out)
	return out, total, nil
}

// shares turns the counts of the share metrics of rows into shares of
// their time bucket's totals, which it asks for with the same filters.
func shares(ctx context.Context, tx pgx.Tx, project int64, q server.Query, rows []server.Row, src func(server.Query) source) error {
	var cols []int
	for i, m := range q.Metrics {
		if m == server.MetricUsersShare || m == server.MetricEventsShare {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 || len(rows) == 0 {
		return nil
	}
	tq := q
	tq.Dimensions, tq.OrderBy = nil, nil
	if d := q.TimeDimension(); d != "" {
		tq.Dimensions = []server.Dimension{d}
	}
	tq.Metrics = []server.Metric{server.MetricUsers, server.MetricEvents}
	tq.Limit, tq.Offset, tq.TotalRows, tq.Comparison = server.MaxQueryLimit, 0, false, false
	totals, _, err := queryRows(ctx, tx, project, tq, src)
	if err != nil {
		return err
	}
	byBucket := map[any][]any{}
	for _, t := range totals {
		var b any
		if len(t.Dimensions) > 0 {
			b = t.Dimensions[0]
		}
		byBucket[b] = t.Metrics
	}
	timeCol := slices.IndexFunc(q.Dimensions, server.Dimension.IsTime)
	for _, r := range rows {
		var b any
		if timeCol >= 0 {
			b = r.Dimensions[timeCol]
		}
		tot := byBucket[b]
		for _, c := range cols {
			n, _ := r.Metrics[c].(int64)
			var d int64
			if tot != nil {
				if q.Metrics[c] == server.MetricUsersShare {
					d, _ = tot[0].(int64)
				} else {
					d, _ = tot[1].(int64)
				}
			}
			if d == 0 {
				r.Metrics[c] = nil
				continue
			}
			r.Metrics[c] = float64(n) / float64(d)
		}
	}
	return nil
}

// normalize turns a scanned value into one of the types [server.Row]
// holds.
func normalize(v any) any {
	switch x := v.(type) {
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case time.Time:
		return x.UTC()
	}
	return v
}

// fillTime adds the empty buckets of a time series: when the query groups
// by one time dimension alone, in time order, on its first page, every
// day (week, month) of the range has a row, with zero counts and no
// rates.
func fillTime(q server.Query, rows []server.Row) []server.Row {
	if len(q.Dimensions) != 1 || !q.Dimensions[0].IsTime() || q.Offset > 0 {
		return rows
	}
	if len(q.OrderBy) > 0 && (q.OrderBy[0].By != string(q.Dimensions[0]) || q.OrderBy[0].Desc) {
		return rows
	}
	buckets := server.Buckets(q.Dimensions[0], q.From, q.To)
	if len(buckets) > q.Limit {
		return rows
	}
	have := make(map[time.Time]server.Row, len(rows))
	for _, r := range rows {
		if t, ok := r.Dimensions[0].(time.Time); ok {
			have[t] = r
		}
	}
	out := make([]server.Row, 0, len(buckets))
	for _, b := range buckets {
		if r, ok := have[b]; ok {
			out = append(out, r)
			continue
		}
		out = append(out, server.Row{Dimensions: []any{b}, Metrics: server.EmptyMetrics(q.Metrics)})
	}
	return out
}

// attachPrevious sets each row's Previous: the metrics of the previous
// period's row with the same dimensions, time buckets matched by their
// place in the range (the first day with the first day).
func attachPrevious(q server.Query, rows, prev []server.Row) {
	key := func(r server.Row, from time.Time) string {
		var b strings.Builder
		for i, v := range r.Dimensions {
			if q.Dimensions[i].IsTime() {
				if t, ok := v.(time.Time); ok {
					v = int(t.Sub(from) / (24 * time.Hour))
				}
			}
			fmt.Fprintf(&b, "%T:%v\x1f", v, v)
		}
		return b.String()
	}
	p := q.Previous()
	byKey := make(map[string][]any, len(prev))
	for _, r := range prev {
		byKey[key(r, p.From)] = r.Metrics
	}
	for i := range rows {
		m, ok := byKey[key(rows[i], q.From)]
		if !ok {
			m = server.EmptyMetrics(q.Metrics)
		}
		rows[i].Previous = m
	}
}

// readOnly runs fn in a read-only transaction whose statements time out
// after the query timeout. A timeout is reported as a [server.Error]
// saying so.
func (db *DB) readOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	// One snapshot for every statement: the periods built and their rows,
	// a period and the one before it, counts and their totals.
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return queryError(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Every statement is planned for its own parameters: after five runs
	// of a prepared statement PostgreSQL may keep a generic plan, which
	// for the rollups' period arrays and filters read whole tables (a
	// question of 20 ms took 180 ms from its sixth run on).
	if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true), "+
		"set_config('plan_cache_mode', 'force_custom_plan', true)",
		strconv.FormatInt(db.cfg.QueryTimeout.Milliseconds(), 10)); err != nil {
		return queryError(err)
	}
	if err := fn(tx); err != nil {
		return queryError(err)
	}
	return tx.Commit(ctx)
}

// noParallel turns parallel plans off for the rest of tx: a statement
// over the rollups reads some thousands of rows, which parallel workers
// take longer to start than to read (a question by command over 30 days:
// 41–50 ms with two workers, 9–11 ms without, on two cores).
func noParallel(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SELECT set_config('max_parallel_workers_per_gather', '0', true)")
	return err
}

// queryError turns a statement timeout into a clear 503.
func queryError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" {
		return &server.Error{Kind: server.KindUnavailable, Err: err, RetryAfter: 5 * time.Second,
			Message: "the query took longer than the server allows; ask for a shorter date range or fewer dimensions"}
	}
	var se *server.Error
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("postgres: query: %w", err)
	}
	// The database cannot be reached, or is going away (class 08, or
	// shutting down or starting up: 57P01–57P03), as when a replica the
	// questions go to is down.
	if !errors.As(err, &pgErr) || strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") {
		return &server.Error{Kind: server.KindUnavailable, Err: err, RetryAfter: 5 * time.Second,
			Message: "the database cannot answer questions now, retry later"}
	}
	return fmt.Errorf("postgres: query: %w", err)
}

// exportPage is the number of events the export reads per statement.
const exportPage = 2000

// Export calls fn with each event of project that occurred in [from, to),
// in (occurred_at, event_id) order, after the event after when it is not
// zero. Each page of events is read by a statement of its own and handed
// to fn once its transaction has ended, so that an export of any length
// holds no memory beyond a page, and no statement, snapshot or database
// connection while fn writes; events stored while it runs are exported if
// they sort after the page being read.
func (db *DB) Export(ctx context.Context, project int64, from, to time.Time, after [16]byte, fn func(*server.ExportedEvent) error) error {
	var curAt time.Time
	curID := after
	if after != ([16]byte{}) {
		err := db.pool.QueryRow(ctx, "SELECT occurred_at FROM events WHERE project_id = $1 AND event_id = $2",
			project, after).Scan(&curAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return server.Errorf(server.KindBadRequest, "after: no event of this project has this event_id")
		}
		if err != nil {
			return queryError(err)
		}
		if curAt.Before(from) {
			curAt = from
			curID = [16]byte{}
		}
	} else {
		curAt = from
	}
	page := make([]server.ExportedEvent, 0, exportPage)
	for {
		page = page[:0]
		err := db.readOnly(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT event_id, occurred_at, received_at, service_name, service_version,
    event_type, name, success, duration_ms, exit_code, error_kind, user_id, session_id, sdk_name, sdk_version,
    os, arch, ci, ci_name, go_version, metadata::text
FROM events
WHERE project_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND (occurred_at > $2 OR event_id > $4)
ORDER BY occurred_at, event_id
LIMIT $5`, project, curAt, to, curID, exportPage)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				page = append(page, server.ExportedEvent{})
				ev := &page[len(page)-1]
				var userID, metadata []byte
				if err := rows.Scan(&ev.EventID, &ev.Timestamp, &ev.ReceivedAt, &ev.ServiceName, &ev.ServiceVersion,
					&ev.EventType, &ev.Name, &ev.Success, &ev.DurationMS, &ev.ExitCode, &ev.ErrorKind, &userID,
					&ev.SessionID, &ev.SDKName, &ev.SDKVersion, &ev.OS, &ev.Arch, &ev.CI, &ev.CIName, &ev.GoVersion,
					&metadata); err != nil {
					return err
				}
				copy(ev.UserID[:], userID)
				ev.Metadata = metadata
				ev.Timestamp, ev.ReceivedAt = ev.Timestamp.UTC(), ev.ReceivedAt.UTC()
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		// The page is written once its transaction has ended, so that a
		// client reading slowly holds no connection or snapshot.
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		last := &page[len(page)-1]
		curAt, curID = last.Timestamp, last.EventID
	}
}
