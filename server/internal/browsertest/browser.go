package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium for tests.
type Browser struct {
	ctx context.Context
}

// Page is one tab, in a browser context of its own.
type Page struct {
	t     testing.TB
	ctx   context.Context
	frame cdp.FrameID // the tab's main frame

	mu     sync.Mutex
	errors []string
}

const (
	// actionTimeout bounds each action of a page.
	actionTimeout = 15 * time.Second
	// navigationGrace is how long Click waits for a navigation to start
	// before it takes the click for one that loads nothing.
	navigationGrace = 500 * time.Millisecond
)

// installHint tells how to get the browser.
const installHint = "install chromium (apt-get install -y chromium)"

// chromiums are where the browser is looked for after $TK_CHROMIUM: Debian's
// path, then the names on PATH.
var chromiums = []string{"/usr/bin/chromium", "chromium", "chromium-browser"}

// findChromium returns the browser's path: $TK_CHROMIUM, /usr/bin/chromium,
// or chromium or chromium-browser on PATH; "" when there is none.
func findChromium() string {
	if p := os.Getenv("TK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range chromiums {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts Chromium headless with a fresh profile, closed when the test
// ends. Without a Chromium it skips the test, or fails it when
// TK_REQUIRE_BROWSER=1.
func New(t testing.TB) *Browser {
	t.Helper()
	path := findChromium()
	if path == "" {
		if os.Getenv("TK_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium for the browser tests: " + installHint)
		}
		t.Skip("no chromium, browser test skipped: " + installHint)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these, Chromium keeps reaching for Google's hosts,
		// which a closed network refuses, many at a time.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// Containers often have a small /dev/shm.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("starting %s: %v (%s)", path, err, installHint)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &Browser{ctx: ctx}
}

// NewPage opens a tab in a new browser context (cookies and storage of its
// own), closed when the test ends.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	p := &Page{t: t}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.collect))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	t.Cleanup(cancel)
	p.ctx = ctx
	// A tab's main frame has the tab's id.
	p.frame = cdp.FrameID(chromedp.FromContext(ctx).Target.TargetID)
	return p
}

// collect keeps the errors the page's console would show.
func (p *Page) collect(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			switch {
			case a.Type == runtime.RemoteObjectTypeString:
				var s string
				if json.Unmarshal(a.Value, &s) == nil {
					parts = append(parts, s)
					continue
				}
				parts = append(parts, string(a.Value))
			case a.Description != "":
				parts = append(parts, a.Description)
			default:
				parts = append(parts, string(a.Value))
			}
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = string(ev.Entry.Source) + ": " + ev.Entry.Text
		if ev.Entry.URL != "" && ev.Entry.Source == log.EntrySourceNetwork {
			msg += " (" + ev.Entry.URL + ")"
		}
	default:
		return
	}
	p.mu.Lock()
	p.errors = append(p.errors, msg)
	p.mu.Unlock()
}

// failure makes an action's error readable.
func failure(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("nothing after %s", actionTimeout)
	}
	var ex *chromedp.ExceptionError
	if errors.As(err, &ex) && ex.Exception != nil && ex.Exception.Description != "" {
		first, _, _ := strings.Cut(ex.Exception.Description, "\n")
		return "JavaScript: " + first
	}
	return err.Error()
}

// do runs an action with the action timeout, failing the test on error.
func do[T any](p *Page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser: %s: %s", what, failure(err))
	}
	return v
}

// waitThen waits for an element to match selector, then runs a.
func waitThen[T any](selector string, a chromedp.Action[T]) chromedp.Action[T] {
	return func(ctx context.Context, t *chromedp.Target) (T, error) {
		if _, err := chromedp.WaitReady(chromedp.CSS(selector))(ctx, t); err != nil {
			var zero T
			return zero, err
		}
		return a(ctx, t)
	}
}

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Go loads url and waits for its load event.
func (p *Page) Go(url string) {
	p.t.Helper()
	do(p, "loading "+url, chromedp.Navigate(url))
}

// Text returns the innerText of the first element that matches selector,
// waiting for one.
func (p *Page) Text(selector string) string {
	p.t.Helper()
	return do(p, "text of "+selector, waitThen(selector,
		chromedp.Evaluate[string](`document.querySelector(`+js(selector)+`).innerText`)))
}

