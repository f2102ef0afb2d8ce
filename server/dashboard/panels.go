package dashboard

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/dashboard/chart"
)

// A panel is one query of the query API and how it is drawn: a chart and,
// always, the table of the rows behind it, which its CSV download writes
// as they are.
type panel struct {
	ID    string
	Title string
	// Note explains the panel in a sentence.
	Note string
	// Chart is "line" (the first metric over the time dimension, the
	// previous period dashed when Compare), "bars" (the first metric per
	// row), "area" (the first metric's share per second dimension over
	// the time dimension, percent-stacked), "totals" (one row of figures)
	// or "" (table only).
	Chart string
	// Query builds the query's JSON from the view's filters.
	Query func(f filters, now time.Time) apiQuery
	// Wide panels take the page's full width.
	Wide bool
}

// apiQuery is a query in the query API's JSON form.
type apiQuery struct {
	Metrics    []string   `json:"metrics"`
	Dimensions []string   `json:"dimensions,omitempty"`
	Filters    []any      `json:"filters,omitempty"`
	DateRange  any        `json:"date_range"`
	OrderBy    [][]string `json:"order_by,omitempty"`
	Pagination *struct {
		Limit int `json:"limit"`
	} `json:"pagination,omitempty"`
	Include *struct {
		Comparison string `json:"comparison,omitempty"`
	} `json:"include,omitempty"`
}

// q starts a query over the view's range and filters.
func q(f filters, skipCommand bool, metrics []string, dims ...string) apiQuery {
	return apiQuery{Metrics: metrics, Dimensions: dims, Filters: f.apiFilters(skipCommand), DateRange: f.dateRange()}
}

func (a apiQuery) limit(n int) apiQuery {
	a.Pagination = &struct {
		Limit int `json:"limit"`
	}{n}
	return a
}

func (a apiQuery) order(by string, desc bool) apiQuery {
	dir := "asc"
	if desc {
		dir = "desc"
	}
	a.OrderBy = append(a.OrderBy, []string{by, dir})
	return a
}

func (a apiQuery) compare() apiQuery {
	a.Include = &struct {
		Comparison string `json:"comparison,omitempty"`
	}{"previous_period"}
	return a
}

func (a apiQuery) where(filter []any) apiQuery {
	a.Filters = append(a.Filters, filter)
	return a
}

// JSON is the query as the API takes it.
func (a apiQuery) JSON() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// page is a page of the dashboard: its panels, in order.
type page struct {
	Slug, Title string
	// Intro is the question the page answers.
	Intro  string
	Panels []panel
}

// timeDim is the time dimension that suits the range: days up to 90 days,
// weeks beyond.
func timeDim(f filters) string {
	if f.Range == "180d" {
		return "time:week"
	}
	if f.Range == "custom" {
		from, _ := time.Parse(time.DateOnly, f.From)
		to, _ := time.Parse(time.DateOnly, f.To)
		if to.Sub(from) > 92*24*time.Hour {
			return "time:week"
		}
	}
	return "time:day"
}

