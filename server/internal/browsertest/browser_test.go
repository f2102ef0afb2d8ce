package browsertest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server/internal/browsertest"
)

// The harness signs in through a form, keeps the cookie, reports console
// errors and CSP violations, fetches with the page's cookies and saves
// screenshots.
func TestHarness(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Write([]byte(`<!doctype html><title>form</title><form method="post" action="/in"><input id="name" name="name"><button>Go</button></form>`))
	})
	mux.HandleFunc("POST /in", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "s", Value: r.PostFormValue("name"), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("s")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Write([]byte(`<!doctype html><title>home</title><p id="who">hello ` + c.Value + `</p><p class="x">a</p><p class="x">b</p><a id="go" href="/csp">csp</a>`))
	})
	mux.HandleFunc("GET /csp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Write([]byte(`<!doctype html><title>csp</title><script>console.error("should not run")</script><p>csp</p>`))
	})
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<!doctype html><title>error</title><script>console.error("broken", 42)</script>`))
	})
	mux.HandleFunc("GET /data.csv", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("s")
		if err != nil {
			http.Error(w, "no cookie", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte("name\r\n" + c.Value + "\r\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := browsertest.New(t)
	p := b.NewPage(t)
	p.Go(srv.URL + "/")
	p.SetValue("#name", "ada")
	p.Submit("form")
	if !strings.HasSuffix(p.URL(), "/home") || p.Text("#who") != "hello ada" {
		t.Fatalf("after the form: %s %q", p.URL(), p.Text("body"))
	}
	if got := p.Texts(".x"); len(got) != 2 || got[1] != "b" {
		t.Fatalf("Texts: %v", got)
	}
	if !p.Exists("#go") || p.Exists("#nothing") {
		t.Fatal("Exists")
	}
	cookies := p.Cookies()
	if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != "Strict" {
		t.Fatalf("cookies %+v", cookies)
	}
	if status, ctype, body := p.Fetch("/data.csv"); status != 200 || ctype != "text/csv" || body != "name\r\nada\r\n" {
		t.Fatalf("fetch: %d %q %q", status, ctype, body)
	}
	if errs := p.ConsoleErrors(); len(errs) != 0 {
		t.Fatalf("errors before any: %v", errs)
	}
	p.Click("#go")
	if errs := p.ConsoleErrors(); len(errs) == 0 || strings.Contains(strings.Join(errs, " "), "should not run") {
		t.Fatalf("the CSP violation was not reported (or the script ran): %v", errs)
	}
	q := b.NewPage(t)
	q.Go(srv.URL + "/error")
	if errs := q.ConsoleErrors(); len(errs) != 1 || !strings.Contains(errs[0], "broken 42") {
		t.Fatalf("console.error: %v", errs)
	}
	// A page of its own has its own cookies.
	if status, _, _ := q.Fetch("/data.csv"); status != http.StatusForbidden {
		t.Fatalf("a new page shares cookies: %d", status)
	}
	shot := filepath.Join(t.TempDir(), "shots", "home.png")
	p.Screenshot(shot)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
}
