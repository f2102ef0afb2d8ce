package dashboard

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// view is what a page template gets.
type view struct {
	Page     page
	Pages    []page
	Project  server.SessionProject
	Projects []server.SessionProject
	Filters  filters
	Ranges   []struct{ Value, Label string }
	Panels   []shown
	CSRF     string
	Base     string // the project's URL prefix, "/p/ID/"
	From, To string // the range's first and last day
	Problem  string
	Empty    bool // the project has no events at all
	Ingest   string
	Elapsed  time.Duration
	// Retention is how many days the project keeps; Kept is its first
	// kept day, set when the range starts before it.
	Retention int
	Kept      string
	// Rights is the data-rights page's erase form, for admin sessions.
	Rights *rightsForm
}

// rightsForm is the state of the erase form of the data-rights page.
type rightsForm struct {
	Admin   bool   // the session holds the project's admin key
	Enabled bool   // the server can erase (its store has rights)
	UserID  string // the anonymous ID typed
	Confirm bool   // asking to confirm the erasure of UserID
	Result  string // what the erasure did
	Problem string // why it was not done
	status  int    // the page's HTTP status; zero means 200
}

// run answers one panel's query for a project.
func (h *Handler) run(ctx context.Context, projectID int64, a apiQuery) (server.Query, server.Result, error) {
	q, err := server.ParseQuery([]byte(a.JSON()), h.cfg.Now())
	if err != nil {
		return q, server.Result{}, err
	}
	res, err := h.cfg.Querier.Query(ctx, projectID, q)
	return q, res, err
}

// problemOf is the sentence a panel shows for a failed query.
func problemOf(err error) string {
	var e *server.Error
	if errors.As(err, &e) && e.Kind == server.KindBadRequest {
		return e.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "This panel took too long to answer; try a shorter range."
	}
	return "This panel could not be answered now; reload the page to try again."
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	s, p, token, ok := h.project(w, r)
	if !ok {
		return
	}
	pg, found := findPage(r.PathValue("page"))
	if !found {
		http.NotFound(w, r)
		return
	}
	h.show(w, r, s, p, token, pg, nil)
}

// show renders a page of project p, with form the erase form's state on
// the data-rights page (nil: an empty form).
func (h *Handler) show(w http.ResponseWriter, r *http.Request, s server.Session, p server.SessionProject, token string,
	pg page, form *rightsForm) {
	start := time.Now()
	release := h.acquire(w, r)
	if release == nil {
		return
	}
	defer release()
	f := parseFilters(r.URL.Query())
	base := "/p/" + strconv.FormatInt(p.ID, 10) + "/"
	v := view{Page: pg, Pages: pages, Project: p, Projects: s.Projects, Filters: f, Ranges: ranges,
		CSRF: csrfToken(token), Base: base, Problem: f.Problem, Ingest: h.ingestURL(r)}
	if pg.Slug == rightsSlug {
		if form == nil {
			form = &rightsForm{}
		}
		form.Admin, form.Enabled = p.KeyKind == server.KeyAdmin, h.cfg.Rights != nil
		v.Rights = form
	}
	if pr, ok := problems[r.URL.Query().Get("problem")]; ok {
		v.Problem = pr
	}
	now := h.cfg.Now()
	// Whether the project has any event at all, for the empty state.
	_, all, err := h.run(r.Context(), p.ID, apiQuery{Metrics: []string{"events"}, DateRange: "all"})
	if err == nil && (len(all.Rows) == 0 || number(all.Rows[0].Metrics[0]) == 0) {
		v.Empty = true
	}
	// The panels are answered side by side, at most panelQueries at once.
	v.Panels = make([]shown, len(pg.Panels))
	var wg sync.WaitGroup
	sem := make(chan struct{}, panelQueries)
	for i, pn := range pg.Panels {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v.Panels[i] = h.panel(r.Context(), pn, p.ID, f, base, now)
		}()
	}
	wg.Wait()
	for _, sh := range v.Panels {
		if sh.From != "" {
			v.From, v.To = sh.From, sh.To
			break
		}
	}
	if p.Retention > 0 {
		v.Retention = int(p.Retention / (24 * time.Hour))
		kept := now.UTC().Add(-p.Retention).Format(time.DateOnly)
		if v.From != "" && v.From < kept {
			v.Kept = kept
		}
	}
	v.Elapsed = time.Since(start).Round(100 * time.Microsecond)
	status := http.StatusOK
	if form != nil && form.status != 0 {
		status = form.status
	}
	h.render(w, status, "page.html", v)
}

// panelQueries is how many queries of one page run at once.
const panelQueries = 3

// panel answers one panel of a page.
func (h *Handler) panel(ctx context.Context, pn panel, project int64, f filters, base string, now time.Time) shown {
	sh := shown{panel: pn, CSV: base + "csv/" + pn.ID + f.Query()}
	if fn, ok := custom[pn.ID]; ok {
		a, err := fn(h, ctx, project, f)
		if err != nil {
			sh.Problem = problemOf(err)
		}
		sh.Table, sh.Chart, sh.Totals, sh.API, sh.Empty = a.Table, a.Chart, a.Totals, a.API, len(a.Table.Rows) == 0
		return sh
	}
	a := pn.Query(f, now)
	sh.API = "POST /api/v2/query " + a.JSON()
	q, res, err := h.run(ctx, project, a)
	if err != nil {
		sh.Problem = problemOf(err)
		return sh
	}
	sh.From, sh.To = q.From.Format(time.DateOnly), q.To.Format(time.DateOnly)
	sh.Table = tableOf(a, q, res, func(dim string, val any) string {
		if dim == "command" {
			if s, ok := val.(string); ok && s != "" {
				return base + "commands" + f.With("command", s)
			}
		}
		return ""
	})
	sh.Empty = len(res.Rows) == 0
	if pn.Chart == "totals" {
		sh.Totals = totals(a, res)
	} else {
		sh.Chart = chartOf(pn, a, q, res)
	}
	return sh
}