var pages = []page{
	{Slug: "", Title: "Overview", Intro: "What your users did over the range, against the period before it.", Panels: []panel{
		{ID: "totals", Title: "Totals", Chart: "totals", Wide: true,
			Note: "Events, distinct users and the share of runs that succeeded, against the previous period of the same length.",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users", "success_rate"}).compare()
			}},
		{ID: "active", Title: "Active users", Chart: "totals", Wide: true,
			Note: "Users active on the range's last day (DAU), in its last 7 days (WAU) and in its last 30 days (MAU), against the period before each."},
		{ID: "usage", Title: "Usage over time", Chart: "line", Wide: true,
			Note: "Events per day (per week beyond 90 days); the dashed line is the previous period.",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users"}, timeDim(f)).order(timeDim(f), false).compare()
			}},
		{ID: "top-commands", Title: "Top commands", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users", "success_rate"}, "command").order("events", true).limit(10)
			}},
		{ID: "top-features", Title: "Top features", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, true, []string{"events", "users"}, "feature").order("events", true).limit(10)
			}},
		{ID: "version-split", Title: "Versions in use", Chart: "bars",
			Note: "Share of the range's active users on each version.",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"users", "users_share"}, "version").order("users", true).limit(10)
			}},
	}},
	{Slug: "commands", Title: "Commands", Intro: "Which commands run, how often they fail and how long they take. Pick a command to drill down.", Panels: []panel{
		{ID: "commands", Title: "Commands", Chart: "bars", Wide: true,
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users", "success_rate", "duration_p50", "duration_p95"}, "command").
					order("events", true).limit(100)
			}},
		{ID: "command-errors", Title: "Error kinds", Chart: "bars",
			Note: "Runs by kind of error (with a command picked, that command's); (none) are the runs without one.",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users"}, "error_kind").
					where([]any{"is", "event_type", []string{"command_executed"}}).order("events", true).limit(20)
			}},
		{ID: "command-runs", Title: "Runs over time", Chart: "line",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "success_rate"}, timeDim(f)).
					where([]any{"is", "event_type", []string{"command_executed"}}).order(timeDim(f), false)
			}},
	}},
	{Slug: "flags", Title: "Flags", Intro: "Does anyone use --watch? How often each flag is set, by how many users, and the values of the flags whose values you collect.", Panels: []panel{
		{ID: "flags", Title: "Flags by command", Chart: "bars", Wide: true,
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users"}, "command", "flag").order("events", true).limit(200)
			}},
		{ID: "flag-values", Title: "Collected values", Wide: true,
			Note: "Only the flags whose values the tool's author chose to collect have values here.",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "users"}, "command", "flag", "flag_value").
					where([]any{"is_not", "flag_value", []string{""}}).order("events", true).limit(200)
			}},
	}},
	{Slug: "features", Title: "Features & methods", Intro: "Can we drop the old API? Use of each feature and method, by version, and when each was last used.", Panels: []panel{
		{ID: "features", Title: "Features", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, true, []string{"events", "users", "last_seen"}, "feature").order("events", true).limit(100)
			}},
		{ID: "methods", Title: "Methods", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, true, []string{"events", "users", "last_seen"}, "method").order("events", true).limit(100)
			}},
		{ID: "features-by-version", Title: "Features by version", Wide: true,
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, true, []string{"events", "users"}, "feature", "version").order("events", true).limit(200)
			}},
		{ID: "methods-by-version", Title: "Methods by version", Wide: true,
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, true, []string{"events", "users"}, "method", "version").order("events", true).limit(200)
			}},
	}},
	{Slug: "versions", Title: "Versions", Intro: "How fast releases are adopted: each version's share of active users over time.", Panels: []panel{
		{ID: "adoption", Title: "Adoption", Chart: "area", Wide: true,
			Note: "Share of each day's active users on each version (the eight largest; the rest as other).",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"users", "users_share"}, timeDim(f), "version").order(timeDim(f), false).limit(10000)
			}},
		{ID: "releases", Title: "Time to half of the active users", Wide: true,
			Note: "For each release: its first day, and the first day on which half of the day's active users ran it or a later one."},
		{ID: "versions", Title: "Versions", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"users", "users_share", "events", "first_seen", "last_seen"}, "version").
					order("users", true).limit(100)
			}},
	}},
	{Slug: "platforms", Title: "Platforms", Intro: "Where your tool runs.", Panels: []panel{
		{ID: "os", Title: "Operating systems", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"users", "users_share", "events"}, "os").order("users", true).limit(50)
			}},
		{ID: "arch", Title: "Architectures", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"users", "users_share", "events"}, "arch").order("users", true).limit(50)
			}},
		{ID: "go-version", Title: "Go versions", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"users", "users_share", "events"}, "go_version").order("users", true).limit(50)
			}},
		{ID: "ci", Title: "CI", Chart: "bars",
			Note: "Runs in continuous integration against runs by people.",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"events", "events_share", "users"}, "ci").order("events", true)
			}},
	}},
	{Slug: "errors", Title: "Errors", Intro: "Where runs fail: failure rates by command, operating system and version.", Panels: []panel{
		{ID: "failures-by-command", Title: "By command", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"failure_rate", "events", "users"}, "command").order("failure_rate", true).limit(50)
			}},
		{ID: "failures-by-os", Title: "By operating system", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"failure_rate", "events"}, "os").where([]any{"is", "event_type", []string{"command_executed"}}).
					order("failure_rate", true).limit(50)
			}},
		{ID: "failures-by-version", Title: "By version", Chart: "bars",
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"failure_rate", "events"}, "version").where([]any{"is", "event_type", []string{"command_executed"}}).
					order("failure_rate", true).limit(50)
			}},
		{ID: "failures", Title: "Command × OS × version", Wide: true,
			Query: func(f filters, _ time.Time) apiQuery {
				return q(f, false, []string{"failure_rate", "events", "users"}, "command", "os", "version").
					order("events", true).limit(200)
			}},
	}},
}

