package dashboard_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/dashboard"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
	"github.com/telemetry-kit/telemetry-kit/server/synth"
)

// site is a tk-server handler (API and dashboard) on a database holding
// two projects with generated histories and one without events.
type site struct {
	db                   *postgres.DB
	srv                  *httptest.Server
	read, write          string // keys of the project "alpha"
	revoked              string // a revoked read key of alpha
	otherRead, emptyRead string
	alpha, other, empty  int64
	// A project whose users the rights tests erase, with its keys.
	rights                  int64
	rightsRead, rightsAdmin string
}

var (
	dbURL    string
	siteOnce sync.Once
	shared   *site
	siteErr  error
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, "dashboard", &dbURL)) }

// newSite builds the site once for the package's tests.
func newSite(t *testing.T) *site {
	t.Helper()
	siteOnce.Do(func() { shared, siteErr = buildSite() })
	if siteErr != nil {
		t.Fatal(siteErr)
	}
	return shared
}

func buildSite() (*site, error) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	if _, err := db.Maintain(ctx); err != nil {
		return nil, err
	}
	s := &site{db: db}
	mk := func(name string) (read, write string, id int64, err error) {
		read, rk, _ := server.NewKey(server.KeyRead)
		write, wk, _ := server.NewKey(server.KeyWrite)
		p, _, err := db.CreateProject(ctx, name, []server.Key{rk, wk})
		return read, write, p.ID, err
	}
	if s.read, s.write, s.alpha, err = mk("alpha"); err != nil {
		return nil, err
	}
	if s.otherRead, _, s.other, err = mk("other"); err != nil {
		return nil, err
	}
	if s.emptyRead, _, s.empty, err = mk("empty"); err != nil {
		return nil, err
	}
	revoked, rk, _ := server.NewKey(server.KeyRead)
	rk.ProjectID = s.alpha
	if rk, err = db.CreateKey(ctx, rk); err != nil {
		return nil, err
	}
	if err := db.RevokeKey(ctx, rk.ID); err != nil {
		return nil, err
	}
	s.revoked = revoked
	for _, h := range []struct {
		project int64
		seed    int64
		events  int
	}{{s.alpha, 1, 20000}, {s.other, 2, 5000}} {
		if err := ingest(ctx, db, h.project, synth.Config{Seed: h.seed, Users: 400, Days: 40, Events: h.events}); err != nil {
			return nil, err
		}
	}
	if s.rightsRead, _, s.rights, err = mk("rights"); err != nil {
		return nil, err
	}
	admin, ak, _ := server.NewKey(server.KeyAdmin)
	ak.ProjectID = s.rights
	if _, err = db.CreateKey(ctx, ak); err != nil {
		return nil, err
	}
	s.rightsAdmin = admin
	if err := ingest(ctx, db, s.rights, synth.Config{Seed: 3, Users: 50, Days: 20, Events: 1500}); err != nil {
		return nil, err
	}
	dash, err := dashboard.New(dashboard.Config{Keys: db, Querier: db, Sessions: db, Rights: db, SignInRate: 1000})
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{Store: db, Dashboard: dash, QueryRateLimit: -1})
	if err != nil {
		return nil, err
	}
	s.srv = httptest.NewServer(api.Handler())
	return s, nil
}

// ingest stores a generated history in a project through the store's
// ingest, as tk-server does.
func ingest(ctx context.Context, db *postgres.DB, project int64, cfg synth.Config) error {
	g, err := synth.New(cfg)
	if err != nil {
		return err
	}
	key := server.Key{ProjectID: project}
	keys, err := db.Keys(ctx, project)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Kind == server.KeyWrite {
			key = k
		}
	}
	return g.Batches(1000, func(body []byte, _ int) error {
		b, err := decode.Batch(body, time.Now(), 0)
		if err != nil {
			return err
		}
		_, err = db.Ingest(ctx, key, b.Events, 0)
		return err
	})
}

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	t  *testing.T
	c  *http.Client
	u  string
	hd http.Header // added to every request
}

func (s *site) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, u: s.srv.URL, hd: http.Header{}, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.u+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.hd {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func (b *browser) get(path string) (*http.Response, string) { return b.do("GET", path, nil) }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the first form of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in:\n%.500s", page)
	}
	return html.UnescapeString(m[1])
}

// signIn signs in with key and returns the redirect's location.
func (b *browser) signIn(key string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.get("/signin")
	return b.do("POST", "/signin", url.Values{"csrf": {csrf(b.t, page)}, "key": {key}})
}

