// Package browsertest drives Debian's Chromium, headless, for the
// dashboard's tests, as a person's browser would see the pages.
//
// New starts one browser for a test, with a fresh profile, and closes it
// when the test ends. Each Page is a tab in a browser context of its own,
// so two pages never share cookies. A page's actions wait for what they
// need (an element, a page load) for at most 15 seconds and fail the test
// with a message that names the action; they never return an error.
//
// A page collects what its console would show as errors from the moment
// it opens: uncaught exceptions, console.error and console.assert calls,
// and the browser's own error entries, such as Content-Security-Policy
// violations and failed requests.
//
// The browser is found at $TK_CHROMIUM, else /usr/bin/chromium, else as
// chromium or chromium-browser on PATH. Without one, New skips the test,
// unless TK_REQUIRE_BROWSER=1 (which make test sets once it has installed
// Chromium), when it fails it.
package browsertest
