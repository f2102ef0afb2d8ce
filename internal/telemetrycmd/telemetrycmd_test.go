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
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
)

func newClient(t *testing.T) (*core.Client, core.Config) {
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
	c, _ := newClient(t)
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
	dir := t.TempDir()
	c, err := core.New(core.Config{
		ServiceName: "tool",
		Mode:        core.CLIMode,
		Endpoint:    srv.URL,
		APIKey:      "wk_test",
		Consent:     consent.Silent,
		ConfigDir:   filepath.Join(dir, "config"),
		Queue:       core.Queue{Path: filepath.Join(dir, "queue.db")},
		Host:        core.Host{Getenv: func(string) string { return "" }},
	})
	if err != nil {
		t.Fatal(err)
	}
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
			dir := t.TempDir()
			c, err := core.New(core.Config{
				ServiceName: "tool",
				Mode:        core.CLIMode, Endpoint: srv.URL, APIKey: "wk_test", Consent: consent.Silent, ConfigDir: filepath.Join(dir, "config"),
				Queue: core.Queue{Path: filepath.Join(dir, "queue.db")},
				Host:  core.Host{Getenv: func(string) string { return "" }},
			})
			if err != nil {
				t.Fatal(err)
			}
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
	c, _ := newClient(t)
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
