// Package browsertest drives Debian's Chromium, headless, for the
// dashboard's tests: one browser per test with a fresh profile, pages
// whose actions fail the test with a clear message, and the console's
// errors (uncaught exceptions, console.error, and the browser's own error
// entries such as Content-Security-Policy violations) collected per page.
package browsertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium for one test.
type Browser struct {
	ctx context.Context
}

// Page is one tab.
type Page struct {
	t   testing.TB
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// actionTimeout bounds each action of a page.
const actionTimeout = 15 * time.Second

// findChromium returns the browser's path: $TK_CHROMIUM, or chromium or
// chromium-browser on PATH.
func findChromium() string {
	if p := os.Getenv("TK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts Chromium headless with a fresh profile, closed when the test
// ends. Without a Chromium it skips the test, unless TK_REQUIRE_BROWSER=1
// (make test sets it once it installed one), when it fails it.
func New(t testing.TB) *Browser {
	t.Helper()
	path := findChromium()
	if path == "" {
		if os.Getenv("TK_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium: install it (apt-get install -y chromium) or set TK_CHROMIUM")
		}
		t.Skip("no chromium (apt-get install -y chromium) for the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		// Without these, Chromium reaches for Google's hosts, which a
		// closed network refuses, many at a time.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &Browser{ctx: ctx}
}

// NewPage opens a tab in a browser context of its own (its own cookies).
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	p := &Page{t: t}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	t.Cleanup(cancel)
	p.ctx = ctx
	return p
}

// listen collects the errors the page reports.
func (p *Page) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil && ev.ExceptionDetails.Exception.Description != "" {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			}
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = string(ev.Entry.Source) + ": " + ev.Entry.Text
	default:
		return
	}
	p.mu.Lock()
	p.errors = append(p.errors, msg)
	p.mu.Unlock()
}

// do runs an action with the action timeout.
func do[T any](p *Page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Go loads url and waits for it.
func (p *Page) Go(url string) {
	p.t.Helper()
	do(p, "loading "+url, chromedp.Action[chromedp.Void](func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, nil
	}))
}

// Text returns the text of the first element that matches selector.
func (p *Page) Text(selector string) string {
	p.t.Helper()
	return do(p, "text of "+selector, chromedp.Text(chromedp.CSS(selector)))
}

// Texts returns the text of every element that matches selector, now.
func (p *Page) Texts(selector string) []string {
	p.t.Helper()
	return do(p, "texts of "+selector, chromedp.Evaluate[[]string](
		fmt.Sprintf(`Array.from(document.querySelectorAll(%q), e => e.innerText)`, selector)))
}

// Strings evaluates a JavaScript expression whose value is an array of
// strings.
func (p *Page) Strings(expr string) []string {
	p.t.Helper()
	return do(p, "evaluating "+expr, chromedp.Evaluate[[]string](expr))
}

// Attr returns an attribute of the first element that matches selector.
func (p *Page) Attr(selector, name string) string {
	p.t.Helper()
	r := do(p, "attribute "+name+" of "+selector, chromedp.AttributeValue(chromedp.CSS(selector), name))
	return r.Value
}

// Exists reports whether an element matches selector, without waiting.
func (p *Page) Exists(selector string) bool {
	p.t.Helper()
	return do(p, "looking for "+selector, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, selector)))
}

// SetValue fills an input.
func (p *Page) SetValue(selector, value string) {
	p.t.Helper()
	do(p, "filling "+selector, chromedp.SetValue(chromedp.CSS(selector), value))
}

// navigate runs an action that loads a page and waits for the load.
func (p *Page) navigate(what string, a chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, a); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// Click clicks the first element that matches selector and waits for the
// page it loads.
func (p *Page) Click(selector string) {
	p.t.Helper()
	p.navigate("clicking "+selector, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
}

// Submit submits the form that matches selector (or the form of the
// element) and waits for the page it loads.
func (p *Page) Submit(selector string) {
	p.t.Helper()
	p.navigate("submitting "+selector, chromedp.Submit(chromedp.CSS(selector)))
}

// URL returns the page's address.
func (p *Page) URL() string {
	p.t.Helper()
	return do(p, "reading the address", chromedp.Location())
}

// Screenshot saves a PNG of the whole page.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	png := do(p, "screenshot", chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// Fetch requests url (absolute, or relative to the page) with the page's
// cookies, as following a download link does, and returns the answer. It
// is made from Go rather than by the page's fetch(), which the pages'
// Content-Security-Policy forbids.
func (p *Page) Fetch(ref string) (status int, contentType, body string) {
	p.t.Helper()
	base, err := url.Parse(p.URL())
	if err != nil {
		p.t.Fatal(err)
	}
	u, err := base.Parse(ref)
	if err != nil {
		p.t.Fatalf("fetching %s: %v", ref, err)
	}
	req, _ := http.NewRequest("GET", u.String(), nil)
	for _, c := range p.Cookies() {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{Timeout: actionTimeout}
	resp, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("fetching %s: %v", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("fetching %s: %v", u, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
}

// ConsoleErrors returns the errors the page reported since it opened.
func (p *Page) ConsoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// Cookies returns the cookies the browser keeps for the page's address.
func (p *Page) Cookies() []*network.Cookie {
	p.t.Helper()
	return do(p, "reading cookies", chromedp.Action[[]*network.Cookie](func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			return nil, err
		}
		return res.Cookies, nil
	}))
}
