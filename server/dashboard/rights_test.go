package dashboard_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"html"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server/internal/browsertest"
)

// busiest returns the anonymous ID of the user with the most events of a
// project, and how many.
func (s *site) busiest(t *testing.T, project int64) (string, int64) {
	t.Helper()
	var u []byte
	var n int64
	if err := s.db.Pool().QueryRow(context.Background(), `SELECT user_id, count(*) FROM events WHERE project_id = $1
		GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`, project).Scan(&u, &n); err != nil {
		t.Fatal(err)
	}
	return "anon_" + hex.EncodeToString(u), n
}

func (s *site) eventsOf(t *testing.T, project int64, anon string) int64 {
	t.Helper()
	u, _ := hex.DecodeString(strings.TrimPrefix(anon, "anon_"))
	var n int64
	if err := s.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE project_id = $1 AND user_id = $2`,
		project, u).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The data-rights page: a read key sees the audit log and cannot erase;
// with the project's admin key added to the session, an erasure asks for
// confirmation, then erases at once, says what it erased and appears in
// the audit log. Forms without the CSRF token or from another site are
// refused.
func TestEraseFromTheDashboard(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	b.signIn(s.rightsRead)
	page := fmt.Sprintf("/p/%d/rights", s.rights)
	resp, body := b.get(page)
	body = html.UnescapeString(body)
	if resp.StatusCode != 200 || !strings.Contains(body, "needs the project's admin key") || strings.Contains(body, `id="erase-form"`) ||
		!strings.Contains(body, "key.create") {
		t.Fatalf("the rights page with a read key: %d\n%.3000s", resp.StatusCode, body)
	}
	token := csrf(t, body)
	anon, n := s.busiest(t, s.rights)
	erase := func(form url.Values) (int, string) {
		resp, body := b.do("POST", fmt.Sprintf("/p/%d/erase", s.rights), form)
		return resp.StatusCode, html.UnescapeString(body)
	}
	if status, body := erase(url.Values{"csrf": {token}, "user_id": {anon}, "confirm": {"yes"}}); status != 403 ||
		!strings.Contains(body, "Erasing needs the project's admin key") {
		t.Errorf("erasing with a read key: %d", status)
	}
	if got := s.eventsOf(t, s.rights, anon); got != n {
		t.Fatalf("a read key's erasure removed events: %d of %d left", got, n)
	}

	// The admin key, added to the session.
	if resp, _ := b.do("POST", "/projects", url.Values{"csrf": {token}, "back": {page}, "key": {s.rightsAdmin}}); resp.StatusCode != 303 {
		t.Fatalf("adding the admin key: %d", resp.StatusCode)
	}
	_, body = b.get(page)
	if !strings.Contains(body, `id="erase-form"`) {
		t.Fatalf("no erase form with the admin key:\n%.2000s", body)
	}
	if status, _ := erase(url.Values{"user_id": {anon}, "confirm": {"yes"}}); status != 403 {
		t.Errorf("an erasure without the CSRF token: %d", status)
	}
	b.hd.Set("Sec-Fetch-Site", "cross-site")
	if status, _ := erase(url.Values{"csrf": {token}, "user_id": {anon}, "confirm": {"yes"}}); status != 403 {
		t.Errorf("an erasure from another site: %d", status)
	}
	b.hd.Del("Sec-Fetch-Site")
	if _, body := erase(url.Values{"csrf": {token}, "user_id": {"anon_nope"}}); !strings.Contains(body, `id="erase-problem"`) {
		t.Errorf("a malformed id was not refused")
	}
	// First the confirmation; nothing is erased yet.
	_, body = erase(url.Values{"csrf": {token}, "user_id": {anon}})
	if !strings.Contains(body, `id="erase-confirm"`) || !strings.Contains(body, anon) {
		t.Fatalf("no confirmation:\n%.2000s", body)
	}
	if got := s.eventsOf(t, s.rights, anon); got != n {
		t.Fatalf("asking for confirmation erased: %d of %d left", got, n)
	}
	_, body = erase(url.Values{"csrf": {token}, "user_id": {anon}, "confirm": {"yes"}})
	if want := fmt.Sprintf("Erased %s: %d events, ", anon, n); !strings.Contains(body, want) {
		t.Fatalf("after the erasure, the page lacks %q:\n%.3000s", want, body)
	}
	if got := s.eventsOf(t, s.rights, anon); got != 0 {
		t.Errorf("%d events of the erased user left", got)
	}
	// The audit log's newest entry is the erasure, by the admin key.
	i := strings.Index(body, `id="panel-audit"`)
	if i < 0 || !strings.Contains(body[i:], s.rightsAdmin[:12]+"</td><td>user.erase</td><td>events: "+fmt.Sprint(n)) {
		t.Errorf("the audit log does not show the erasure first:\n%.3000s", body[max(i, 0):])
	}
}

// A project's own storage window is shown on its pages, with a note when
// the range starts before it.
func TestRetentionShown(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	if err := s.db.SetRetention(ctx, s.rights, 10); err != nil {
		t.Fatal(err)
	}
	defer s.db.SetRetention(ctx, s.rights, 0)
	b := s.browser(t)
	b.signIn(s.rightsRead)
	_, body := b.get(fmt.Sprintf("/p/%d/?range=30d", s.rights))
	body = html.UnescapeString(body)
	if !strings.Contains(body, "this project keeps 10 days of data") || !strings.Contains(body, `id="retention-note"`) {
		t.Errorf("30 days with a 10-day window:\n%.2500s", body)
	}
	_, body = b.get(fmt.Sprintf("/p/%d/?range=7d", s.rights))
	if strings.Contains(body, `id="retention-note"`) {
		t.Errorf("7 days within a 10-day window has the note")
	}
	if err := s.db.SetRetention(ctx, s.rights, 0); err != nil {
		t.Fatal(err)
	}
	_, body = b.get(fmt.Sprintf("/p/%d/?range=30d", s.rights))
	if !strings.Contains(body, "this project keeps 395 days of data") || strings.Contains(body, `id="retention-note"`) {
		t.Errorf("with the server's window: %.2500s", body)
	}
}

// The same in Chromium: sign in with the admin key, erase a user through
// the form and its confirmation, and see the result and the audit log.
func TestEraseInBrowser(t *testing.T) {
	s := newSite(t)
	anon, n := s.busiest(t, s.rights)
	br := browsertest.New(t)
	p := br.NewPage(t)
	p.Go(s.srv.URL + "/signin")
	p.SetValue("#key", s.rightsAdmin)
	p.Submit("form")
	p.Go(fmt.Sprintf("%s/p/%d/rights", s.srv.URL, s.rights))
	p.SetValue("#erase-user", anon)
	p.Submit("#erase-form")
	if !strings.Contains(p.Text("#erase-confirm"), anon) {
		t.Fatalf("no confirmation: %q", p.Text("body"))
	}
	p.Screenshot(filepath.Join(screenshots(t), "rights-confirm.png"))
	p.Click("#erase-yes")
	if got := p.Text("#erase-result"); !strings.Contains(got, fmt.Sprintf("Erased %s: %d events", anon, n)) {
		t.Fatalf("result %q", got)
	}
	if got := s.eventsOf(t, s.rights, anon); got != 0 {
		t.Errorf("%d events of the erased user left", got)
	}
	if rows := p.Texts("#panel-audit tbody tr"); len(rows) == 0 || !strings.Contains(rows[0], "user.erase") {
		t.Errorf("audit rows %q", rows)
	}
	p.Screenshot(filepath.Join(screenshots(t), "rights.png"))
	if errs := p.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