func init() {
	pages = append(pages,
		page{Slug: "retention", Title: "Retention", Intro: "Do users come back? Weekly cohorts by the week users were first seen, and the share of each active in the weeks after.", Panels: []panel{
			{ID: "cohorts", Title: "Weekly cohorts", Wide: true,
				Note: "Each row is the users first seen in a week; each cell the share of them active k weeks later (the CSV has the counts)."},
			{ID: "weekly", Title: "New, returning and dormant users", Wide: true,
				Note: "Dormant users were active the week before and not in this one."},
		}},
		page{Slug: "quality", Title: "Data quality", Intro: "What did not arrive as sent: events dropped by clients, events the server rejected, values folded into (other) by the cardinality caps.", Panels: []panel{
			{ID: "quality", Title: "Per day", Wide: true},
			{ID: "rejected", Title: "By reason", Wide: true},
		}},
	)
}

// findPage returns the page of a slug.
func findPage(slug string) (page, bool) {
	for _, p := range pages {
		if p.Slug == slug {
			return p, true
		}
	}
	return page{}, false
}

// findPanel returns the panel of an id.
func findPanel(id string) (panel, bool) {
	for _, p := range pages {
		for _, pn := range p.Panels {
			if pn.ID == id {
				return pn, true
			}
		}
	}
	return panel{}, false
}

// table is what a panel shows: its columns and rows, formatted, and the
// same values raw for the CSV download.
type table struct {
	Columns []string
	Rows    [][]cell
}

// cell is one value of a table.
type cell struct {
	Text  string // as shown
	Raw   string // as downloaded
	Num   bool   // right-aligned
	Link  string // a drill-down link, or ""
	Class string // extra classes of the cell, such as its heat
}

// shown is a panel as rendered.
type shown struct {
	panel
	Chart   template.HTML
	Table   table
	Totals  []figure
	Problem string
	API     string // the query's JSON
	CSV     string // the download's URL
	Empty   bool
	// From and To are the range the query covered, as UTC days.
	From, To string
}

// figure is one headline number with its change.
type figure struct {
	Label, Value, Change string
	Up, Down             bool
}

// columns returns the column names of a result of query a.
func columns(a apiQuery, previous bool) []string {
	cols := make([]string, 0, len(a.Dimensions)+2*len(a.Metrics))
	for _, d := range a.Dimensions {
		cols = append(cols, d)
	}
	cols = append(cols, a.Metrics...)
	if previous {
		for _, m := range a.Metrics {
			cols = append(cols, "previous_"+m)
		}
	}
	return cols
}