func TestSignIn(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	resp, page := b.get("/signin")
	if resp.StatusCode != 200 || !strings.Contains(page, `type="password"`) {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(page, "<script") {
		t.Fatalf("CSP %q, or a script on the page", csp)
	}
	for _, c := range []struct{ name, key, want string }{
		{"write key", s.write, "write key"},
		{"unknown key", "tk_r_" + strings.Repeat("a", len(s.read)-5), "Unknown key"},
		{"malformed", "hello", "Unknown key"},
		{"revoked", s.revoked, "revoked"},
	} {
		resp, page := b.signIn(c.key)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, c.want) {
			t.Errorf("%s: %d, page without %q", c.name, resp.StatusCode, c.want)
		}
		if strings.Contains(page, c.key) {
			t.Errorf("%s: the key is echoed in the page", c.name)
		}
	}
	// Without the form's token, or from another site: refused.
	resp, _ = b.do("POST", "/signin", url.Values{"key": {s.read}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d", resp.StatusCode)
	}
	_, page = b.get("/signin")
	b.hd.Set("Sec-Fetch-Site", "cross-site")
	resp, _ = b.do("POST", "/signin", url.Values{"csrf": {csrf(t, page)}, "key": {s.read}})
	b.hd.Del("Sec-Fetch-Site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d", resp.StatusCode)
	}

	resp, _ = b.signIn(s.read)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != fmt.Sprintf("/p/%d/", s.alpha) {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "tk_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("session cookie %+v (over plain HTTP: HttpOnly, SameSite=Strict, not Secure)", session)
	}
	if strings.Contains(session.Value, s.read) || len(session.Value) < 40 {
		t.Fatalf("session cookie value %q", session.Value)
	}

	// Behind a TLS proxy the cookie is Secure.
	tb := s.browser(t)
	tb.hd.Set("X-Forwarded-Proto", "https")
	resp, _ = tb.signIn(s.read)
	for _, c := range resp.Cookies() {
		if c.Name == "tk_session" && !c.Secure {
			t.Fatal("session cookie behind TLS is not Secure")
		}
	}
}