// Texts returns the innerText of every element that matches selector, now
// (none is an empty slice).
func (p *Page) Texts(selector string) []string {
	p.t.Helper()
	return do(p, "texts of "+selector, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(`+js(selector)+`), e => e.innerText)`))
}

// Strings evaluates a JavaScript expression whose value is an array of
// strings.
func (p *Page) Strings(expr string) []string {
	p.t.Helper()
	return do(p, "evaluating "+expr, chromedp.Evaluate[[]string](expr))
}

// Attr returns an attribute of the first element that matches selector,
// waiting for one; "" when the element has no such attribute.
func (p *Page) Attr(selector, name string) string {
	p.t.Helper()
	return do(p, "attribute "+name+" of "+selector, waitThen(selector,
		chromedp.Evaluate[string](`document.querySelector(`+js(selector)+`).getAttribute(`+js(name)+`) ?? ""`)))
}

// Exists reports whether an element matches selector, without waiting.
func (p *Page) Exists(selector string) bool {
	p.t.Helper()
	return do(p, "looking for "+selector, chromedp.Evaluate[bool](`document.querySelector(`+js(selector)+`) !== null`))
}

// SetValue fills the input (or textarea, or select) that matches selector,
// waiting for it.
func (p *Page) SetValue(selector, value string) {
	p.t.Helper()
	do(p, "filling "+selector, chromedp.SetValue(chromedp.CSS(selector), value))
}

// Click clicks the first element that matches selector, once it is
// visible, with the mouse. When the click starts a navigation, Click waits
// for the page it loads.
func (p *Page) Click(selector string) {
	p.t.Helper()
	p.act("clicking "+selector, chromedp.Click(chromedp.CSS(selector)), false)
}

// Submit submits the form that matches selector, or the form of the
// element that matches it (a submit button is the form's submitter), as
// pressing its button does, and waits for the page it loads. A form that
// its own constraints (required, maxlength, ...) hold back fails the test.
func (p *Page) Submit(selector string) {
	p.t.Helper()
	submit := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		problem, err := chromedp.Evaluate[string](`(() => {
	const e = document.querySelector(`+js(selector)+`);
	const form = e instanceof HTMLFormElement ? e : e.form || e.closest("form");
	if (!form) return "not a form, nor in one";
	const bad = Array.from(form.elements).find(f => f.willValidate && !f.checkValidity());
	if (bad) return "the form is invalid: " + (bad.name || bad.id || bad.tagName) + ": " + bad.validationMessage;
	const submitter = e !== form && e.type === "submit" ? e : null;
	form.requestSubmit(submitter);
	return "";
})()`)(ctx, t)
		if err == nil && problem != "" {
			err = errors.New(problem)
		}
		return err
	})
	p.act("submitting "+selector, chromedp.Steps(chromedp.WaitReady(chromedp.CSS(selector)), submit), true)
}

// act runs an action that may load a page (and must, when mustLoad), and
// waits for the load. A navigation that fails, ends in a download or gets
// no content counts as loaded when the tab stops loading.
func (p *Page) act(what string, a chromedp.Action[chromedp.Void], mustLoad bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()

	started, loaded := make(chan struct{}), make(chan struct{})
	var startOnce, loadOnce sync.Once
	start := func() { startOnce.Do(func() { close(started) }) }
	load := func() { loadOnce.Do(func() { close(loaded) }) }
	isStarted := func() bool {
		select {
		case <-started:
			return true
		default:
			return false
		}
	}
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	err := chromedp.Listen(lctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventFrameRequestedNavigation:
			if ev.FrameID == p.frame {
				start()
			}
		case *page.EventFrameStartedLoading:
			if ev.FrameID == p.frame {
				start()
			}
		case *page.EventNavigatedWithinDocument:
			if ev.FrameID == p.frame {
				start()
				load()
			}
		case *page.EventLoadEventFired:
			if isStarted() {
				load()
			}
		case *page.EventFrameStoppedLoading:
			if ev.FrameID == p.frame && isStarted() {
				load()
			}
		}
	})
	if err == nil {
		_, err = chromedp.Run(ctx, a)
	}
	if err != nil {
		p.t.Fatalf("browser: %s: %s", what, failure(err))
	}
	if !mustLoad {
		grace := time.NewTimer(navigationGrace)
		defer grace.Stop()
		select {
		case <-started:
		case <-grace.C:
			return // nothing to load
		case <-ctx.Done():
		}
	}
	select {
	case <-loaded:
	case <-ctx.Done():
		p.t.Fatalf("browser: %s: no page loaded within %s", what, actionTimeout)
	}
}

// URL returns the page's address.
func (p *Page) URL() string {
	p.t.Helper()
	return do(p, "reading the address", chromedp.Evaluate[string](`document.location.href`))
}

// Screenshot saves a PNG of the whole page at path, creating its
// directory.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	png := do(p, "taking a screenshot", chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatalf("browser: screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("browser: screenshot: %v", err)
	}
}

// fetchCSP is the Content-Security-Policy of the world Fetch runs in: the
// page's own may forbid any fetch() (connect-src 'none'), but a download
// link of the page is followed all the same.
const fetchCSP = "connect-src 'self'"

// Fetch runs fetch(url) inside the page, with its cookies (HttpOnly and
// SameSite=Strict ones too), as following a download link does, and
// returns the answer's status, Content-Type and body. url is absolute or
// relative to the page, on the page's origin. It runs in a script world of
// its own, so the page's Content-Security-Policy neither stops it nor
// reports it.
func (p *Page) Fetch(url string) (status int, contentType, body string) {
	p.t.Helper()
	type answer struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Body   string `json:"body"`
	}
	a := do(p, "fetching "+url, chromedp.Action[answer](func(ctx context.Context, t *chromedp.Target) (answer, error) {
		w, err := cdp.Call(ctx, t, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{
			FrameID:               p.frame,
			WorldName:             "browsertest-fetch",
			ContentSecurityPolicy: fetchCSP,
		})
		if err != nil {
			return answer{}, err
		}
		return chromedp.Evaluate[answer](`fetch(`+js(url)+`, {credentials: "same-origin"}).then(async r => ({
	status: r.status, type: r.headers.get("Content-Type") || "", body: await r.text(),
}))`, chromedp.EvalAwaitPromise, func(e *runtime.EvaluateParams) { e.ContextID = w.ExecutionContextID })(ctx, t)
	}))
	return a.Status, a.Type, a.Body
}

// ConsoleErrors returns the errors the page's console showed since the
// page opened: uncaught exceptions, console.error and console.assert
// calls, Content-Security-Policy violations and the browser's other error
// entries (a failed request, a 4xx or 5xx answer).
func (p *Page) ConsoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// Cookies returns the cookies the browser keeps for the page's address,
// with their HttpOnly, SameSite and Secure flags.
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
