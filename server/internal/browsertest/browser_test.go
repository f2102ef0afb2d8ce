package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowPage is how long the slow answers (the sign-in and /slow) take.
const slowPage = time.Second

// strictCSP is the policy of the pages that must run no script.
const strictCSP = "default-src 'none'; style-src 'self'"

// site serves the pages the tests drive: a sign-in form whose POST sets an
// HttpOnly, SameSite=Strict cookie and redirects, slowly; a slow page; a
// page under a strict CSP with an inline script; pages that report errors;
// and a CSV download for signed-in visitors.
func site(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, csp, body string) {
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>`+body+`</body></html>`)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page(w, strictCSP, `<form method="post" action="/signin" id="signin">
<label>Name <input id="name" name="name" required></label>
<button type="submit" name="via" value="button" id="send">Sign in</button>
</form>`)
	})
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(slowPage)
		http.SetCookie(w, &http.Cookie{Name: "s", Value: r.PostFormValue("name") + "." + r.PostFormValue("via"),
			Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		who := "nobody"
		if c, err := r.Cookie("s"); err == nil {
			who = c.Value
		}
		page(w, strictCSP, `<h1 id="who">hello `+who+`</h1>
<ul><li class="x">a</li><li class="x">b <b>c</b></li></ul>
<a id="slow" href="/slow" data-kind="link">slow</a>
<button type="button" id="noop">nothing</button>
<a id="csv" href="/data.csv">data</a>`)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(slowPage)
		page(w, strictCSP, `<p id="done">slow page</p>`)
	})
	mux.HandleFunc("GET /csp", func(w http.ResponseWriter, r *http.Request) {
		page(w, strictCSP, `<p id="csp">csp</p><script>document.title = "ran"; console.error("inline script ran")</script>`)
	})
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		page(w, "", `<p>console</p><script>console.error("broken", 42); console.log("fine")</script>`)
	})
	mux.HandleFunc("GET /throws", func(w http.ResponseWriter, r *http.Request) {
		page(w, "", `<p>throws</p><script>throw new Error("boom")</script>`)
	})
	mux.HandleFunc("GET /data.csv", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("s")
		if err != nil {
			http.Error(w, "sign in first", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		fmt.Fprintf(w, "name,n\r\n%s,1\r\n", c.Value)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// A visitor signs in through the form: the cookie is kept with its flags,
// the page it lands on is read, a link to a slow page is waited for, and a
// click that loads nothing returns.
func TestFormCookiesAndNavigation(t *testing.T) {
	srv := site(t)
	p := New(t).NewPage(t)

	p.Go(srv.URL + "/")
	if got := p.URL(); got != srv.URL+"/" {
		t.Fatalf("URL %q, want %q", got, srv.URL+"/")
	}
	p.SetValue("#name", "ada")
	start := time.Now()
	p.Submit("#send")
	if d := time.Since(start); d < slowPage {
		t.Fatalf("Submit returned after %s, before the slow answer came", d)
	}
	if got := p.URL(); got != srv.URL+"/home" {
		t.Fatalf("after the form: URL %q", got)
	}
	// The submitter's name and value went with the form.
	if got := p.Text("#who"); got != "hello ada.button" {
		t.Fatalf("Text: %q", got)
	}
	if got := p.Texts(".x"); !slices.Equal(got, []string{"a", "b c"}) {
		t.Fatalf("Texts: %q", got)
	}
	if got := p.Texts(".none"); len(got) != 0 {
		t.Fatalf("Texts of nothing: %q", got)
	}
	if got := p.Attr("#slow", "href"); got != "/slow" {
		t.Fatalf("Attr href: %q", got)
	}
	if got := p.Attr("#slow", "data-kind"); got != "link" {
		t.Fatalf("Attr data-kind: %q", got)
	}
	if got := p.Attr("#slow", "title"); got != "" {
		t.Fatalf("Attr of a missing attribute: %q", got)
	}
	if !p.Exists("#who") || p.Exists("#nothing") {
		t.Fatal("Exists is wrong")
	}

	cookies := p.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies: %+v", cookies)
	}
	if c := cookies[0]; c.Name != "s" || c.Value != "ada.button" || !c.HTTPOnly || c.SameSite != "Strict" || c.Secure {
		t.Fatalf("cookie %+v", c)
	}

	// A click that loads nothing returns soon.
	start = time.Now()
	p.Click("#noop")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a click that loads nothing took %s", d)
	}
	if got := p.URL(); got != srv.URL+"/home" {
		t.Fatalf("after a click that loads nothing: %q", got)
	}

	// A click on a link waits for the page, which takes a second.
	start = time.Now()
	p.Click("#slow")
	if d := time.Since(start); d < slowPage {
		t.Fatalf("Click returned after %s, before the slow page loaded", d)
	}
	if got := p.URL(); got != srv.URL+"/slow" {
		t.Fatalf("after the link: URL %q", got)
	}
	if !p.Exists("#done") {
		t.Fatal("Click returned before the slow page loaded")
	}

	if errs := p.ConsoleErrors(); len(errs) != 0 {
		t.Fatalf("console errors on clean pages: %q", errs)
	}
}

// An inline script under a strict CSP does not run, and the violation is
// reported; console.error and uncaught exceptions are reported too, each
// page for itself.
func TestConsoleErrors(t *testing.T) {
	srv := site(t)
	b := New(t)

	p := b.NewPage(t)
	p.Go(srv.URL + "/csp")
	if got := p.Text("#csp"); got != "csp" {
		t.Fatalf("CSP page: %q", got)
	}
	errs := p.ConsoleErrors()
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "Content Security Policy") {
		t.Fatalf("the CSP violation was not reported: %q", errs)
	}
	if title := p.Strings(`[document.title]`); title[0] == "ran" || strings.Contains(strings.Join(errs, "\n"), "inline script ran") {
		t.Fatalf("the inline script ran: %q %q", title, errs)
	}

	q := b.NewPage(t)
	q.Go(srv.URL + "/console")
	if errs := q.ConsoleErrors(); len(errs) != 1 || !strings.Contains(errs[0], "broken 42") {
		t.Fatalf("console.error: %q", errs)
	}

	r := b.NewPage(t)
	r.Go(srv.URL + "/throws")
	if errs := r.ConsoleErrors(); len(errs) != 1 || !strings.Contains(errs[0], "boom") {
		t.Fatalf("uncaught exception: %q", errs)
	}
	// The first page's errors are its own.
	if errs := p.ConsoleErrors(); strings.Contains(strings.Join(errs, "\n"), "boom") || strings.Contains(strings.Join(errs, "\n"), "broken") {
		t.Fatalf("another page's errors: %q", errs)
	}
}

// Fetch downloads the CSV with the page's HttpOnly, SameSite=Strict cookie
// from a page whose CSP forbids fetch(), without a console error; a page
// of its own has no cookie. Screenshot writes a PNG, making its directory.
func TestFetchAndScreenshot(t *testing.T) {
	srv := site(t)
	b := New(t)
	p := b.NewPage(t)
	p.Go(srv.URL + "/")
	p.SetValue("#name", "bob")
	p.Submit("form")

	status, ctype, body := p.Fetch(p.Attr("#csv", "href"))
	if status != http.StatusOK || ctype != "text/csv; charset=utf-8" || body != "name,n\r\nbob.,1\r\n" {
		t.Fatalf("Fetch: %d %q %q", status, ctype, body)
	}
	if status, _, _ := p.Fetch(srv.URL + "/data.csv"); status != http.StatusOK {
		t.Fatalf("Fetch of an absolute URL: %d", status)
	}
	if errs := p.ConsoleErrors(); len(errs) != 0 {
		t.Fatalf("Fetch left console errors: %q", errs)
	}

	q := b.NewPage(t)
	q.Go(srv.URL + "/home")
	if got := q.Text("#who"); got != "hello nobody" {
		t.Fatalf("a new page shares cookies: %q", got)
	}
	if status, _, body := q.Fetch("/data.csv"); status != http.StatusForbidden || !strings.Contains(body, "sign in first") {
		t.Fatalf("Fetch without the cookie: %d %q", status, body)
	}

	shot := filepath.Join(t.TempDir(), "new", "dir", "home.png")
	p.Screenshot(shot)
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot is not a PNG: % x", png[:min(len(png), 16)])
	}
}

// recorder is a testing.TB whose Fatal and Skip stop the goroutine and
// keep the message.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) stop(kind, msg string) {
	r.mu.Lock()
	r.msg = kind + ": " + msg
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatal(args ...any)              { r.stop("fatal", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, a ...any) { r.stop("fatal", fmt.Sprintf(format, a...)) }
func (r *recorder) Skip(args ...any)               { r.stop("skip", fmt.Sprint(args...)) }
func (r *recorder) Skipf(format string, a ...any)  { r.stop("skip", fmt.Sprintf(format, a...)) }

// stops runs f as a test body and returns how it stopped: "" when it
// returned, else "fatal: ..." or "skip: ...".
func (r *recorder) stops(f func()) string {
	r.msg = ""
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

// A page's failing action fails the test with a message that says what
// failed: here, a form that its constraints hold back.
func TestFailingAction(t *testing.T) {
	srv := site(t)
	r := &recorder{TB: t}
	p := New(t).NewPage(r)
	p.Go(srv.URL + "/")
	got := r.stops(func() { p.Submit("form") })
	if !strings.HasPrefix(got, "fatal: ") || !strings.Contains(got, "submitting form") || !strings.Contains(got, "name") {
		t.Fatalf("Submit of an invalid form: %q", got)
	}
	if got := r.stops(func() { p.Fetch("http://[::1]:1/") }); !strings.HasPrefix(got, "fatal: ") || !strings.Contains(got, "fetching") {
		t.Fatalf("Fetch of nowhere: %q", got)
	}
}

// Without a browser, New skips the test, or fails it with the hint when
// the browser is required.
func TestNoBrowser(t *testing.T) {
	saved := chromiums
	t.Cleanup(func() { chromiums = saved })
	chromiums = []string{filepath.Join(t.TempDir(), "chromium"), "chromium", "chromium-browser"}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("TK_CHROMIUM", "")

	r := &recorder{TB: t}
	t.Setenv("TK_REQUIRE_BROWSER", "")
	if got := r.stops(func() { New(r) }); !strings.HasPrefix(got, "skip: ") || !strings.Contains(got, "apt-get install -y chromium") {
		t.Fatalf("without a browser: %q", got)
	}
	t.Setenv("TK_REQUIRE_BROWSER", "1")
	if got := r.stops(func() { New(r) }); !strings.HasPrefix(got, "fatal: ") || !strings.Contains(got, "install chromium (apt-get install -y chromium)") {
		t.Fatalf("without a required browser: %q", got)
	}

	// $TK_CHROMIUM comes first.
	t.Setenv("TK_CHROMIUM", "/opt/elsewhere/chromium")
	if got := findChromium(); got != "/opt/elsewhere/chromium" {
		t.Fatalf("findChromium with TK_CHROMIUM: %q", got)
	}
}