// Every page answers for the signed-in project, and only for it; adding a
// second project's key shows it too; signing out ends the session.
func TestPagesAndProjects(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	b.signIn(s.read)
	base := fmt.Sprintf("/p/%d/", s.alpha)
	for _, slug := range []string{"", "commands", "flags", "features", "versions", "platforms", "errors"} {
		for _, q := range []string{"", "?range=7d", "?range=180d&ci=exclude", "?range=custom&from=2020-01-01&to=2020-01-31",
			"?command=deploy&os=linux&version=1.2.0&onward=1", "?range=bogus&version=" + strings.Repeat("x", 500)} {
			resp, page := b.get(base + slug + q)
			if resp.StatusCode != 200 || !strings.Contains(page, "alpha") {
				t.Fatalf("%s%s: %d", slug, q, resp.StatusCode)
			}
			if strings.Contains(page, `panel-problem`) {
				t.Errorf("%s%s: a panel failed:\n%s", slug, q, problems(page))
			}
		}
	}
	other := fmt.Sprintf("/p/%d/", s.other)
	for _, path := range []string{other, other + "commands", other + "csv/top-commands", "/p/999999/", "/p/x/"} {
		if resp, _ := b.get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s before adding its key: %d, want 404", path, resp.StatusCode)
		}
	}
	// Add the other project with its read key.
	_, page := b.get(base)
	resp, _ := b.do("POST", "/projects", url.Values{"csrf": {csrf(t, page)}, "key": {s.otherRead}, "back": {base}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != other {
		t.Fatalf("adding a project: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page = b.get(other)
	if resp.StatusCode != 200 || !strings.Contains(page, `<strong id="project-name">other</strong>`) || !strings.Contains(page, `>alpha</a>`) {
		t.Fatalf("other project after adding it: %d", resp.StatusCode)
	}
	// A write key cannot be added.
	resp, _ = b.do("POST", "/projects", url.Values{"csrf": {csrf(t, page)}, "key": {s.write}, "back": {base}})
	loc := resp.Header.Get("Location")
	if !strings.Contains(loc, "problem=write-key") {
		t.Fatalf("adding a write key: %d to %q", resp.StatusCode, loc)
	}
	if _, page := b.get(loc); !strings.Contains(page, "That is a write key") {
		t.Fatal("the page does not say why the key was refused")
	}
	// A link cannot make the page say something of its own.
	if _, page := b.get(base + "?problem=Your+key+expired%2C+sign+in+at+example.com"); strings.Contains(page, "example.com") {
		t.Fatal("the page shows a sentence from its URL")
	}
	// A form without the session's token is refused.
	resp, _ = b.do("POST", "/projects", url.Values{"csrf": {"forged"}, "key": {s.emptyRead}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", resp.StatusCode)
	}

	// Sign out: the old session cookie no longer opens anything.
	jar := b.c.Jar
	u, _ := url.Parse(s.srv.URL)
	old := jar.Cookies(u)
	resp, _ = b.do("POST", "/signout", url.Values{"csrf": {csrf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	replay := s.browser(t)
	replay.c.Jar.SetCookies(u, old)
	if resp, _ := replay.get(base); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("the ended session still opens the overview: %d", resp.StatusCode)
	}
}

// problems returns the problems a page shows.
func problems(page string) string {
	var out []string
	for _, m := range regexp.MustCompile(`panel-problem" role="alert">([^<]*)<`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return strings.Join(out, "\n")
}

// The numbers the pages show, and their CSV downloads, are those of plain
// SQL over the stored events.
func TestNumbersMatchEvents(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	b.signIn(s.read)
	base := fmt.Sprintf("/p/%d/", s.alpha)
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -29)
	conn := s.db.Pool()

	var events int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events WHERE project_id = $1 AND occurred_at >= $2`,
		s.alpha, from).Scan(&events); err != nil {
		t.Fatal(err)
	}
	_, page := b.get(base)
	if !strings.Contains(page, `<dd class="value">`+thousands(events)+`</dd>`) {
		t.Fatalf("the overview does not show the %d events of the last 30 days", events)
	}

	// Top commands: the CSV is the table, and both are SQL's answer.
	rows, err := conn.Query(ctx, `SELECT name, count(*) FROM events
		WHERE project_id = $1 AND occurred_at >= $2 AND event_type = 'command_executed'
		GROUP BY name ORDER BY count(*) DESC, name LIMIT 10`, s.alpha, from)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		rows.Scan(&name, &n)
		want[name] = n
	}
	if len(want) == 0 {
		t.Fatal("no commands in the history")
	}
	recs := b.csv(base + "csv/top-commands")
	if strings.Join(recs[0], ",") != "command,events,users,success_rate" || len(recs)-1 != len(want) {
		t.Fatalf("CSV header %v, %d rows, want %d", recs[0], len(recs)-1, len(want))
	}
	for _, r := range recs[1:] {
		n, _ := strconv.ParseInt(r[1], 10, 64)
		if want[r[0]] != n {
			t.Errorf("command %s: CSV %d events, SQL %d", r[0], n, want[r[0]])
		}
		if !strings.Contains(page, ">"+html.EscapeString(r[0])+"</a></td><td class=\"num\">"+thousands(n)+"</td>") {
			t.Errorf("command %s: the table does not show %s events", r[0], thousands(n))
		}
	}

	// Filtered: one command, Linux, no CI, over 7 days.
	cmd := recs[1][0]
	from7 := today.AddDate(0, 0, -6)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events WHERE project_id = $1 AND occurred_at >= $2
		AND event_type = 'command_executed' AND name = $3 AND os = 'linux' AND NOT ci`, s.alpha, from7, cmd).Scan(&n); err != nil {
		t.Fatal(err)
	}
	recs = b.csv(base + "csv/commands?range=7d&os=linux&ci=exclude&command=" + url.QueryEscape(cmd))
	got := int64(0)
	if len(recs) > 1 {
		got, _ = strconv.ParseInt(recs[1][1], 10, 64)
	}
	if got != n {
		t.Fatalf("%s on Linux without CI over 7 days: CSV %d, SQL %d", cmd, got, n)
	}
}

// csv downloads a CSV and parses it.
func (b *browser) csv(path string) [][]string {
	b.t.Helper()
	resp, body := b.get(path)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		b.t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		b.t.Fatalf("%s: %v", path, err)
	}
	return recs
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// A project without events says how to send the first ones.
func TestEmptyProject(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	b.signIn(s.emptyRead)
	_, page := b.get(fmt.Sprintf("/p/%d/", s.empty))
	if !strings.Contains(page, `id="empty"`) || !strings.Contains(page, "tkcobra.Instrument") || !strings.Contains(page, s.srv.URL) {
		t.Fatal("the empty project shows no instructions")
	}
	_, page = b.get(fmt.Sprintf("/p/%d/", s.empty))
	if strings.Contains(page, s.emptyRead) {
		t.Fatal("the read key appears in the page")
	}
}

// gatedQuerier holds every query until its gate is opened.
type gatedQuerier struct {
	server.Querier
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedQuerier) Query(ctx context.Context, project int64, q server.Query) (server.Result, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.Querier.Query(ctx, project, q)
}

// Pages beyond MaxPages at once wait, then get 503 with Retry-After,
// rather than taking the database's connections.
func TestBusyDashboard(t *testing.T) {
	s := newSite(t)
	g := gatedQuerier{Querier: s.db, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	dash, err := dashboard.New(dashboard.Config{Keys: s.db, Querier: g, Sessions: s.db, MaxPages: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dash)
	defer srv.Close()
	b := s.browser(t)
	b.u = srv.URL
	b.signIn(s.read)
	base := fmt.Sprintf("/p/%d/", s.alpha)
	first := make(chan int)
	go func() {
		resp, _ := b.get(base + "platforms")
		first <- resp.StatusCode
	}()
	<-g.entered
	resp, _ := b.get(base + "platforms")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a page beyond MaxPages: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(g.gate)
	if code := <-first; code != 200 {
		t.Fatalf("the first page: %d", code)
	}
	if resp, _ := b.get(base + "platforms"); resp.StatusCode != 200 {
		t.Fatalf("after the first: %d", resp.StatusCode)
	}
}
