package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/dashboard/chart"
)

// Config configures a [Handler]. Its zero value, with Keys, Querier and
// Sessions, is usable.
type Config struct {
	// Keys looks keys up by hash, for sign-in. Required.
	Keys interface {
		KeyByHash(ctx context.Context, hash [32]byte) (server.Key, error)
	}
	// Querier answers the panels' queries. Required.
	Querier server.Querier
	// Sessions keeps the sessions. Required.
	Sessions server.SessionStore
	// Rights erases users for sessions that hold a project's admin key,
	// and shows the audit log. Nil leaves both out.
	Rights server.Rights
	// Logger receives structured logs. Nil discards them.
	Logger *slog.Logger
	// SessionTTL is how long a session lasts after sign-in. Zero means 7
	// days.
	SessionTTL time.Duration
	// SignInRate is the number of sign-in attempts per second allowed
	// from one client address, with a burst of 10. Zero means 1.
	SignInRate float64
	// MaxPages is the number of pages and downloads answered at once
	// (each runs up to three queries); more wait up to two seconds, then
	// get 503 with Retry-After. It keeps readers from taking the database
	// connections that ingest needs. Zero means 4.
	MaxPages int
	// IngestURL is the collection address shown to a project without
	// events yet, in the instrumenting example. Empty means the address
	// the dashboard is served from.
	IngestURL string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Handler serves the dashboard.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	pages *template.Template
	mux   *http.ServeMux

	mu      sync.Mutex
	signIns map[string]*rate.Limiter // by client address
	slots   chan struct{}            // pages being answered
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Cookie names. The session cookie holds the session's random token; the
// sign-in cookie, before a session exists, the CSRF token of the sign-in
// form.
const (
	sessionCookie = "tk_session"
	signInCookie  = "tk_signin"
)

// New checks cfg and returns a [Handler].
func New(cfg Config) (*Handler, error) {
	if cfg.Keys == nil || cfg.Querier == nil || cfg.Sessions == nil {
		return nil, errors.New("dashboard: Config.Keys, Querier and Sessions are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	if cfg.SignInRate <= 0 {
		cfg.SignInRate = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 4
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, pages: t, signIns: map[string]*rate.Limiter{},
		slots: make(chan struct{}, cfg.MaxPages)}
	assets, _ := fs.Sub(assetFiles, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", cacheAssets(http.FileServerFS(assets))))
	mux.HandleFunc("GET /assets/chart.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(chart.CSS)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		icon, _ := assetFiles.ReadFile("assets/icon.svg")
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(icon)
	})
	mux.HandleFunc("GET /{$}", h.home)
	mux.HandleFunc("GET /signin", h.signInPage)
	mux.HandleFunc("POST /signin", h.signIn)
	mux.HandleFunc("POST /signout", h.signOut)
	mux.HandleFunc("POST /projects", h.addProject)
	mux.HandleFunc("GET /p/{project}/{$}", h.page)
	mux.HandleFunc("GET /p/{project}/{page}", h.page)
	mux.HandleFunc("GET /p/{project}/csv/{panel}", h.csv)
	mux.HandleFunc("POST /p/{project}/erase", h.erase)
	h.mux = mux
	return h, nil
}

// ServeHTTP serves a dashboard request with the security headers every
// answer carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "cross-site form posts are refused", http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// cacheAssets lets browsers keep the embedded assets for an hour.
func cacheAssets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether a form post comes from the dashboard's own
// pages: by Sec-Fetch-Site where the browser sends it, else by Origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return origin == "" // a client that is not a browser
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// secure reports whether the request came over TLS, directly or through
// a proxy that says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// newToken returns 32 random bytes, base64url-encoded.
func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenHash is what the server keeps of a session token.
func tokenHash(token string) [32]byte { return sha256.Sum256([]byte("tk-session:" + token)) }

// csrfToken is the CSRF token of the forms of a session (or, before
// sign-in, of the sign-in cookie): a MAC of the token, which a page of
// another site cannot compute.
func csrfToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("tk-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF checks a form's CSRF token against the cookie it derives from.
func validCSRF(r *http.Request, cookie string) bool {
	c, err := r.Cookie(cookie)
	if err != nil || c.Value == "" {
		return false
	}
	want := csrfToken(c.Value)
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) == 1
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

// session returns the request's session and its token, or false.
func (h *Handler) session(r *http.Request) (server.Session, string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return server.Session{}, "", false
	}
	s, err := h.cfg.Sessions.Session(r.Context(), tokenHash(c.Value))
	if err != nil {
		if !errors.Is(err, server.ErrSessionNotFound) {
			h.log.Error("reading a dashboard session failed", "error", err)
		}
		return server.Session{}, "", false
	}
	return s, c.Value, true
}

// home sends a signed-in author to their first project, others to the
// sign-in page.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.session(r)
	if !ok || len(s.Projects) == 0 {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/p/"+strconv.FormatInt(s.Projects[0].ID, 10)+"/", http.StatusSeeOther)
}

type signInData struct {
	CSRF    string
	Problem string
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	h.renderSignIn(w, r, http.StatusOK, "")
}

// renderSignIn shows the sign-in form with a fresh double-submit token.
func (h *Handler) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token := newToken()
	h.setCookie(w, r, signInCookie, token, 3600)
	h.render(w, status, "signin.html", signInData{CSRF: csrfToken(token), Problem: problem})
}

// allowSignIn takes a sign-in attempt from the client's address.
func (h *Handler) allowSignIn(r *http.Request) bool {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.signIns[host]
	if !ok {
		if len(h.signIns) >= 10000 {
			clear(h.signIns) // bounded: a new burst for everyone rather than unbounded memory
		}
		l = rate.NewLimiter(rate.Limit(h.cfg.SignInRate), 10)
		h.signIns[host] = l
	}
	return l.AllowN(h.cfg.Now(), 1)
}

// problems are the sentences shown for a key refused in a form, by code;
// a redirect carries the code, never a sentence, so that a link cannot
// make the page say something of its own.
var problems = map[string]string{
	"write-key":    "That is a write key, which ships inside your tool. Sign in with the project's read key (tk_r_…).",
	"unknown-key":  "Unknown key. A read key starts with tk_r_; tk-server key create --kind read makes one.",
	"too-many":     "Too many attempts from this address; wait a minute.",
	"unavailable":  "The key cannot be checked now; try again shortly.",
	"revoked":      "This key is revoked.",
	"session-full": "The project could not be added: at most " + strconv.Itoa(server.MaxSessionKeys) + " projects per session.",
}

// readKey checks a key typed into a form: it must be an unrevoked read
// key. It returns the key, or the code of the problem (see problems).
func (h *Handler) readKey(r *http.Request, typed string) (server.Key, string) {
	typed = strings.TrimSpace(typed)
	if strings.HasPrefix(typed, server.WriteKeyPrefix) {
		return server.Key{}, "write-key"
	}
	if !server.WellFormedKey(typed) {
		return server.Key{}, "unknown-key"
	}
	if !h.allowSignIn(r) {
		return server.Key{}, "too-many"
	}
	hash := server.HashKey(typed)
	k, err := h.cfg.Keys.KeyByHash(r.Context(), hash)
	switch {
	case errors.Is(err, server.ErrKeyNotFound) || (err == nil && subtle.ConstantTimeCompare(k.Hash[:], hash[:]) != 1):
		return server.Key{}, "unknown-key"
	case err != nil:
		h.log.Error("checking a dashboard key failed", "error", err)
		return server.Key{}, "unavailable"
	case k.RevokedAt != nil:
		return server.Key{}, "revoked"
	case !k.Kind.CanRead():
		return server.Key{}, "write-key"
	}
	return k, ""
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !validCSRF(r, signInCookie) {
		h.renderSignIn(w, r, http.StatusForbidden, "The form expired; please sign in again.")
		return
	}
	k, problem := h.readKey(r, r.PostFormValue("key"))
	if problem != "" {
		h.renderSignIn(w, r, http.StatusUnauthorized, problems[problem])
		return
	}
	token := newToken()
	if err := h.cfg.Sessions.CreateSession(r.Context(), tokenHash(token), k.ID, h.cfg.Now().Add(h.cfg.SessionTTL)); err != nil {
		h.log.Error("creating a dashboard session failed", "error", err)
		h.renderSignIn(w, r, http.StatusServiceUnavailable, "Signing in is not possible now; try again shortly.")
		return
	}
	h.setCookie(w, r, sessionCookie, token, int(h.cfg.SessionTTL/time.Second))
	h.setCookie(w, r, signInCookie, "", -1)
	http.Redirect(w, r, "/p/"+strconv.FormatInt(k.ProjectID, 10)+"/", http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	c, err := r.Cookie(sessionCookie)
	if err == nil && validCSRF(r, sessionCookie) {
		if err := h.cfg.Sessions.DeleteSession(r.Context(), tokenHash(c.Value)); err != nil {
			h.log.Error("ending a dashboard session failed", "error", err)
			http.Error(w, "signing out failed; try again", http.StatusServiceUnavailable)
			return
		}
	} else if err == nil {
		http.Error(w, "the form expired; reload the page", http.StatusForbidden)
		return
	}
	h.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// addProject adds another project's read key to the session.
func (h *Handler) addProject(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	_, token, ok := h.session(r)
	if !ok {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	if !validCSRF(r, sessionCookie) {
		http.Error(w, "the form expired; reload the page", http.StatusForbidden)
		return
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/p/") || strings.HasPrefix(back, "//") {
		back = "/"
	}
	k, problem := h.readKey(r, r.PostFormValue("key"))
	if problem != "" {
		http.Redirect(w, r, back+"?problem="+url.QueryEscape(problem), http.StatusSeeOther)
		return
	}
	if err := h.cfg.Sessions.AddSessionKey(r.Context(), tokenHash(token), k.ID); err != nil {
		h.log.Error("adding a key to a dashboard session failed", "error", err)
		http.Redirect(w, r, back+"?problem=session-full", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/p/"+strconv.FormatInt(k.ProjectID, 10)+"/", http.StatusSeeOther)
}

// pageWait is how long a page waits for a slot.
const pageWait = 2 * time.Second

// acquire takes a page slot, waiting up to pageWait, and returns its
// release; when none frees up it answers 503 and returns nil.
func (h *Handler) acquire(w http.ResponseWriter, r *http.Request) func() {
	t := time.NewTimer(pageWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }
	case <-t.C:
	case <-r.Context().Done():
	}
	w.Header().Set("Retry-After", "2")
	http.Error(w, "the dashboard is busy; try again in a moment", http.StatusServiceUnavailable)
	return nil
}

// project returns the signed-in session and the project of the URL, or
// answers the request itself and returns false.
func (h *Handler) project(w http.ResponseWriter, r *http.Request) (server.Session, server.SessionProject, string, bool) {
	s, token, ok := h.session(r)
	if !ok {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return s, server.SessionProject{}, "", false
	}
	id, err := strconv.ParseInt(r.PathValue("project"), 10, 64)
	p, found := s.Project(id)
	if err != nil || !found {
		// Another project's data is never shown: not found, whether the
		// project exists or not.
		http.NotFound(w, r)
		return s, p, "", false
	}
	return s, p, token, true
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := h.pages.ExecuteTemplate(&b, name, data); err != nil {
		h.log.Error("rendering a dashboard page failed", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}
