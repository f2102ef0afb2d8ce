package privacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
)

const testService = "my-cli"

var testNow = time.Date(2026, 11, 25, 21, 40, 0, 0, time.UTC)

// env returns a Getenv over a fixed map: the tests never see the real
// environment (CI sets CI=true).
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// ttys gives Options whose stdin and stderr are distinct files, and an
// IsTerminal that calls them terminals as asked.
type ttys struct {
	stdin, stderr *os.File
}

func newTTYs(t *testing.T) ttys {
	t.Helper()
	dir := t.TempDir()
	in, err := os.Create(filepath.Join(dir, "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); errf.Close() })
	return ttys{in, errf}
}

func (tt ttys) isTerminal(stdinTTY, stderrTTY bool) func(uintptr) bool {
	return func(fd uintptr) bool {
		return fd == tt.stdin.Fd() && stdinTTY || fd == tt.stderr.Fd() && stderrTTY
	}
}

// writeRecord stores a consent.json as an earlier run would have.
func writeRecord(t *testing.T, dir string, r record) {
	t.Helper()
	r.Format = fileFormat
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, consentFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The stored states of the matrix. The current policy version is 3.
type storedState struct {
	name  string
	setup func(t *testing.T, dir string)
	// for the oracle:
	readable      bool
	decision      string // "", "enabled", "disabled"
	policy        int
	noticeVersion int
}

const matrixPolicy = 3

func storedStates() []storedState {
	rec := func(decision string, policy, notice int) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			r := record{Decision: decision, PolicyVersion: policy, NoticePolicyVersion: notice, Via: viaCommand}
			if decision != "" {
				r.DecidedAt = testNow.Add(-24 * time.Hour)
			}
			writeRecord(t, dir, r)
		}
	}
	return []storedState{
		{name: "none", setup: func(*testing.T, string) {}, readable: true},
		{name: "enabled-current", setup: rec("enabled", 3, 0), readable: true, decision: "enabled", policy: 3},
		{name: "enabled-older", setup: rec("enabled", 2, 2), readable: true, decision: "enabled", policy: 2, noticeVersion: 2},
		{name: "enabled-newer", setup: rec("enabled", 4, 0), readable: true, decision: "enabled", policy: 4},
		{name: "disabled-current", setup: rec("disabled", 3, 0), readable: true, decision: "disabled", policy: 3},
		{name: "disabled-older", setup: rec("disabled", 1, 0), readable: true, decision: "disabled", policy: 1},
		{name: "notice-current", setup: rec("", 0, 3), readable: true, noticeVersion: 3},
		{name: "notice-older", setup: rec("", 0, 2), readable: true, noticeVersion: 2},
		{name: "garbled", readable: false, setup: func(t *testing.T, dir string) {
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, consentFile), []byte(`{"format":1,"decision":"enab`), 0o600)
		}},
		{name: "unknown-decision", readable: false, setup: func(t *testing.T, dir string) {
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, consentFile), []byte(`{"format":1,"decision":"sure","policy_version":3,"decided_at":"2026-11-24T00:00:00Z"}`), 0o600)
		}},
		{name: "unreadable", readable: false, setup: func(t *testing.T, dir string) {
			// A directory where the file should be: reading it fails even as root.
			if err := os.MkdirAll(filepath.Join(dir, consentFile), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

type want struct {
	enabled     bool
	source      Source
	needsNotice bool
	canPrompt   bool
}

// oracle states the precedence rules independently of the implementation.
func oracle(mode consent.Mode, dnt, envVal string, st storedState, stdinTTY, stderrTTY, ci, disableInCI bool) want {
	word := strings.ToLower(strings.TrimSpace(dnt))
	if word == "1" || word == "true" || word == "yes" || word == "on" {
		return want{source: SourceDoNotTrack}
	}
	if v := strings.ToLower(strings.TrimSpace(envVal)); v != "" {
		return want{enabled: v == "1" || v == "true" || v == "on" || v == "yes", source: SourceEnv}
	}
	if ci && disableInCI {
		return want{source: SourceCI}
	}
	if !st.readable {
		return want{source: SourceUnreadable}
	}
	if st.decision == "disabled" {
		return want{source: SourceUser}
	}
	if st.decision == "enabled" && st.policy >= matrixPolicy {
		return want{enabled: true, source: SourceUser}
	}
	switch mode {
	case consent.Silent:
		return want{enabled: true, source: SourceDefault}
	case consent.OptOut:
		return want{enabled: true, source: SourceDefault, needsNotice: !ci && st.noticeVersion < matrixPolicy}
	}
	if ci || !stdinTTY || !stderrTTY {
		return want{source: SourceNoTTY}
	}
	return want{source: SourceDefault, canPrompt: true}
}

func TestResolvePrecedenceMatrix(t *testing.T) {
	states := storedStates()
	dirs := make([]string, len(states))
	for i, st := range states {
		dirs[i] = filepath.Join(t.TempDir(), st.name)
		st.setup(t, dirs[i])
	}
	tt := newTTYs(t)
	modes := []consent.Mode{consent.OptIn, consent.OptOut, consent.Silent}
	dnts := []string{"", "1", "Yes", "0"}
	envVals := []string{"", "1", "off", "perhaps"}
	cis := []struct {
		name string
		kv   []string
	}{
		{"no-ci", nil},
		{"ci-true", []string{"CI", "true"}},
		{"gitlab", []string{"GITLAB_CI", "true"}},
	}
	n := 0
	for _, mode := range modes {
		for _, dnt := range dnts {
			for _, ev := range envVals {
				for si, st := range states {
					for _, term := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
						for _, ci := range cis {
							for _, disableInCI := range []bool{false, true} {
								kv := append([]string{"DO_NOT_TRACK", dnt, "MY_CLI_TELEMETRY", ev}, ci.kv...)
								o := Options{
									Service:       testService,
									Mode:          mode,
									PolicyVersion: matrixPolicy,
									DisableInCI:   disableInCI,
									Dir:           dirs[si],
									Getenv:        env(kv...),
									Stdin:         tt.stdin,
									Stderr:        tt.stderr,
									IsTerminal:    tt.isTerminal(term[0], term[1]),
									Now:           func() time.Time { return testNow },
								}
								w := oracle(mode, dnt, ev, st, term[0], term[1], ci.kv != nil, disableInCI)
								got := Resolve(o)
								n++
								if got.Enabled != w.enabled || got.Source != w.source || got.NeedsNotice != w.needsNotice || got.CanPrompt != w.canPrompt {
									t.Errorf("mode=%v DO_NOT_TRACK=%q MY_CLI_TELEMETRY=%q stored=%s stdinTTY=%v stderrTTY=%v %s DisableInCI=%v:\n got  enabled=%v source=%v notice=%v prompt=%v (%s)\n want enabled=%v source=%v notice=%v prompt=%v",
										mode, dnt, ev, st.name, term[0], term[1], ci.name, disableInCI,
										got.Enabled, int(got.Source), got.NeedsNotice, got.CanPrompt, got.Detail,
										w.enabled, int(w.source), w.needsNotice, w.canPrompt)
								}
								if got.Detail == "" {
									t.Errorf("empty Detail for %+v", got)
								}
							}
						}
					}
				}
			}
		}
	}
	if n != 3*4*4*len(states)*4*3*2 {
		t.Fatalf("ran %d cases", n)
	}
	// Resolve wrote nothing: every directory holds what the setup put there.
	for i, st := range states {
		entries, _ := os.ReadDir(dirs[i])
		wantN := 1
		if st.name == "none" {
			wantN = 0
		}
		if len(entries) != wantN {
			t.Errorf("%s: Resolve changed the directory: %v", st.name, entries)
		}
	}
}

func baseOptions(t *testing.T, mode consent.Mode, kv ...string) Options {
	return Options{
		Service: testService,
		Mode:    mode,
		Dir:     filepath.Join(t.TempDir(), "cfg"),
		Getenv:  env(kv...),
		Stderr:  &bytes.Buffer{},
		Now:     func() time.Time { return testNow },
	}
}

func TestResolveNamedCases(t *testing.T) {
	t.Run("DO_NOT_TRACK beats the env var and a stored enable", func(t *testing.T) {
		o := baseOptions(t, consent.Silent, "DO_NOT_TRACK", "1", "MY_CLI_TELEMETRY", "1")
		if err := Enable(o); err != nil {
			t.Fatal(err)
		}
		d := Resolve(o)
		if d.Enabled || d.Source != SourceDoNotTrack || d.Detail != "DO_NOT_TRACK is set" {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("env var on is consent in opt-in, in CI, without a terminal", func(t *testing.T) {
		o := baseOptions(t, consent.OptIn, "MY_CLI_TELEMETRY", "yes", "GITHUB_ACTIONS", "true")
		o.DisableInCI = true
		d := Resolve(o)
		if !d.Enabled || d.Source != SourceEnv || d.Detail != "MY_CLI_TELEMETRY=yes" {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("env var off beats a stored enable", func(t *testing.T) {
		o := baseOptions(t, consent.OptOut, "MY_CLI_TELEMETRY", "0")
		Enable(o)
		if d := Resolve(o); d.Enabled || d.Detail != "MY_CLI_TELEMETRY=0" {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("a refusal survives a policy bump", func(t *testing.T) {
		o := baseOptions(t, consent.OptOut)
		o.PolicyVersion = 1
		Disable(o)
		o.PolicyVersion = 2
		d := Resolve(o)
		if d.Enabled || d.Source != SourceUser || d.NeedsNotice {
			t.Fatalf("got %+v", d)
		}
		if want := "you ran `my-cli telemetry disable` on 2026-11-25"; d.Detail != want {
			t.Fatalf("Detail %q, want %q", d.Detail, want)
		}
	})
	t.Run("an enable for an older policy no longer counts in opt-out", func(t *testing.T) {
		o := baseOptions(t, consent.OptOut)
		Enable(o) // policy 1
		o.PolicyVersion = 2
		d := Resolve(o)
		if !d.Enabled || d.Source != SourceDefault || !d.NeedsNotice {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("opt-in without a terminal is off and says why", func(t *testing.T) {
		o := baseOptions(t, consent.OptIn)
		o.IsTerminal = func(uintptr) bool { return false }
		d := Resolve(o)
		if d.Enabled || d.Source != SourceNoTTY || d.CanPrompt || !strings.Contains(d.Detail, "no terminal") {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("a stderr that is not a file is not a terminal", func(t *testing.T) {
		o := baseOptions(t, consent.OptIn)
		o.IsTerminal = func(uintptr) bool { return true }
		if d := Resolve(o); d.CanPrompt || d.Source != SourceNoTTY {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("no service name fails closed", func(t *testing.T) {
		o := baseOptions(t, consent.Silent, "MY_CLI_TELEMETRY", "1")
		o.Service = ""
		if d := Resolve(o); d.Enabled || d.Source != SourceConfig {
			t.Fatalf("got %+v", d)
		}
		if err := Enable(o); err == nil {
			t.Fatal("Enable without a service name succeeded")
		}
	})
	t.Run("unknown env value is off and quoted", func(t *testing.T) {
		o := baseOptions(t, consent.Silent, "MY_CLI_TELEMETRY", "maybe")
		d := Resolve(o)
		if d.Enabled || d.Source != SourceEnv || !strings.Contains(d.Detail, `"maybe"`) {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("DisableInCI", func(t *testing.T) {
		o := baseOptions(t, consent.Silent, "BUILDKITE", "true")
		o.DisableInCI = true
		d := Resolve(o)
		if d.Enabled || d.Source != SourceCI || !strings.Contains(d.Detail, "buildkite") {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("zero Dir uses the user config dir", func(t *testing.T) {
		cfg := t.TempDir()
		t.Setenv("XDG_CONFIG_HOME", cfg) // os.UserConfigDir on Linux
		t.Setenv("HOME", cfg)
		t.Setenv("AppData", cfg)
		o := baseOptions(t, consent.OptIn)
		o.Dir = ""
		if err := Enable(o); err != nil {
			t.Fatal(err)
		}
		base, _ := os.UserConfigDir()
		if _, err := os.Stat(filepath.Join(base, testService, consentFile)); err != nil {
			t.Fatalf("consent.json not under the user config dir: %v", err)
		}
		if d := Resolve(o); !d.Enabled || d.Source != SourceUser {
			t.Fatalf("got %+v", d)
		}
	})
}

func readRecord(t *testing.T, dir string) record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, consentFile))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEnableDisableStore(t *testing.T) {
	o := baseOptions(t, consent.OptIn)
	o.PolicyVersion = 7
	o.CommandHint = "mycli privacy"
	if err := Enable(o); err != nil {
		t.Fatal(err)
	}
	r := readRecord(t, o.Dir)
	if r.Decision != "enabled" || r.PolicyVersion != 7 || !r.DecidedAt.Equal(testNow) || r.Via != viaCommand {
		t.Fatalf("stored %+v", r)
	}
	fi, err := os.Stat(filepath.Join(o.Dir, consentFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("consent.json mode %v, want 0600", fi.Mode().Perm())
	}
	d := Resolve(o)
	if !d.Enabled || d.Detail != "you ran `mycli privacy enable` on 2026-11-25" {
		t.Fatalf("got %+v", d)
	}
	o.Now = func() time.Time { return testNow.Add(48 * time.Hour) }
	if err := Disable(o); err != nil {
		t.Fatal(err)
	}
	d = Resolve(o)
	if d.Enabled || d.Detail != "you ran `mycli privacy disable` on 2026-11-27" {
		t.Fatalf("got %+v", d)
	}
	entries, _ := os.ReadDir(o.Dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if got := d.String(); got != "off: you ran `mycli privacy disable` on 2026-11-27" {
		t.Fatalf("String() = %q", got)
	}
}

func TestEnableReplacesUnreadableFile(t *testing.T) {
	o := baseOptions(t, consent.OptOut)
	os.MkdirAll(o.Dir, 0o700)
	os.WriteFile(filepath.Join(o.Dir, consentFile), []byte("\x00garbage"), 0o600)
	if d := Resolve(o); d.Enabled || d.Source != SourceUnreadable {
		t.Fatalf("got %+v", d)
	}
	if err := Disable(o); err != nil {
		t.Fatal(err)
	}
	if d := Resolve(o); d.Enabled || d.Source != SourceUser {
		t.Fatalf("got %+v", d)
	}
}

// ttyBuffer is a stderr that the options' IsTerminal calls a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) Fd() uintptr { return 1 << 20 }

func onTerminal(o *Options) *ttyBuffer {
	var b ttyBuffer
	o.Stderr = &b
	o.IsTerminal = func(fd uintptr) bool { return fd == 1<<20 }
	return &b
}

func TestEnsureOptOutNotice(t *testing.T) {
	o := baseOptions(t, consent.OptOut)
	stderr := onTerminal(&o)
	o.Collects = "the command name and its duration."
	d := Ensure(o)
	if !d.Enabled || d.NeedsNotice {
		t.Fatalf("got %+v", d)
	}
	first := stderr.String()
	for _, want := range []string{"my-cli collects anonymous usage data: the command name and its duration.\n", "`my-cli telemetry disable`", "MY_CLI_TELEMETRY=0", "DO_NOT_TRACK=1"} {
		if !strings.Contains(first, want) {
			t.Errorf("notice %q lacks %q", first, want)
		}
	}
	if r := readRecord(t, o.Dir); r.NoticePolicyVersion != 1 || r.Decision != "" {
		t.Fatalf("stored %+v", r)
	}
	stderr.Reset()
	if d := Ensure(o); !d.Enabled || stderr.Len() != 0 {
		t.Fatalf("second run: %+v, printed %q", d, stderr.String())
	}
	// A new policy version shows it again, once.
	o.PolicyVersion = 2
	Ensure(o)
	if !strings.Contains(stderr.String(), "collects anonymous usage data") {
		t.Fatalf("no notice after a policy bump: %q", stderr.String())
	}
	stderr.Reset()
	Ensure(o)
	if stderr.Len() != 0 {
		t.Fatalf("notice repeated: %q", stderr.String())
	}
}

func TestEnsureNoticeKeepsDecisionFields(t *testing.T) {
	o := baseOptions(t, consent.OptOut)
	o.PolicyVersion = 2
	onTerminal(&o)
	writeRecord(t, o.Dir, record{Decision: "enabled", PolicyVersion: 1, DecidedAt: testNow, Via: viaCommand})
	Ensure(o)
	r := readRecord(t, o.Dir)
	if r.Decision != "enabled" || r.PolicyVersion != 1 || r.NoticePolicyVersion != 2 {
		t.Fatalf("stored %+v", r)
	}
}

func TestEnsureSilentAndCIPrintNothing(t *testing.T) {
	for name, o := range map[string]Options{
		"silent":        baseOptions(t, consent.Silent),
		"opt-out in CI": baseOptions(t, consent.OptOut, "CI", "1"),
		"opt-in in CI":  baseOptions(t, consent.OptIn, "CI", "true"),
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			o.Stderr = &stderr
			o.IsTerminal = func(uintptr) bool { return true }
			d := Ensure(o)
			if stderr.Len() != 0 {
				t.Fatalf("printed %q", stderr.String())
			}
			if d.Enabled != (o.Mode != consent.OptIn) {
				t.Fatalf("got %+v", d)
			}
			if _, err := os.Stat(o.Dir); !os.IsNotExist(err) {
				t.Fatalf("Ensure wrote to %s", o.Dir)
			}
		})
	}
}

func TestEnsureLeavesUnreadableFileAlone(t *testing.T) {
	garbage := []byte(`{"decision": 12`)
	for _, mode := range []consent.Mode{consent.OptIn, consent.OptOut, consent.Silent} {
		t.Run(mode.String(), func(t *testing.T) {
			o := baseOptions(t, mode)
			tt := newTTYs(t)
			o.Stdin, o.Stderr = tt.stdin, tt.stderr
			o.IsTerminal = tt.isTerminal(true, true)
			writeRecord(t, o.Dir, record{})
			path := filepath.Join(o.Dir, consentFile)
			os.WriteFile(path, garbage, 0o600)
			d := Ensure(o)
			if d.Enabled || d.Source != SourceUnreadable {
				t.Fatalf("got %+v", d)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, garbage) {
				t.Fatalf("file changed to %q", got)
			}
			if printed, _ := os.ReadFile(tt.stderr.Name()); len(printed) != 0 {
				t.Fatalf("printed %q", printed)
			}
		})
	}
}

// Interactive prompt with a scripted answer; the real terminal path is in
// prompt_pty_test.go.
func TestEnsurePromptAnswers(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		enabled bool
	}{
		{"y\n", true}, {"Yes\r\n", true}, {"\n", false}, {"n\n", false}, {"", false}, {"yess\n", false},
	} {
		t.Run(fmt.Sprintf("%q", tc.answer), func(t *testing.T) {
			o := baseOptions(t, consent.OptIn)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			io.WriteString(w, tc.answer+"rest of the host's input\n")
			w.Close()
			tt := newTTYs(t)
			o.Stdin, o.Stderr = r, tt.stderr
			o.IsTerminal = func(uintptr) bool { return true }
			d := Ensure(o)
			if d.Enabled != tc.enabled || d.Source != SourceUser {
				t.Fatalf("got %+v", d)
			}
			prompt, _ := os.ReadFile(tt.stderr.Name())
			for _, want := range []string{"my-cli would like", DefaultCollects, "`my-cli telemetry disable`", "[y/N]"} {
				if !strings.Contains(string(prompt), want) {
					t.Errorf("prompt %q lacks %q", prompt, want)
				}
			}
			rec := readRecord(t, o.Dir)
			if rec.Via != viaPrompt || (rec.Decision == "enabled") != tc.enabled {
				t.Fatalf("stored %+v", rec)
			}
			if tc.answer != "" {
				// Only the answer line was consumed from stdin.
				rest, _ := io.ReadAll(r)
				if string(rest) != "rest of the host's input\n" {
					t.Fatalf("host input left: %q", rest)
				}
			}
			// Asked once: the next Ensure does not ask.
			o.Stdin = tt.stdin
			before := len(prompt)
			d2 := Ensure(o)
			after, _ := os.ReadFile(tt.stderr.Name())
			if len(after) != before || d2.Enabled != tc.enabled {
				t.Fatalf("asked again or changed: %+v %q", d2, after[before:])
			}
		})
	}
}

func TestEnsureNonInteractiveDoesNotBlock(t *testing.T) {
	o := baseOptions(t, consent.OptIn)
	r, w, err := os.Pipe() // never written: reading it would block
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	o.Stdin = r
	o.Stderr = os.Stderr
	o.IsTerminal = nil // the real check: a pipe is not a terminal
	done := make(chan Decision, 1)
	go func() { done <- Ensure(o) }()
	select {
	case d := <-done:
		if d.Enabled || d.Source != SourceNoTTY {
			t.Fatalf("got %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ensure blocked on a non-interactive stdin")
	}
}

func TestEnvVar(t *testing.T) {
	for in, want := range map[string]string{
		"my-cli":    "MY_CLI_TELEMETRY",
		"MyTool":    "MYTOOL_TELEMETRY",
		"tk.server": "TK_SERVER_TELEMETRY",
		"a b/c":     "A_B_C_TELEMETRY",
		"9lives":    "_9LIVES_TELEMETRY",
		"héllo":     "H__LLO_TELEMETRY",
	} {
		if got := EnvVar(in); got != want {
			t.Errorf("EnvVar(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDebugEnabled(t *testing.T) {
	for v, want := range map[string]bool{"1": true, "true": true, "YES": true, "on": true, "": false, "0": false, "no": false, "debug": false} {
		if got := DebugEnabled("my-cli", env("MY_CLI_TELEMETRY_DEBUG", v)); got != want {
			t.Errorf("MY_CLI_TELEMETRY_DEBUG=%q: %v, want %v", v, got, want)
		}
	}
	// Words are understood in ASCII only, in any case.
	for v, want := range map[string]bool{" On ": true, "TrUe": true, "yeſ": false, "ＹＥＳ": false} {
		if got := DebugEnabled("my-cli", env("MY_CLI_TELEMETRY_DEBUG", v)); got != want {
			t.Errorf("MY_CLI_TELEMETRY_DEBUG=%q: %v, want %v", v, got, want)
		}
	}
	if DebugEnabled("my-cli", env("MY_CLI_TELEMETRY", "1")) {
		t.Error("the plain switch turned debug on")
	}
}

func TestDetectCI(t *testing.T) {
	for _, tc := range []struct {
		kv   []string
		name string
		ok   bool
	}{
		{nil, "", false},
		{[]string{"CI", "true"}, "generic", true},
		{[]string{"CI", "1"}, "generic", true},
		{[]string{"CI", "woodpecker"}, "generic", true},
		{[]string{"CI", "false"}, "", false},
		{[]string{"CI", "0"}, "", false},
		{[]string{"GITHUB_ACTIONS", "true", "CI", "true"}, "github_actions", true},
		{[]string{"GITLAB_CI", "true"}, "gitlab", true},
		{[]string{"BUILDKITE", "true"}, "buildkite", true},
		{[]string{"CIRCLECI", "true"}, "circleci", true},
		{[]string{"TRAVIS", "true"}, "travis", true},
		{[]string{"JENKINS_URL", "https://ci.example.com/"}, "jenkins", true},
		{[]string{"TF_BUILD", "True"}, "azure_pipelines", true},
		{[]string{"TEAMCITY_VERSION", "2024.1"}, "teamcity", true},
		{[]string{"BITBUCKET_BUILD_NUMBER", "42"}, "bitbucket", true},
		{[]string{"CODEBUILD_BUILD_ID", "proj:1234"}, "aws_codebuild", true},
		{[]string{"GITHUB_ACTIONS", "false"}, "", false},
	} {
		name, ok := DetectCI(env(tc.kv...))
		if name != tc.name || ok != tc.ok {
			t.Errorf("%v: got %q %v, want %q %v", tc.kv, name, ok, tc.name, tc.ok)
		}
	}
}

func TestStrings(t *testing.T) {
	if consent.OptIn.String() != "opt-in" || consent.OptOut.String() != "opt-out" || consent.Silent.String() != "silent" {
		t.Error("mode names")
	}
	seen := map[string]bool{}
	for s := SourceDefault; s <= SourceConfig; s++ {
		str := s.String()
		if str == "" || strings.HasPrefix(str, "source(") || seen[str] {
			t.Errorf("Source(%d).String() = %q", s, str)
		}
		seen[str] = true
	}
	if SourceDoNotTrack.String() != "DO_NOT_TRACK is set" {
		t.Error(SourceDoNotTrack.String())
	}
	d := Decision{Enabled: true, Source: SourceDefault, Detail: "the author's default (opt-out)"}
	if d.String() != "on: the author's default (opt-out)" {
		t.Error(d.String())
	}
}

func TestDefaultDirRefusesPathNames(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, "../etc"} {
		if _, err := DefaultDir(bad); err == nil {
			t.Errorf("DefaultDir(%q) accepted", bad)
		}
	}
	o := baseOptions(t, consent.Silent)
	o.Service, o.Dir = "..", ""
	if d := Resolve(o); d.Enabled || d.Source != SourceUnreadable {
		t.Fatalf("a service name that cannot name a directory: %+v", d)
	}
}

// A notice printed where nobody sees it (stderr a pipe or a file: a
// script's log, a completion request) does not count: it is not printed,
// not recorded as shown, and the decision says that the notice is still
// needed, which holds back sending; the first run on a terminal shows it.
func TestNoticeCountsOnlyOnATerminal(t *testing.T) {
	o := baseOptions(t, consent.OptOut)
	var pipe bytes.Buffer
	o.Stderr = &pipe
	o.IsTerminal = func(uintptr) bool { return false }
	for range 2 {
		d := Ensure(o)
		if !d.Enabled || !d.NeedsNotice || pipe.Len() != 0 {
			t.Fatalf("not a terminal: %+v, printed %q", d, pipe.String())
		}
	}
	if _, err := os.Stat(filepath.Join(o.Dir, consentFile)); !os.IsNotExist(err) {
		t.Fatalf("the notice was recorded as shown: %v", err)
	}
	tty := onTerminal(&o)
	if d := Ensure(o); !d.Enabled || d.NeedsNotice || !strings.Contains(tty.String(), "collects anonymous usage data") {
		t.Fatalf("on a terminal: %+v, printed %q", d, tty.String())
	}
	if r := readRecord(t, o.Dir); r.NoticePolicyVersion != 1 {
		t.Fatalf("not recorded as shown: %+v", r)
	}
}

// The notice is true for the author's configuration: it names the flags
// whose values are collected instead of saying that none are.
func TestNoticeNamesCollectedFlagValues(t *testing.T) {
	o := baseOptions(t, consent.OptOut)
	o.FlagValues = []string{"target", "auth"}
	tty := onTerminal(&o)
	Ensure(o)
	text := tty.String()
	if !strings.Contains(text, "the values of --target and --auth") || !strings.Contains(text, "never arguments, other flag values") {
		t.Fatalf("notice %q", text)
	}
	if got := Collects(nil); got != DefaultCollects || !strings.Contains(got, "never arguments, flag values") {
		t.Fatalf("Collects(nil) = %q", got)
	}
	if got := Collects([]string{"--env"}); !strings.Contains(got, "the value of --env,") {
		t.Fatalf("Collects(--env) = %q", got)
	}
}