// totals turns a one-row result with its previous period into figures.
func totals(a apiQuery, res server.Result) []figure {
	var out []figure
	if len(res.Rows) == 0 {
		return nil
	}
	r := res.Rows[0]
	for i, m := range a.Metrics {
		fig := figure{Label: titles[m], Value: format(m, r.Metrics[i]).Text}
		if i < len(r.Previous) {
			fig.Change, fig.Up, fig.Down = change(m, r.Metrics[i], r.Previous[i])
		}
		out = append(out, fig)
	}
	return out
}

// titles are the headline names of metrics.
var titles = map[string]string{"events": "Events", "users": "Users", "success_rate": "Success rate"}

// change describes the change of a metric against the previous period:
// percent for counts, points for rates.
func change(m string, cur, prev any) (string, bool, bool) {
	c, p := number(cur), number(prev)
	switch {
	case c != c || p != p: // NaN: no value on one side
		return "no previous value", false, false
	case strings.HasSuffix(m, "_rate"):
		d := 100 * (c - p)
		return fmt.Sprintf("%+.1f points", d), d > 0, d < 0
	case p == 0:
		if c == 0 {
			return "no change", false, false
		}
		return "new", true, false
	}
	d := 100 * (c - p) / p
	return fmt.Sprintf("%+.1f%%", d), d > 0, d < 0
}

// active counts the users active on the range's last day, in its last 7
// and last 30 days, each against the same span before it.
func (h *Handler) active(ctx context.Context, projectID int64, f filters) ([]figure, table, error) {
	q, err := server.ParseQuery([]byte(q(f, false, []string{"users"}).JSON()), h.cfg.Now())
	if err != nil {
		return nil, table{}, err
	}
	to := q.To
	t := table{Columns: []string{"span", "from", "to", "users", "previous_users"}}
	var figs []figure
	for _, span := range []struct {
		label string
		days  int
	}{{"Daily active", 1}, {"Weekly active", 7}, {"Monthly active", 30}} {
		from := to.AddDate(0, 0, 1-span.days)
		a := apiQuery{Metrics: []string{"users"}, Filters: f.apiFilters(false),
			DateRange: []string{from.Format(time.DateOnly), to.Format(time.DateOnly)}}.compare()
		_, res, err := h.run(ctx, projectID, a)
		if err != nil {
			return nil, table{}, err
		}
		var cur, prev any = int64(0), int64(0)
		if len(res.Rows) > 0 {
			cur = res.Rows[0].Metrics[0]
			if len(res.Rows[0].Previous) > 0 {
				prev = res.Rows[0].Previous[0]
			}
		}
		fig := figure{Label: span.label, Value: format("users", cur).Text}
		fig.Change, fig.Up, fig.Down = change("users", cur, prev)
		figs = append(figs, fig)
		t.Rows = append(t.Rows, []cell{{Text: span.label, Raw: span.label}, format("time:day", from), format("time:day", to),
			format("users", cur), format("users", prev)})
	}
	return figs, t, nil
}

// csv downloads a panel's table, the same rows with raw values (RFC 4180).
func (h *Handler) csv(w http.ResponseWriter, r *http.Request) {
	_, p, _, ok := h.project(w, r)
	if !ok {
		return
	}
	pn, found := findPanel(r.PathValue("panel"))
	if !found {
		http.NotFound(w, r)
		return
	}
	release := h.acquire(w, r)
	if release == nil {
		return
	}
	defer release()
	f := parseFilters(r.URL.Query())
	var t table
	if fn, ok := custom[pn.ID]; ok {
		a, err := fn(h, r.Context(), p.ID, f)
		if err != nil {
			http.Error(w, problemOf(err), http.StatusServiceUnavailable)
			return
		}
		t = a.Table
	} else {
		a := pn.Query(f, h.cfg.Now())
		q, res, err := h.run(r.Context(), p.ID, a)
		if err != nil {
			http.Error(w, problemOf(err), http.StatusServiceUnavailable)
			return
		}
		t = tableOf(a, q, res, nil)
	}
	name := fmt.Sprintf("%s-%s.csv", safeName(p.Name), pn.ID)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	cw.Write(t.Columns)
	for _, row := range t.Rows {
		rec := make([]string, len(row))
		for i, c := range row {
			rec[i] = spreadsheetSafe(c.Raw)
		}
		cw.Write(rec)
	}
	cw.Flush()
}

// spreadsheetSafe keeps a value that a spreadsheet would run as a formula
// from being one, as the query API's CSV does.
func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return "'" + s
		}
	}
	return s
}

// safeName keeps the letters, digits, dots and dashes of a project name,
// for a file name.
func safeName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "project"
	}
	return b.String()
}

// ingestURL is the collection address shown in the instrumenting example.
func (h *Handler) ingestURL(r *http.Request) string {
	if h.cfg.IngestURL != "" {
		return h.cfg.IngestURL
	}
	scheme := "http"
	if secure(r) {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host}).String()
}

// funcs are the templates' functions.
var funcs = template.FuncMap{
	"eq": func(a, b any) bool { return a == b },
}