// tableOf formats a result.
func tableOf(a apiQuery, q server.Query, res server.Result, link func(dim string, v any) string) table {
	t := table{Columns: columns(a, q.Comparison)}
	for _, r := range res.Rows {
		row := make([]cell, 0, len(t.Columns))
		for i, v := range r.Dimensions {
			c := format(a.Dimensions[i], v)
			if link != nil {
				c.Link = link(a.Dimensions[i], v)
			}
			row = append(row, c)
		}
		for i, v := range r.Metrics {
			row = append(row, format(a.Metrics[i], v))
		}
		if q.Comparison {
			for i := range a.Metrics {
				var v any
				if i < len(r.Previous) {
					v = r.Previous[i]
				}
				row = append(row, format(a.Metrics[i], v))
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// format formats one value of a column.
func format(col string, v any) cell {
	switch x := v.(type) {
	case nil:
		return cell{Text: "—", Raw: ""}
	case int64:
		return cell{Text: thousands(x), Raw: fmt.Sprint(x), Num: true}
	case float64:
		raw := fmt.Sprintf("%.6g", x)
		switch {
		case strings.HasSuffix(col, "_rate") || strings.HasSuffix(col, "_share"):
			return cell{Text: fmt.Sprintf("%.1f%%", 100*x), Raw: raw, Num: true}
		case strings.HasPrefix(col, "duration_"):
			return cell{Text: duration(x), Raw: raw, Num: true}
		}
		return cell{Text: fmt.Sprintf("%.1f", x), Raw: raw, Num: true}
	case bool:
		if col == "ci" {
			if x {
				return cell{Text: "CI", Raw: "true"}
			}
			return cell{Text: "people", Raw: "false"}
		}
		return cell{Text: fmt.Sprint(x), Raw: fmt.Sprint(x)}
	case time.Time:
		if strings.HasPrefix(col, "time:") {
			s := x.UTC().Format(time.DateOnly)
			return cell{Text: s, Raw: s}
		}
		s := x.UTC().Format("2006-01-02 15:04 UTC")
		return cell{Text: s, Raw: x.UTC().Format(time.RFC3339)}
	case string:
		if x == "" {
			return cell{Text: "(none)", Raw: ""}
		}
		return cell{Text: x, Raw: x}
	}
	s := fmt.Sprint(v)
	return cell{Text: s, Raw: s}
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// duration writes milliseconds as a duration.
func duration(ms float64) string {
	switch {
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return fmt.Sprintf("%.1f min", ms/60_000)
}

// number returns a metric value as a float.
func number(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

// label returns a dimension value as a chart label.
func label(col string, v any) string { return format(col, v).Text }

// chartOf draws a panel's chart from its result.
func chartOf(p panel, a apiQuery, q server.Query, res server.Result) template.HTML {
	if len(res.Rows) == 0 {
		return ""
	}
	metric := a.Metrics[0]
	percent := strings.HasSuffix(metric, "_rate") || strings.HasSuffix(metric, "_share")
	switch p.Chart {
	case "line":
		var labels []string
		cur := chart.Series{Name: metric}
		prev := chart.Series{Name: "previous period", Class: "previous"}
		for _, r := range res.Rows {
			labels = append(labels, label(a.Dimensions[0], r.Dimensions[0]))
			cur.Values = append(cur.Values, number(r.Metrics[0]))
			if q.Comparison && len(r.Previous) > 0 {
				prev.Values = append(prev.Values, number(r.Previous[0]))
			}
		}
		series := []chart.Series{cur}
		if q.Comparison {
			series = append(series, prev)
		}
		return chart.Line{Title: p.Title + ": " + metric, Labels: labels, Series: series, Percent: percent}.SVG()
	case "bars":
		var bars []chart.Bar
		for i, r := range res.Rows {
			if i == 25 {
				break
			}
			parts := make([]string, len(r.Dimensions))
			for j, d := range r.Dimensions {
				parts[j] = label(a.Dimensions[j], d)
			}
			b := chart.Bar{Label: strings.Join(parts, " "), Value: number(r.Metrics[0])}
			if math.IsNaN(b.Value) {
				b.Value = 0
			}
			bars = append(bars, b)
		}
		return chart.Bars{Title: p.Title + ": " + metric, Bars: bars, Percent: percent}.SVG()
	case "area":
		return adoption(p, a, res)
	}
	return ""
}

// adoption draws users per version over time, percent-stacked: the eight
// versions with the most user-days, the rest as "other".
func adoption(p panel, a apiQuery, res server.Result) template.HTML {
	var labels []string
	at := map[string]int{}
	weight := map[string]float64{}
	for _, r := range res.Rows {
		day := label(a.Dimensions[0], r.Dimensions[0])
		if _, ok := at[day]; !ok {
			at[day] = len(labels)
			labels = append(labels, day)
		}
		weight[label("version", r.Dimensions[1])] += number(r.Metrics[0])
	}
	var versions []string
	for v := range weight {
		versions = append(versions, v)
	}
	sortByWeight(versions, weight)
	top := map[string]int{}
	for i, v := range versions {
		if i == 8 {
			break
		}
		top[v] = i
	}
	series := make([]chart.Series, min(len(versions), 8))
	for i := range series {
		series[i] = chart.Series{Name: versions[i], Values: make([]float64, len(labels))}
	}
	if len(versions) > 8 {
		series = append(series, chart.Series{Name: "other", Values: make([]float64, len(labels))})
	}
	for _, r := range res.Rows {
		i, ok := top[label("version", r.Dimensions[1])]
		if !ok {
			i = len(series) - 1
		}
		series[i].Values[at[label(a.Dimensions[0], r.Dimensions[0])]] += number(r.Metrics[0])
	}
	return chart.StackedArea{Title: p.Title + ": share of active users by version", Labels: labels, Series: series}.SVG()
}

// sortByWeight sorts names by weight, largest first, then by name.
func sortByWeight(names []string, weight map[string]float64) {
	for i := 1; i < len(names); i++ {
		for j := i; j > 0; j-- {
			a, b := names[j-1], names[j]
			if weight[a] > weight[b] || (weight[a] == weight[b] && a < b) {
				break
			}
			names[j-1], names[j] = b, a
		}
	}
}
