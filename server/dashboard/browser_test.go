package dashboard_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
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
