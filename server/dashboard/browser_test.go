package dashboard_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server/internal/browsertest"
)

// screenshots is where the browser test saves a screenshot of every page:
// $TK_SCREENSHOTS (make screenshots sets docs/screenshots), else a
// temporary directory.
func screenshots(t *testing.T) string {
	if d := os.Getenv("TK_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// An author signs in with the read key in a real browser, goes through
// every page with filters, downloads a panel's CSV and signs out; wrong
// keys do not get in, and one project's session never shows another's.
func TestInBrowser(t *testing.T) {
	s := newSite(t)
	b := browsertest.New(t)
	shots := screenshots(t)
	p := b.NewPage(t)

	p.Go(s.srv.URL + "/")
	if !strings.HasSuffix(p.URL(), "/signin") {
		t.Fatalf("signed out, / went to %s", p.URL())
	}
	p.Screenshot(filepath.Join(shots, "signin.png"))

	// Keys that must not get in (in a page of their own: the refusals are
	// 401 answers, which the console notes).
	wrong := b.NewPage(t)
	for _, c := range []struct{ name, key, want string }{
		{"write key", s.write, "write key"},
		{"revoked read key", s.revoked, "revoked"},
		{"wrong key", "tk_r_" + strings.Repeat("b", len(s.read)-5), "Unknown key"},
	} {
		wrong.Go(s.srv.URL + "/signin")
		wrong.SetValue("#key", c.key)
		wrong.Submit("form")
		if !strings.HasSuffix(wrong.URL(), "/signin") || !strings.Contains(wrong.Text(".problem"), c.want) {
			t.Fatalf("%s: at %s, %q", c.name, wrong.URL(), wrong.Text("body"))
		}
	}

	p.Go(s.srv.URL + "/signin")
	p.SetValue("#key", s.read)
	p.Submit("form")
	base := fmt.Sprintf("%s/p/%d/", s.srv.URL, s.alpha)
	if p.URL() != base {
		t.Fatalf("after sign-in: %s, want %s", p.URL(), base)
	}
	for _, c := range p.Cookies() {
		if c.Name == "tk_session" && (!c.HTTPOnly || c.SameSite != "Strict") {
			t.Fatalf("session cookie: HttpOnly %v, SameSite %q", c.HTTPOnly, c.SameSite)
		}
	}

	// The overview's events are SQL's.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var events int64
	if err := s.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE project_id = $1 AND occurred_at >= $2`,
		s.alpha, today.AddDate(0, 0, -29)).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if got := p.Texts("#panel-totals dd.value"); len(got) == 0 || got[0] != thousands(events) {
		t.Fatalf("overview events %v, SQL %d", got, events)
	}

	// The top commands' CSV is its table.
	href := p.Attr("#panel-top-commands a.csv", "href")
	status, ctype, body := p.Fetch(href)
	if status != 200 || !strings.HasPrefix(ctype, "text/csv") {
		t.Fatalf("CSV: %d %s", status, ctype)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows := p.Texts("#panel-top-commands tbody tr")
	if len(rows) != len(recs)-1 || len(rows) == 0 {
		t.Fatalf("table %d rows, CSV %d", len(rows), len(recs)-1)
	}
	for i, r := range recs[1:] {
		var n int64
		fmt.Sscan(r[1], &n)
		if cells := strings.Split(rows[i], "\t"); cells[0] != r[0] || cells[1] != thousands(n) {
			t.Errorf("row %d: table %q, CSV %v", i, rows[i], r)
		}
	}

	// Every page, with the filters kept from page to page.
	p.Click(`a[href$="range=7d"]`)
	if !strings.Contains(p.URL(), "range=7d") {
		t.Fatalf("the 7-day preset went to %s", p.URL())
	}
	for _, slug := range []string{"commands", "flags", "features", "versions", "platforms", "errors", "retention", "quality", ""} {
		p.Click(fmt.Sprintf(`nav a[href^="/p/%d/%s?"]`, s.alpha, slug))
		if !strings.Contains(p.URL(), "range=7d") {
			t.Errorf("%s: the range filter was lost: %s", slug, p.URL())
		}
		if probs := p.Texts(".panel-problem"); len(probs) > 0 {
			t.Errorf("%s: %v", slug, probs)
		}
		name := slug
		if name == "" {
			name = "overview"
		}
		p.Screenshot(filepath.Join(shots, name+".png"))
		csvMatchesTables(t, p, name)
	}
	// A drill-down into one command, through its link.
	p.Go(base + "commands")
	cmd := p.Text("#panel-commands tbody tr td a")
	p.Click("#panel-commands tbody tr td a")
	if !strings.Contains(p.URL(), "command=") || p.Attr(`input[name="command"]`, "value") != cmd {
		t.Fatalf("drill-down into %s: %s", cmd, p.URL())
	}
	// The filter form.
	p.SetValue(`input[name="os"]`, "linux")
	p.Submit("form.filters")
	if !strings.Contains(p.URL(), "os=linux") || !strings.Contains(p.URL(), "command=") {
		t.Fatalf("applying the filters: %s", p.URL())
	}
	p.Screenshot(filepath.Join(shots, "command-drilldown.png"))

	if errs := p.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}

	// Another project's pages are not found (after the check of the
	// console: a 404 is a console error).
	p.Go(fmt.Sprintf("%s/p/%d/", s.srv.URL, s.other))
	if body := p.Text("body"); !strings.Contains(body, "404 page not found") {
		t.Fatalf("the other project's overview: %q", body)
	}

	// Sign out.
	p.Go(base)
	p.Click("#signout")
	if !strings.HasSuffix(p.URL(), "/signin") {
		t.Fatalf("after sign-out: %s", p.URL())
	}
	p.Go(base)
	if !strings.HasSuffix(p.URL(), "/signin") {
		t.Fatalf("after sign-out the overview opened: %s", p.URL())
	}
}

// csvMatchesTables checks every panel of the page: its CSV download has
// the table's columns and rows, and the same first column.
func csvMatchesTables(t *testing.T, p *browsertest.Page, page string) {
	t.Helper()
	for _, id := range p.Strings(`Array.from(document.querySelectorAll(".panel"), e => e.id)`) {
		href := p.Attr("#"+id+" a.csv", "href")
		status, _, body := p.Fetch(href)
		if status != 200 {
			t.Errorf("%s %s: CSV %d", page, id, status)
			continue
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || len(recs) == 0 {
			t.Errorf("%s %s: CSV %v", page, id, err)
			continue
		}
		heads := p.Strings(`Array.from(document.querySelectorAll("#` + id + ` thead th"), e => e.innerText)`)
		firsts := p.Strings(`Array.from(document.querySelectorAll("#` + id + ` tbody tr"), r => r.cells[0].innerText)`)
		if strings.Join(heads, ",") != strings.Join(recs[0], ",") && len(firsts) > 0 {
			t.Errorf("%s %s: table columns %v, CSV %v", page, id, heads, recs[0])
		}
		if len(firsts) != len(recs)-1 {
			t.Errorf("%s %s: table %d rows, CSV %d", page, id, len(firsts), len(recs)-1)
			continue
		}
		for i, f := range firsts {
			raw := recs[i+1][0]
			switch {
			case raw == "" || raw == "true" || raw == "false": // shown as (none), —, CI or people
			case f != raw && strings.ReplaceAll(f, ",", "") != raw: // a count, shown with separators
				t.Errorf("%s %s row %d: table %q, CSV %q", page, id, i, f, raw)
			}
		}
	}
}

// Every page's numbers, as the browser shows them, are the ones SQL counts
// over the generated history's events: for each page, every row of one of
// its tables, over the default 30 days, and again with a filter.
func TestPagesMatchEventsInBrowser(t *testing.T) {
	s := newSite(t)
	b := browsertest.New(t)
	p := b.NewPage(t)
	p.Go(s.srv.URL + "/signin")
	p.SetValue("#key", s.read)
	p.Submit("form")
	base := fmt.Sprintf("%s/p/%d/", s.srv.URL, s.alpha)
	if p.URL() != base {
		t.Fatalf("after sign-in: %s", p.URL())
	}

	const (
		inRange = `e.project_id = $1 AND e.occurred_at >= $2`
		flags   = ` CROSS JOIN LATERAL (SELECT DISTINCT x AS flag FROM jsonb_array_elements_text(
			CASE WHEN jsonb_typeof(e.metadata->'flags') = 'array' THEN e.metadata->'flags' ELSE '[]' END) AS x) f`
	)
	checks := []struct {
		page, panel string
		labels      int    // leading label columns
		column      string // the column compared
		rate        bool   // the column is a percentage
		sql         string // labels…, value; over events e
	}{
		{"commands", "commands", 1, "events", false,
			`SELECT e.name, count(*) FROM events e WHERE ` + inRange + ` AND e.event_type = 'command_executed' AND %s GROUP BY 1`},
		{"commands", "commands", 1, "success_rate", true,
			`SELECT e.name, avg(e.success::int)::float8 FROM events e WHERE ` + inRange + ` AND e.event_type = 'command_executed' AND %s GROUP BY 1`},
		{"flags", "flags", 2, "events", false,
			`SELECT e.name, f.flag, count(*) FROM events e` + flags + ` WHERE ` + inRange + ` AND e.event_type = 'command_executed' AND %s GROUP BY 1, 2`},
		{"features", "features", 1, "events", false,
			`SELECT e.name, count(*) FROM events e WHERE ` + inRange + ` AND e.event_type = 'feature_used' AND %s GROUP BY 1`},
		{"features", "methods", 1, "events", false,
			`SELECT e.name, count(*) FROM events e WHERE ` + inRange + ` AND e.event_type = 'method_called' AND %s GROUP BY 1`},
		{"versions", "versions", 1, "events", false,
			`SELECT e.service_version, count(*) FROM events e WHERE ` + inRange + ` AND %s GROUP BY 1`},
		{"platforms", "os", 1, "events", false,
			`SELECT e.os, count(*) FROM events e WHERE ` + inRange + ` AND %s GROUP BY 1`},
		{"platforms", "arch", 1, "events", false,
			`SELECT e.arch, count(*) FROM events e WHERE ` + inRange + ` AND %s GROUP BY 1`},
		{"errors", "failures-by-command", 1, "failure_rate", true,
			`SELECT e.name, avg((NOT e.success)::int)::float8 FROM events e WHERE ` + inRange + ` AND e.event_type = 'command_executed' AND %s GROUP BY 1`},
		{"errors", "failures-by-os", 1, "events", false,
			`SELECT e.os, count(*) FROM events e WHERE ` + inRange + ` AND e.event_type = 'command_executed' AND %s GROUP BY 1`},
	}
	since := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -29)
	for _, filter := range []struct{ query, sql string }{{"", "true"}, {"os=linux", "e.os = 'linux'"}} {
		for _, c := range checks {
			p.Go(base + c.page + "?" + filter.query)
			want := map[string]float64{}
			rows, err := s.db.Pool().Query(context.Background(), fmt.Sprintf(c.sql, filter.sql), s.alpha, since)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				dest := make([]any, c.labels+1)
				labels := make([]string, c.labels)
				for i := range labels {
					dest[i] = &labels[i]
				}
				var v float64
				dest[c.labels] = &v
				if err := rows.Scan(dest...); err != nil {
					t.Fatal(err)
				}
				want[strings.Join(labels, "\t")] = v
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			heads := p.Strings(`Array.from(document.querySelectorAll("#panel-` + c.panel + ` thead th"), e => e.innerText)`)
			col := slices.Index(heads, c.column)
			if col < 0 {
				t.Fatalf("%s %s: no column %s in %v", c.page, c.panel, c.column, heads)
			}
			shown := p.Texts("#panel-" + c.panel + " tbody tr")
			if len(shown) == 0 || len(shown) > len(want) {
				t.Errorf("%s %s (%s): %d rows shown, SQL has %d", c.page, c.panel, filter.query, len(shown), len(want))
			}
			for _, row := range shown {
				cells := strings.Split(row, "\t")
				label := strings.Join(cells[:c.labels], "\t")
				v, ok := want[label]
				switch {
				case !ok:
					t.Errorf("%s %s (%s): %q is not in SQL's answer", c.page, c.panel, filter.query, label)
				case c.rate:
					var got float64
					if _, err := fmt.Sscanf(cells[col], "%f%%", &got); err != nil || math.Abs(got-100*v) > 0.051 {
						t.Errorf("%s %s (%s) %q: %s shown, SQL %.2f%%", c.page, c.panel, filter.query, label, cells[col], 100*v)
					}
				case cells[col] != thousands(int64(v)):
					t.Errorf("%s %s (%s) %q: %s shown, SQL %v", c.page, c.panel, filter.query, label, cells[col], v)
				}
			}
		}
	}
	if errs := p.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
