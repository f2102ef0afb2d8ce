package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"slices"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/dashboard/chart"
)

// answer is what a panel that is not one query of /api/v2/query shows.
type answer struct {
	Table  table
	Chart  template.HTML
	Totals []figure
	API    string
}

// The panels answered by the query API's endpoints of their own
// (retention, versions, quality) or by several queries (active users).
var custom = map[string]func(h *Handler, ctx context.Context, project int64, f filters) (answer, error){
	"active":   (*Handler).activeAnswer,
	"releases": (*Handler).releases,
	"cohorts":  (*Handler).cohorts,
	"weekly":   (*Handler).weekly,
	"quality":  (*Handler).quality,
	"rejected": (*Handler).rejected,
}

func (h *Handler) activeAnswer(ctx context.Context, project int64, f filters) (answer, error) {
	figs, t, err := h.active(ctx, project, f)
	return answer{Totals: figs, Table: t}, err
}

// body is the JSON of an endpoint's query over the view's range.
func body(f filters, extra map[string]any) []byte {
	m := map[string]any{"date_range": f.dateRange()}
	if fs := f.apiFilters(false); len(fs) > 0 {
		m["filters"] = fs
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// releases lists each version with how long it took to reach half of the
// active users (POST /api/v2/versions).
func (h *Handler) releases(ctx context.Context, project int64, f filters) (answer, error) {
	b := body(f, nil)
	q, err := server.ParseVersionsQuery(b, h.cfg.Now())
	if err != nil {
		return answer{}, err
	}
	vs, err := h.cfg.Querier.Versions(ctx, project, q)
	if err != nil {
		return answer{}, err
	}
	t := table{Columns: []string{"version", "first_seen", "users", "events", "half_reached", "days_to_half"}}
	var bars []chart.Bar
	for _, v := range vs {
		half, days := cell{Text: "not yet", Raw: ""}, cell{Text: "—", Raw: "", Num: true}
		if v.HalfReached != nil {
			half = format("time:day", *v.HalfReached)
			d := v.DaysToHalf()
			unit := "days"
			if d == 1 {
				unit = "day"
			}
			days = cell{Text: fmt.Sprintf("%d %s", d, unit), Raw: fmt.Sprint(d), Num: true}
			bars = append(bars, chart.Bar{Label: v.Version, Value: float64(d), Unit: unit})
		}
		t.Rows = append(t.Rows, []cell{format("version", v.Version), format("time:day", v.FirstSeen),
			format("users", v.Users), format("events", v.Events), half, days})
	}
	a := answer{Table: t, API: "POST /api/v2/versions " + string(b)}
	if len(bars) > 0 {
		a.Chart = chart.Bars{Title: "Days each release took to reach half of the active users", Bars: bars}.SVG()
	}
	return a, nil
}

// retention answers the retention query of the view (12 weeks).
func (h *Handler) retention(ctx context.Context, project int64, f filters) (server.Retention, string, error) {
	b := body(f, map[string]any{"weeks": server.DefaultRetentionWeeks})
	q, err := server.ParseRetentionQuery(b, h.cfg.Now())
	if err != nil {
		return server.Retention{}, "", err
	}
	r, err := h.cfg.Querier.Retention(ctx, project, q)
	return r, "POST /api/v2/retention " + string(b), err
}

// cohorts is the weekly cohort table, each cell's share heat-coloured.
func (h *Handler) cohorts(ctx context.Context, project int64, f filters) (answer, error) {
	r, api, err := h.retention(ctx, project, f)
	if err != nil {
		return answer{}, err
	}
	t := table{Columns: []string{"cohort", "users"}}
	for k := 0; k < server.DefaultRetentionWeeks; k++ {
		t.Columns = append(t.Columns, fmt.Sprintf("week_%d", k))
	}
	var curves []chart.Series
	var labels []string
	for k := 0; k < server.DefaultRetentionWeeks; k++ {
		labels = append(labels, fmt.Sprintf("week %d", k))
	}
	for _, c := range r.Cohorts {
		row := []cell{format("time:week", c.Week), format("users", c.Users)}
		s := chart.Series{Name: c.Week.Format(time.DateOnly)}
		for k := 0; k < server.DefaultRetentionWeeks; k++ {
			if k >= len(c.Active) || c.Users == 0 {
				row = append(row, cell{Text: "", Raw: ""})
				s.Values = append(s.Values, nanValue)
				continue
			}
			share := float64(c.Active[k]) / float64(c.Users)
			row = append(row, cell{Text: fmt.Sprintf("%.0f%%", 100*share), Raw: fmt.Sprint(c.Active[k]), Num: true,
				Class: fmt.Sprintf("heat heat-%d", int(share*10+0.5))})
			s.Values = append(s.Values, share)
		}
		t.Rows = append(t.Rows, row)
		curves = append(curves, s)
	}
	a := answer{Table: t, API: api}
	if len(curves) > 8 {
		curves = curves[len(curves)-8:]
	}
	if len(curves) > 0 {
		a.Chart = chart.Line{Title: "Retention curves: share of each cohort active k weeks later", Labels: labels,
			Series: curves, Percent: true}.SVG()
	}
	return a, nil
}

// weekly is new, returning and dormant users per week.
func (h *Handler) weekly(ctx context.Context, project int64, f filters) (answer, error) {
	r, api, err := h.retention(ctx, project, f)
	if err != nil {
		return answer{}, err
	}
	t := table{Columns: []string{"week", "active", "new", "returning", "dormant"}}
	series := []chart.Series{{Name: "new"}, {Name: "returning"}, {Name: "dormant"}}
	var labels []string
	for _, w := range r.Weeks {
		t.Rows = append(t.Rows, []cell{format("time:week", w.Week), format("active", w.Active), format("new", w.New),
			format("returning", w.Returning), format("dormant", w.Dormant)})
		labels = append(labels, w.Week.Format(time.DateOnly))
		series[0].Values = append(series[0].Values, float64(w.New))
		series[1].Values = append(series[1].Values, float64(w.Returning))
		series[2].Values = append(series[2].Values, float64(w.Dormant))
	}
	a := answer{Table: t, API: api}
	if len(labels) > 0 {
		a.Chart = chart.Line{Title: "New, returning and dormant users per week", Labels: labels, Series: series}.SVG()
	}
	return a, nil
}

// qualityDays answers the data quality query of the view's range.
func (h *Handler) qualityDays(ctx context.Context, project int64, f filters) ([]server.QualityDay, string, error) {
	b, _ := json.Marshal(map[string]any{"date_range": f.dateRange()})
	q, err := server.ParseQualityQuery(b, h.cfg.Now())
	if err != nil {
		return nil, "", err
	}
	days, err := h.cfg.Querier.Quality(ctx, project, q)
	return days, "POST /api/v2/quality " + string(b), err
}

// quality is, per day, the events dropped by clients, rejected by the
// server and the values folded by the caps.
func (h *Handler) quality(ctx context.Context, project int64, f filters) (answer, error) {
	days, api, err := h.qualityDays(ctx, project, f)
	if err != nil {
		return answer{}, err
	}
	t := table{Columns: []string{"day", "dropped", "rejected", "folded"}}
	series := []chart.Series{{Name: "dropped by clients"}, {Name: "rejected by the server"}, {Name: "values folded"}}
	var labels []string
	for _, d := range days {
		rej, fold := sum(d.Rejected), sum(d.Folded)
		t.Rows = append(t.Rows, []cell{format("time:day", d.Day), format("dropped", d.Dropped), format("rejected", rej),
			format("folded", fold)})
		labels = append(labels, d.Day.Format(time.DateOnly))
		series[0].Values = append(series[0].Values, float64(d.Dropped))
		series[1].Values = append(series[1].Values, float64(rej))
		series[2].Values = append(series[2].Values, float64(fold))
	}
	a := answer{Table: t, API: api}
	if len(labels) > 0 {
		a.Chart = chart.Line{Title: "Events dropped, rejected and values folded per day", Labels: labels, Series: series}.SVG()
	}
	return a, nil
}

// rejected totals the range's rejections by reason and folds by dimension.
func (h *Handler) rejected(ctx context.Context, project int64, f filters) (answer, error) {
	days, api, err := h.qualityDays(ctx, project, f)
	if err != nil {
		return answer{}, err
	}
	totals := map[[2]string]int64{}
	for _, d := range days {
		for r, n := range d.Rejected {
			totals[[2]string{"rejected", r}] += n
		}
		for dim, n := range d.Folded {
			totals[[2]string{"folded", dim}] += n
		}
	}
	keys := make([][2]string, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	t := table{Columns: []string{"what", "reason_or_dimension", "events"}}
	for _, k := range keys {
		t.Rows = append(t.Rows, []cell{{Text: k[0], Raw: k[0]}, format("reason", k[1]), format("events", totals[k])})
	}
	return answer{Table: t, API: api}, nil
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// nanValue marks a chart point without a value.
var nanValue = math.NaN()
