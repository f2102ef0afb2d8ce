package telemetrycmd

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// newClient returns a CLI-mode client of its own directories, with the
// environment empty, and its configuration. A non-empty endpoint is where
// it sends, with the write key "wk_test".
func newClient(t *testing.T, endpoint string) (*core.Client, core.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := core.Config{
		ServiceName: "tool",
		Mode:        core.CLIMode,
		Consent:     consent.Silent,
		ConfigDir:   filepath.Join(dir, "config"),
		Queue:       core.Queue{Path: filepath.Join(dir, "queue.db")},
		Host:        core.Host{Getenv: func(string) string { return "" }},
	}
	if endpoint != "" {
		cfg.Endpoint, cfg.APIKey = endpoint, "wk_test"
	}
	c, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

func TestControlsWithoutClient(t *testing.T) {
	ctl := Controls{Err: errors.New("queue unwritable"), Hint: "tool telemetry", Service: "tool"}
	ctx := context.Background()
	var w, errW bytes.Buffer
	for name, do := range map[string]func() error{
		"status":  func() error { return ctl.Status(ctx, &w, false) },
		"show":    func() error { return ctl.Show(ctx, &w, &errW) },
		"enable":  func() error { return ctl.Enable(ctx, &w) },
		"disable": func() error { return ctl.Disable(ctx, &w) },
		"flush":   func() error { return ctl.Flush(ctx, &w) },
	} {
		w.Reset()
		errW.Reset()
		// The error is the whole message: the tool prints it, once.
		err := do()
		if err == nil || err.Error() != "telemetry is off: it could not start: queue unwritable" {
			t.Errorf("%s: error %v", name, err)
		}
		if w.Len() != 0 || errW.Len() != 0 {
			t.Errorf("%s printed %q %q besides returning its error", name, w.String(), errW.String())
		}
	}
}

func TestControls(t *testing.T) {
	c, _ := newClient(t, "")
	c.TrackCommand(core.Command{Path: "build"})
	ctl := Controls{Client: c, Hint: "tool telemetry", Service: "tool"}
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := ctl.Show(ctx, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.HasPrefix(out.String(), `{"event_id":`) {
		t.Fatalf("show printed %q", out.String())
	}
	out.Reset()
	// The error is the whole report: the tool prints it, once.
	if err := ctl.Flush(ctx, &out); err == nil || !strings.HasPrefix(err.Error(), "sending failed, 0 sent and 1 still queued: ") || out.Len() != 0 {
		t.Fatalf("flush without an endpoint: %v %q", err, out.String())
	}
	out.Reset()
	if err := ctl.Disable(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Telemetry is off. Deleted 1 queued event; nothing more will be recorded or sent.\n" {
		t.Fatalf("disable said %q", out.String())
	}
	out.Reset()
	if err := ctl.Show(ctx, &out, &errOut); err != nil || out.Len() != 0 || !strings.Contains(errOut.String(), "No events are queued.") {
		t.Fatalf("show after disable: %v %q %q", err, out.String(), errOut.String())
	}
}

func TestFlushSendsToTheEndpoint(t *testing.T) {
	var got struct {
		Events []json.RawMessage `json:"events"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		if r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer wk_test" || json.NewDecoder(body).Decode(&got) != nil {
			http.Error(w, `{"error":"bad request"}`, 400)
			return
		}
		fmt.Fprintf(w, `{"accepted":%d,"duplicates":0,"rejected":[]}`, len(got.Events))
	}))
	defer srv.Close()
	c, _ := newClient(t, srv.URL)
	c.TrackCommand(core.Command{Path: "build"})
	c.TrackCommand(core.Command{Path: "serve"})
	var out bytes.Buffer
	if err := (Controls{Client: c, Hint: "tool telemetry"}).Flush(context.Background(), &out); err != nil {
		t.Fatalf("flush: %v (%s)", err, out.String())
	}
	if out.String() != "Sent 2 events; 0 still queued.\n" {
		t.Fatalf("flush said %q", out.String())
	}
	if len(got.Events) != 2 {
		t.Fatalf("server got %d events", len(got.Events))
	}
}

// TestStatusShowsTheSendSchedule checks that `telemetry status` tells a user
// why nothing is being sent: a refused write key pauses sending, a failing
// server defers the next attempt.
func TestStatusShowsTheSendSchedule(t *testing.T) {
	// The times are in local time, with the offset from UTC.
	oldLocal := time.Local
	time.Local = time.FixedZone("IST", 5*3600+1800)
	defer func() { time.Local = oldLocal }()
	stamp := `(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+05:30)`
	for _, tc := range []struct {
		name   string
		status int
		want   string
		line   *regexp.Regexp
		field  string
	}{
		{"refused key", http.StatusUnauthorized, "Sending paused until ",
			regexp.MustCompile(`(?m)^Sending paused until ` + stamp + `: the server refused the write key \(http_401\)\.$`), "sending_blocked_until"},
		{"server down", http.StatusServiceUnavailable, "Last send failed (http_503); the next attempt is not before ",
			regexp.MustCompile(`(?m)^Last send failed \(http_503\); the next attempt is not before ` + stamp + `\.$`), "next_send_attempt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "600")
				http.Error(w, `{"error":"no"}`, tc.status)
			}))
			defer srv.Close()
			c, _ := newClient(t, srv.URL)
			ctl := Controls{Client: c, Hint: "tool telemetry", Service: "tool"}
			var out bytes.Buffer
			if err := ctl.Status(context.Background(), &out, false); err != nil || strings.Contains(out.String(), "Sending paused") || strings.Contains(out.String(), "Last send failed") {
				t.Fatalf("before any send, status said %q (%v)", out.String(), err)
			}
			c.TrackCommand(core.Command{Path: "build"})
			out.Reset()
			if err := ctl.Flush(context.Background(), &out); err == nil {
				t.Fatalf("flush to a refusing server succeeded: %q", out.String())
			}
			out.Reset()
			if err := ctl.Status(context.Background(), &out, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), "Queued events: 1\n") {
				t.Fatalf("status said %q, want %q and the event still queued", out.String(), tc.want)
			}
			out.Reset()
			if err := ctl.Status(context.Background(), &out, true); err != nil {
				t.Fatal(err)
			}
			var js map[string]any
			if err := json.Unmarshal(out.Bytes(), &js); err != nil || js["last_send_result"] == nil {
				t.Fatalf("status --json: %s (%v)", out.String(), err)
			}
			// The text names the same moment as the JSON, to the second.
			out.Reset()
			if err := ctl.Status(context.Background(), &out, false); err != nil {
				t.Fatal(err)
			}
			m := tc.line.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("status said %q, want a line matching %s", out.String(), tc.line)
			}
			shown, err := time.Parse("2006-01-02 15:04:05 -07:00", m[1])
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(js[tc.field]))
			if err != nil {
				t.Fatalf("status --json %s: %v", tc.field, err)
			}
			if !shown.Equal(at.Truncate(time.Second)) {
				t.Fatalf("status shows %s, the JSON %s", shown, at)
			}
		})
	}
}

func TestLongCommand(t *testing.T) {
	got := LongCommand("my-cli", "my-cli telemetry", "show-telemetry", nil)
	want := "my-cli records anonymous usage data: " + privacy.DefaultCollects + `.

  my-cli telemetry status     whether telemetry is on, and why
  my-cli telemetry show       the events waiting to be sent
  my-cli telemetry disable    turn it off and delete what is queued
  my-cli telemetry delete     turn it off and erase what was sent, on the server too
  my-cli telemetry enable     turn it on

Setting DO_NOT_TRACK=1 or MY_CLI_TELEMETRY=0 also turns it off. Add --show-telemetry to any
command to see the event it records.`
	if got != want {
		t.Fatalf("LongCommand =\n%s\nwant\n%s", got, want)
	}
}

// TestStatusLineHasNoNestedParentheses renders the first line of the status
// for every kind of decision: the reason, which often has parentheses of
// its own, follows a colon.
func TestStatusLineHasNoNestedParentheses(t *testing.T) {
	type setup struct {
		name    string
		mode    consent.Mode
		env     map[string]string
		inCI    bool // Policy.DisableInCI
		stored  string
		want    string
		enabled bool
	}
	for _, tc := range []setup{
		{name: "silent", mode: consent.Silent, want: "Telemetry is on: the author's default (silent).", enabled: true},
		{name: "opt-out", mode: consent.OptOut, want: "Telemetry is on: the author's default (opt-out).", enabled: true},
		{name: "opt-in in CI", mode: consent.OptIn, env: map[string]string{"GITHUB_ACTIONS": "true"},
			want: "Telemetry is off: the author's default (opt-in), and nobody can be asked in CI (github_actions)."},
		{name: "off in CI", mode: consent.Silent, env: map[string]string{"GITHUB_ACTIONS": "true"}, inCI: true,
			want: "Telemetry is off: running in CI (github_actions), where the author turns telemetry off."},
		{name: "DO_NOT_TRACK", mode: consent.Silent, env: map[string]string{"DO_NOT_TRACK": "1"},
			want: "Telemetry is off: DO_NOT_TRACK is set."},
		{name: "variable off", mode: consent.Silent, env: map[string]string{"TOOL_TELEMETRY": "0"},
			want: "Telemetry is off: TOOL_TELEMETRY=0."},
		{name: "variable on", mode: consent.OptIn, env: map[string]string{"TOOL_TELEMETRY": "1"},
			want: "Telemetry is on: TOOL_TELEMETRY=1.", enabled: true},
		{name: "variable not understood", mode: consent.Silent, env: map[string]string{"TOOL_TELEMETRY": "maybe"},
			want: "Telemetry is off: TOOL_TELEMETRY=\"maybe\" is not understood (use 1 or 0); telemetry stays off."},
		{name: "disabled by the user", mode: consent.Silent, stored: "disable", want: "Telemetry is off: you ran `tool telemetry disable` on "},
		{name: "enabled by the user", mode: consent.OptIn, stored: "enable", want: "Telemetry is on: you ran `tool telemetry enable` on ", enabled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := core.Config{
				ServiceName: "tool",
				Mode:        core.CLIMode,
				Consent:     tc.mode,
				Policy:      core.Policy{DisableInCI: tc.inCI, CommandHint: "tool telemetry"},
				ConfigDir:   filepath.Join(dir, "config"),
				Queue:       core.Queue{Path: filepath.Join(dir, "queue.db")},
				Host:        core.Host{Getenv: func(k string) string { return tc.env[k] }, Stderr: io.Discard},
			}
			c, err := core.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.stored {
			case "disable":
				err = c.Disable(context.Background())
			case "enable":
				err = c.Enable()
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.stored != "" { // the stored choice is read when a client starts
				_ = c.Close(context.Background())
				if c, err = core.New(cfg); err != nil {
					t.Fatal(err)
				}
			}
			defer c.Close(context.Background())
			var out bytes.Buffer
			if err := (Controls{Client: c, Hint: "tool telemetry", Service: "tool"}).Status(context.Background(), &out, false); err != nil {
				t.Fatal(err)
			}
			line, _, _ := strings.Cut(out.String(), "\n")
			if !strings.HasPrefix(line, tc.want) {
				t.Errorf("status line %q, want %q", line, tc.want)
			}
			if c.Enabled() != tc.enabled {
				t.Errorf("enabled = %v, want %v", c.Enabled(), tc.enabled)
			}
			depth := 0
			for _, r := range line {
				switch r {
				case '(':
					if depth++; depth > 1 {
						t.Fatalf("nested parentheses: %q", line)
					}
				case ')':
					depth--
				}
			}
			if depth != 0 {
				t.Fatalf("unbalanced parentheses: %q", line)
			}
		})
	}
}

// status --json leaves out the send times while there are none, whatever
// Go release built the tool, and says what is collected.
func TestStatusJSONLeavesOutZeroTimes(t *testing.T) {
	c, _ := newClient(t, "")
	var out bytes.Buffer
	if err := (Controls{Client: c, Hint: "tool telemetry", Service: "tool"}).Status(context.Background(), &out, true); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"next_send_attempt", "sending_blocked_until"} {
		if _, ok := m[k]; ok {
			t.Errorf("status --json has %s: %s", k, out.String())
		}
	}
	if s, _ := m["collects"].(string); !strings.Contains(s, "which commands run") {
		t.Errorf("status --json collects %q", s)
	}
}

// `telemetry delete` turns telemetry off, deletes the queue and asks the
// server to erase the anonymous ID's data. With the server down the
// request is kept and `status` says so; a later client delivers it (a
// library in the background here; a CLI run through the detached sender,
// which the end-to-end test runs), and then status no longer shows it.
func TestDeleteErasesOnTheServer(t *testing.T) {
	var up atomic.Bool
	got := make(chan wire.ErasureRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req wire.ErasureRequest
		if r.URL.Path != "/v1/erasures" || r.Header.Get("Authorization") != "Bearer wk_test" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, `{"error":"bad request"}`, 400)
			return
		}
		if !up.Load() {
			w.Header().Set("Retry-After", "60")
			http.Error(w, `{"error":"down"}`, 503)
			return
		}
		got <- req
		fmt.Fprintf(w, `{"events":7,"user_rows":3,"sketches":2,"erased_before":%q}`, req.RequestedAt.Format(time.RFC3339Nano))
	}))
	defer srv.Close()
	c, cfg := newClient(t, srv.URL)
	c.TrackCommand(core.Command{Path: "build"})
	c.TrackCommand(core.Command{Path: "serve"})
	ctl := Controls{Client: c, Hint: "tool telemetry", Service: "tool"}
	ctx := context.Background()
	var out bytes.Buffer
	if err := ctl.Delete(ctx, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Telemetry is off. Deleted 2 queued events on this machine.\n",
		"The server could not be reached", "`tool telemetry status` shows it", "Nothing more is recorded until you run `tool telemetry enable`."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("delete with the server down said %q, without %q", out.String(), want)
		}
	}
	st, err := c.Status(ctx)
	if err != nil || st.Enabled || st.Queued != 0 || st.ErasurePending.IsZero() {
		t.Fatalf("status after delete: %+v %v", st, err)
	}
	out.Reset()
	ctl.Status(ctx, &out, false)
	if !strings.Contains(out.String(), "Erasure pending: asked for at ") {
		t.Errorf("status does not show the pending erasure: %s", out.String())
	}
	// With DO_NOT_TRACK set, a later client sends nothing, not even the
	// erasure.
	up.Store(true)
	dnt := cfg
	dnt.Mode = core.LibraryMode
	dnt.Host.Getenv = func(k string) string { return map[string]string{"DO_NOT_TRACK": "1"}[k] }
	dc, err := core.New(dnt)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		t.Fatalf("an erasure was sent with DO_NOT_TRACK set: %+v", req)
	case <-time.After(500 * time.Millisecond):
	}
	dc.Close(ctx)
	// A later client, once the server is back and the retry is due.
	later := cfg
	later.Mode = core.LibraryMode
	later.Host.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	lc, err := core.New(later)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close(ctx)
	select {
	case req := <-got:
		if req.UserID != st.UserID || !req.RequestedAt.Equal(st.ErasurePending) {
			t.Errorf("erasure sent for %s at %s; want %s at %s", req.UserID, req.RequestedAt, st.UserID, st.ErasurePending)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pending erasure was not delivered")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, _ := c.Status(ctx); st.ErasurePending.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the erasure is still pending after the server confirmed it")
		}
	}
	// Deleting again, with the server up: the answer is printed, and
	// telemetry stays off.
	out.Reset()
	if err := ctl.Delete(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "The server erased 7 events and 3 per-user rows of "+st.UserID) {
		t.Errorf("delete with the server up said %q", out.String())
	}
	if st, _ := c.Status(ctx); !st.ErasurePending.IsZero() || st.Enabled {
		t.Errorf("after a confirmed erasure: %+v", st)
	}
}
