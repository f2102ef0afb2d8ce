package tkcobra_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// hookLog collects the order in which the tree's code runs.
type hookLog struct{ calls []string }

func (l *hookLog) add(format string, a ...any) { l.calls = append(l.calls, fmt.Sprintf(format, a...)) }

var errDeploy = errors.New("deploy to staging failed: token s3cr3t rejected")

// newTree builds a realistic tree with every kind of hook. Each call returns
// a fresh, independent tree, so that a test can run an instrumented tree and
// its uninstrumented twin side by side.
func newTree(log *hookLog) *cobra.Command {
	root := &cobra.Command{
		Use: "tool",
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			log.add("root persistent pre %s", cmd.Name())
			if v, _ := cmd.Flags().GetBool("fail-pre"); v {
				return errors.New("cannot load configuration")
			}
			return nil
		},
		PersistentPostRun: func(cmd *cobra.Command, args []string) {
			log.add("root persistent post %s", cmd.Name())
		},
	}
	root.PersistentFlags().Bool("fail-pre", false, "make the persistent pre-run fail")
	root.PersistentFlags().BoolP("verbose", "v", false, "say more")

	remote := &cobra.Command{Use: "remote", Short: "manage remotes"}
	add := &cobra.Command{
		Use:     "add NAME URL",
		Aliases: []string{"a", "new"},
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			log.add("remote add run %v", args)
			fmt.Fprintf(cmd.OutOrStdout(), "added %s\n", args[0])
			return nil
		},
	}
	add.Flags().BoolP("force", "f", false, "overwrite")
	add.Flags().String("mirror", "", "mirror mode")
	add.Flags().String("token", "", "secret token")
	remote.AddCommand(add)

	// A subtree with its own persistent hooks: they replace the root's.
	deep := &cobra.Command{
		Use: "deep",
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			log.add("deep persistent pre %s", cmd.Name())
		},
	}
	deeper := &cobra.Command{Use: "deeper", Hidden: true}
	deepest := &cobra.Command{
		Use: "deepest",
		PreRunE: func(cmd *cobra.Command, args []string) error {
			log.add("deepest pre")
			if len(args) > 0 && args[0] == "bad" {
				return errors.New("precondition failed")
			}
			return nil
		},
		Run: func(cmd *cobra.Command, args []string) {
			log.add("deepest run")
			fmt.Fprintln(cmd.OutOrStdout(), "deepest ran")
		},
		PostRunE: func(cmd *cobra.Command, args []string) error {
			log.add("deepest post")
			if len(args) > 0 && args[0] == "postfail" {
				return errors.New("cleanup failed")
			}
			return nil
		},
	}
	deeper.AddCommand(deepest)
	deep.AddCommand(deeper)

	deploy := &cobra.Command{
		Use: "deploy",
		RunE: func(cmd *cobra.Command, args []string) error {
			target, _ := cmd.Flags().GetString("target")
			log.add("deploy run %s", target)
			if target == "fail" {
				return errDeploy
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed to %s\n", target)
			return nil
		},
	}
	deploy.Flags().String("target", "", "environment")
	_ = deploy.MarkFlagRequired("target")

	crash := &cobra.Command{
		Use: "crash",
		Run: func(cmd *cobra.Command, args []string) {
			log.add("crash run")
			panic("boom")
		},
	}
	version := &cobra.Command{
		Use:  "version",
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "tool 1.0.0")
		},
	}
	root.AddCommand(remote, deep, deploy, crash, version)
	return root
}

type result struct {
	stdout, stderr string
	err            string
	calls          []string
}

func execute(t *testing.T, root *cobra.Command, run func() error, log *hookLog, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := run()
	r := result{stdout: out.String(), stderr: errOut.String(), calls: log.calls}
	if err != nil {
		r.err = err.Error()
	}
	return r
}

// env is an isolated environment: a temporary queue and config directory
// and an empty process environment.
type env struct {
	cfg tkcobra.Config
}

func newEnv(t testing.TB, vars map[string]string) *env {
	t.Helper()
	dir := t.TempDir()
	getenv := func(k string) string { return vars[k] }
	return &env{cfg: tkcobra.Config{
		Config: core.Config{
			ServiceName:    "tool",
			ServiceVersion: "1.0.0",
			Consent:        consent.Silent,
			ConfigDir:      filepath.Join(dir, "config"),
			Queue:          core.Queue{Path: filepath.Join(dir, "cache", "queue.db")},
			Host:           core.Host{Getenv: getenv},
		},
		AllowFlagValues: []string{"mirror"},
	}}
}

// events returns the events queued in e's local queue.
func (e *env) events(t *testing.T) []wire.Event {
	t.Helper()
	cfg := e.cfg.Config
	cfg.Mode = core.CLIMode
	c, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var evs []wire.Event
	err = c.Queued(context.Background(), func(b []byte) error {
		var ev wire.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// runBoth runs args on an uninstrumented tree and on an instrumented twin,
// checks that the tool behaved the same, and returns the instrumented run.
func runBoth(t *testing.T, e *env, args ...string) result {
	t.Helper()
	var plainLog, tkLog hookLog
	plain := newTree(&plainLog)
	wantRes := execute(t, plain, plain.Execute, &plainLog, args...)

	inst := newTree(&tkLog)
	r := tkcobra.Instrument(inst, e.cfg)
	got := execute(t, inst, r.Execute, &tkLog, args...)
	// The one intended difference: the root's help lists the telemetry command.
	got.stdout = telemetryLine.ReplaceAllString(got.stdout, "")
	if got.stdout != wantRes.stdout {
		t.Errorf("stdout differs from the uninstrumented tree:\n got %q\nwant %q", got.stdout, wantRes.stdout)
	}
	if got.stderr != wantRes.stderr {
		t.Errorf("stderr differs from the uninstrumented tree:\n got %q\nwant %q", got.stderr, wantRes.stderr)
	}
	if got.err != wantRes.err {
		t.Errorf("error differs: got %q, want %q", got.err, wantRes.err)
	}
	if !reflect.DeepEqual(got.calls, wantRes.calls) {
		t.Errorf("hook order differs:\n got %q\nwant %q", got.calls, wantRes.calls)
	}
	return got
}

var telemetryLine = regexp.MustCompile(`(?m)^  telemetry +Show or change what this tool records about its use\n`)

// expect is the part of the command_executed metadata a test checks.
type expect struct {
	command  string
	flags    []string
	values   map[string]any
	args     int
	success  bool
	kind     string
	exitCode int
}

func checkEvent(t *testing.T, ev wire.Event, w expect) {
	t.Helper()
	if ev.EventType != wire.EventCommandExecuted {
		t.Fatalf("event type %q", ev.EventType)
	}
	m := ev.Metadata
	if m["command"] != w.command {
		t.Errorf("command = %q, want %q", m["command"], w.command)
	}
	flags := []string{}
	for _, f := range m["flags"].([]any) {
		flags = append(flags, f.(string))
	}
	if !reflect.DeepEqual(flags, w.flags) {
		t.Errorf("flags = %q, want %q", flags, w.flags)
	}
	if w.values != nil || m["flag_values"] != nil {
		if !reflect.DeepEqual(m["flag_values"], map[string]any(w.values)) {
			t.Errorf("flag_values = %v, want %v", m["flag_values"], w.values)
		}
	}
	if m["args_count"] != float64(w.args) {
		t.Errorf("args_count = %v, want %d", m["args_count"], w.args)
	}
	if m["success"] != w.success {
		t.Errorf("success = %v, want %v", m["success"], w.success)
	}
	if m["error_kind"] != w.kind {
		t.Errorf("error_kind = %q, want %q", m["error_kind"], w.kind)
	}
	if m["exit_code"] != float64(w.exitCode) {
		t.Errorf("exit_code = %v, want %d", m["exit_code"], w.exitCode)
	}
	if _, ok := m["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms missing: %v", m)
	}
	raw, _ := json.Marshal(ev)
	for _, secret := range []string{"s3cr3t", "staging failed", "hunter2"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("event leaks %q: %s", secret, raw)
		}
	}
}

func TestRecordsEveryPath(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want expect
	}{
		{"nested", []string{"remote", "add", "origin", "https://example.com/x.git"},
			expect{command: "remote add", flags: []string{}, args: 2, success: true}},
		{"alias records the canonical name", []string{"remote", "a", "-f", "--mirror=push", "--token", "hunter2", "o", "u"},
			expect{command: "remote add", flags: []string{"force", "mirror", "token"}, values: map[string]any{"mirror": "push"}, args: 2, success: true}},
		{"persistent flag of the root", []string{"-v", "remote", "new", "o", "u"},
			expect{command: "remote add", flags: []string{"verbose"}, args: 2, success: true}},
		{"hidden and deep with its own persistent hook", []string{"deep", "deeper", "deepest", "x"},
			expect{command: "deep deeper deepest", flags: []string{}, args: 1, success: true}},
		{"root", []string{},
			expect{command: "", flags: []string{}, success: true}},
		{"help flag", []string{"deploy", "--help"},
			expect{command: "deploy", flags: []string{"help"}, success: true}},
		{"help command", []string{"help", "deploy"},
			expect{command: "help", flags: []string{}, args: 1, success: true}},
		{"action error", []string{"deploy", "--target", "fail"},
			expect{command: "deploy", flags: []string{"target"}, success: false, kind: "error", exitCode: 1}},
		{"unknown flag", []string{"remote", "add", "--bogus", "o", "u"},
			expect{command: "remote add", flags: []string{}, success: false, kind: "unknown_flag", exitCode: 1}},
		{"unknown shorthand flag on the root", []string{"-z"},
			expect{command: "", flags: []string{}, success: false, kind: "unknown_flag", exitCode: 1}},
		{"flag without its value", []string{"deploy", "--target"},
			expect{command: "deploy", flags: []string{}, success: false, kind: "invalid_flag", exitCode: 1}},
		{"invalid flag value", []string{"remote", "add", "--force=maybe", "o", "u"},
			expect{command: "remote add", flags: []string{}, success: false, kind: "invalid_flag", exitCode: 1}},
		{"bad flag syntax", []string{"deploy", "---target"},
			expect{command: "deploy", flags: []string{}, success: false, kind: "invalid_flag", exitCode: 1}},
		{"unknown subcommand", []string{"remvoe", "add"},
			expect{command: "", flags: []string{}, success: false, kind: "unknown_command", exitCode: 1}},
		{"unknown subcommand with flags", []string{"-v", "bogus"},
			expect{command: "", flags: []string{}, success: false, kind: "unknown_command", exitCode: 1}},
		{"wrong argument count", []string{"remote", "add", "only-one"},
			expect{command: "remote add", flags: []string{}, args: 1, success: false, kind: "invalid_args", exitCode: 1}},
		{"no args allowed", []string{"version", "extra"},
			expect{command: "version", flags: []string{}, args: 1, success: false, kind: "unknown_command", exitCode: 1}},
		{"missing required flag", []string{"deploy"},
			expect{command: "deploy", flags: []string{}, success: false, kind: "missing_flag", exitCode: 1}},
		{"failing persistent pre-run", []string{"--fail-pre", "deploy", "--target", "prod"},
			expect{command: "deploy", flags: []string{"fail-pre", "target"}, success: false, kind: "pre_run_failed", exitCode: 1}},
		{"failing pre-run", []string{"deep", "deeper", "deepest", "bad"},
			expect{command: "deep deeper deepest", flags: []string{}, args: 1, success: false, kind: "pre_run_failed", exitCode: 1}},
		{"failing post-run", []string{"deep", "deeper", "deepest", "postfail"},
			expect{command: "deep deeper deepest", flags: []string{}, args: 1, success: false, kind: "post_run_failed", exitCode: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			runBoth(t, e, tc.args...)
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events queued, want 1", len(evs))
			}
			checkEvent(t, evs[0], tc.want)
		})
	}
}

// TestDefaultCompletionCommand checks cobra's default `completion` command,
// which cobra adds to the root only when the tree is executed: its output
// and errors are the same, and its runs are recorded like any command's.
func TestDefaultCompletionCommand(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want expect
	}{
		{"script", []string{"completion", "bash"},
			expect{command: "completion bash", flags: []string{}, success: true}},
		{"script with a flag", []string{"completion", "zsh", "--no-descriptions"},
			expect{command: "completion zsh", flags: []string{"no-descriptions"}, success: true}},
		{"parent", []string{"completion"},
			expect{command: "completion", flags: []string{}, success: true}},
		// cobra.NoArgs words its error as an unknown command, as for `version extra`.
		{"extra argument", []string{"completion", "bash", "extra"},
			expect{command: "completion bash", flags: []string{}, args: 1, kind: "unknown_command", exitCode: 1}},
		{"unknown flag", []string{"completion", "fish", "--nope"},
			expect{command: "completion fish", flags: []string{}, kind: "unknown_flag", exitCode: 1}},
		{"persistent flag of the root", []string{"completion", "powershell", "-v"},
			expect{command: "completion powershell", flags: []string{"verbose"}, success: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			got := runBoth(t, e, tc.args...)
			if tc.want.success && tc.name != "parent" && !strings.Contains(got.stdout, "tool") {
				t.Fatalf("no completion script: %q", got.stdout)
			}
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events queued, want 1", len(evs))
			}
			checkEvent(t, evs[0], tc.want)
		})
	}
}

// TestCompletionCommandSettings checks that the root's completion settings,
// made before or after Instrument, are honoured as cobra honours them.
func TestCompletionCommandSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*cobra.Command)
		args []string
		want expect
	}{
		{"disabled", func(root *cobra.Command) { root.CompletionOptions.DisableDefaultCmd = true },
			[]string{"completion", "bash"}, expect{command: "", flags: []string{}, kind: "unknown_command", exitCode: 1}},
		{"hidden", func(root *cobra.Command) { root.CompletionOptions.HiddenDefaultCmd = true },
			[]string{"completion", "bash"}, expect{command: "completion bash", flags: []string{}, success: true}},
		{"without descriptions", func(root *cobra.Command) { root.CompletionOptions.DisableDescriptions = true },
			[]string{"completion", "bash", "extra"}, expect{command: "completion bash", flags: []string{}, args: 1, kind: "unknown_command", exitCode: 1}},
	} {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/set after Instrument %v", tc.name, after), func(t *testing.T) {
				e := newEnv(t, nil)
				var plainLog, tkLog hookLog
				plain := newTree(&plainLog)
				tc.set(plain)
				want := execute(t, plain, plain.Execute, &plainLog, tc.args...)
				inst := newTree(&tkLog)
				if !after {
					tc.set(inst)
				}
				r := tkcobra.Instrument(inst, e.cfg)
				if after {
					tc.set(inst)
				}
				got := execute(t, inst, r.Execute, &tkLog, tc.args...)
				got.stdout = telemetryLine.ReplaceAllString(got.stdout, "")
				if got.stdout != want.stdout || got.stderr != want.stderr || got.err != want.err {
					t.Fatalf("behaviour changed:\n got %+v\nwant %+v", got, want)
				}
				for _, args := range [][]string{{"--help"}} {
					w := execute(t, plain, plain.Execute, &plainLog, args...)
					g := execute(t, inst, r.Execute, &tkLog, args...)
					if g.stdout = telemetryLine.ReplaceAllString(g.stdout, ""); g.stdout != w.stdout {
						t.Fatalf("help changed:\n got %q\nwant %q", g.stdout, w.stdout)
					}
				}
				evs := e.events(t)
				if len(evs) != 2 {
					t.Fatalf("%d events queued, want 2", len(evs))
				}
				// The run's event, whichever reached the queue first.
				ev := evs[0]
				if ev.Metadata["command"] != tc.want.command {
					ev = evs[1]
				}
				checkEvent(t, ev, tc.want)
			})
		}
	}
}

func TestPanicIsRecordedAndRepanicked(t *testing.T) {
	e := newEnv(t, nil)
	var log hookLog
	root := newTree(&log)
	r := tkcobra.Instrument(root, e.cfg)
	var got any
	func() {
		defer func() { got = recover() }()
		execute(t, root, r.Execute, &log, "crash")
	}()
	if got != "boom" {
		t.Fatalf("recovered %v, want the original panic value \"boom\"", got)
	}
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d events queued, want 1", len(evs))
	}
	checkEvent(t, evs[0], expect{command: "crash", flags: []string{}, success: false, kind: "panic", exitCode: 2})
}

func TestNoProcessWideSettingChanges(t *testing.T) {
	before := []any{cobra.EnableTraverseRunHooks, cobra.EnablePrefixMatching, cobra.EnableCommandSorting, cobra.MousetrapHelpText}
	e := newEnv(t, nil)
	runBoth(t, e, "remote", "add", "a", "b")
	after := []any{cobra.EnableTraverseRunHooks, cobra.EnablePrefixMatching, cobra.EnableCommandSorting, cobra.MousetrapHelpText}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("cobra globals changed: %v -> %v", before, after)
	}
}

func TestTraverseRunHooksKeepsHookOrder(t *testing.T) {
	// EnableTraverseRunHooks is the host's choice; with it set, every
	// persistent hook runs, in the same order, instrumented or not.
	old := cobra.EnableTraverseRunHooks
	cobra.EnableTraverseRunHooks = true
	defer func() { cobra.EnableTraverseRunHooks = old }()
	e := newEnv(t, nil)
	got := runBoth(t, e, "deep", "deeper", "deepest")
	if len(got.calls) == 0 || got.calls[0] != "root persistent pre deepest" {
		t.Fatalf("traversing hooks did not run the root's first: %q", got.calls)
	}
	if n := len(e.events(t)); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestAuthorFlagErrorFuncStillRuns(t *testing.T) {
	e := newEnv(t, nil)
	build := func(log *hookLog) *cobra.Command {
		root := newTree(log)
		root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
			log.add("flag error func %s", cmd.Name())
			return fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath())
		})
		return root
	}
	var plainLog, tkLog hookLog
	plain := build(&plainLog)
	wantRes := execute(t, plain, plain.Execute, &plainLog, "remote", "add", "--nope")
	inst := build(&tkLog)
	got := execute(t, inst, tkcobra.Instrument(inst, e.cfg).Execute, &tkLog, "remote", "add", "--nope")
	if got.err != wantRes.err || got.stderr != wantRes.stderr || !reflect.DeepEqual(got.calls, wantRes.calls) {
		t.Fatalf("author's flag error func not honoured:\n got %+v\nwant %+v", got, wantRes)
	}
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	checkEvent(t, evs[0], expect{command: "remote add", flags: []string{}, kind: "unknown_flag", exitCode: 1})
}

func TestShowTelemetryFlag(t *testing.T) {
	e := newEnv(t, nil)
	var log hookLog
	root := newTree(&log)
	got := execute(t, root, tkcobra.Instrument(root, e.cfg).Execute, &log, "remote", "add", "o", "u", "--show-telemetry")
	if got.stdout != "added o\n" {
		t.Fatalf("stdout %q", got.stdout)
	}
	var ev wire.Event
	if err := json.Unmarshal([]byte(strings.TrimSpace(got.stderr)), &ev); err != nil {
		t.Fatalf("stderr is not the event: %q: %v", got.stderr, err)
	}
	checkEvent(t, ev, expect{command: "remote add", flags: []string{}, args: 2, success: true})
	evs := e.events(t)
	if len(evs) != 1 || evs[0].EventID != ev.EventID {
		t.Fatalf("the printed event is not the queued one: %v", evs)
	}
}

func TestShowTelemetryOnUnknownCommand(t *testing.T) {
	e := newEnv(t, nil)
	var log hookLog
	root := newTree(&log)
	r := tkcobra.Instrument(root, e.cfg)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	r.SetArgs([]string{"--show-telemetry", "nope"})
	if err := r.Execute(); err == nil {
		t.Fatal("no error for an unknown command")
	}
	if !strings.Contains(errOut.String(), `"error_kind":"unknown_command"`) {
		t.Fatalf("stderr does not show the event: %q", errOut.String())
	}
}

func TestDoNotTrackRecordsNothing(t *testing.T) {
	e := newEnv(t, map[string]string{"DO_NOT_TRACK": "1"})
	runBoth(t, e, "remote", "add", "a", "b")
	// Nothing of the SDK's is opened or made: not even the queue's directory.
	if _, err := os.Stat(filepath.Dir(e.cfg.Queue.Path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a run with DO_NOT_TRACK=1 made the queue directory (stat: %v)", err)
	}
	if n := len(e.events(t)); n != 0 {
		t.Fatalf("%d events queued with DO_NOT_TRACK=1", n)
	}
}

func TestTelemetryCommands(t *testing.T) {
	e := newEnv(t, nil)
	run := func(args ...string) result {
		var log hookLog
		root := newTree(&log)
		return execute(t, root, tkcobra.Instrument(root, e.cfg).Execute, &log, args...)
	}
	run("remote", "add", "a", "b")
	run("version")

	st := run("telemetry", "status")
	for _, s := range []string{"Telemetry is on: the author's default (silent).", "Anonymous ID: anon_", "Queued events: 2", "Endpoint: none"} {
		if !strings.Contains(st.stdout, s) {
			t.Errorf("status lacks %q:\n%s", s, st.stdout)
		}
	}
	js := run("telemetry", "status", "--json")
	var doc struct {
		Enabled bool   `json:"enabled"`
		Source  string `json:"source"`
		Queued  int    `json:"queued"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil || !doc.Enabled || doc.Queued != 2 || doc.Source != "default" {
		t.Errorf("status --json = %q (%v)", js.stdout, err)
	}

	show := run("telemetry", "show")
	lines := strings.Split(strings.TrimSpace(show.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("show printed %d lines, want 2:\n%s", len(lines), show.stdout)
	}
	for i, wantCmd := range []string{"remote add", "version"} {
		var ev wire.Event
		if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Metadata["command"] != wantCmd {
			t.Errorf("line %d: command %v, want %q", i, ev.Metadata["command"], wantCmd)
		}
	}

	dis := run("telemetry", "disable")
	if !strings.Contains(dis.stdout, "Telemetry is off. Deleted 2 queued events") {
		t.Errorf("disable said %q", dis.stdout)
	}
	run("remote", "add", "a", "b")
	if n := len(e.events(t)); n != 0 {
		t.Fatalf("%d events queued after disable", n)
	}
	st = run("telemetry", "status")
	if !strings.Contains(st.stdout, "Telemetry is off: you ran `tool telemetry disable` on ") {
		t.Errorf("status after disable:\n%s", st.stdout)
	}
	en := run("telemetry", "enable")
	if !strings.Contains(en.stdout, "Telemetry is on") {
		t.Errorf("enable said %q", en.stdout)
	}
	run("version")
	if n := len(e.events(t)); n != 1 {
		t.Fatalf("%d events queued after enable, want 1", n)
	}
}

func TestFailedFlushPrintsItsErrorOnce(t *testing.T) {
	e := newEnv(t, nil) // no endpoint: sending fails
	var log hookLog
	root := newTree(&log)
	r := tkcobra.Instrument(root, e.cfg)
	execute(t, root, r.Execute, &log, "version")
	got := execute(t, root, r.Execute, &log, "telemetry", "flush")
	if got.err == "" {
		t.Fatal("a failed flush succeeded")
	}
	all := got.stdout + got.stderr
	if n := strings.Count(all, "sending failed"); n != 1 || strings.Count(all, got.err) != 1 {
		t.Fatalf("the error is printed %d times:\nstdout %q\nstderr %q", n, got.stdout, got.stderr)
	}
	if !strings.HasPrefix(got.stderr, "Error: sending failed, 0 sent and 1 still queued: ") || strings.Contains(got.stderr, "Usage:") {
		t.Fatalf("stderr %q", got.stderr)
	}
}

func TestConfigurableNames(t *testing.T) {
	e := newEnv(t, nil)
	e.cfg.CommandName = "analytics"
	e.cfg.ShowFlag = "print-event"
	e.cfg.HideFlush = true
	var log hookLog
	root := newTree(&log)
	root.AddCommand(&cobra.Command{Use: "telemetry", Run: func(cmd *cobra.Command, _ []string) {
		fmt.Fprintln(cmd.OutOrStdout(), "the tool's own telemetry command")
	}})
	r := tkcobra.Instrument(root, e.cfg)
	got := execute(t, root, r.Execute, &log, "telemetry", "--print-event")
	if got.stdout != "the tool's own telemetry command\n" {
		t.Fatalf("the tool's own command was replaced: %q", got.stdout)
	}
	if !strings.Contains(got.stderr, `"command":"telemetry"`) {
		t.Fatalf("--print-event did not print the event: %q", got.stderr)
	}
	dis := execute(t, root, r.Execute, &log, "analytics", "disable")
	if !strings.Contains(dis.stdout, "Telemetry is off.") {
		t.Fatalf("analytics disable: %q %q", dis.stdout, dis.err)
	}
	st := execute(t, root, r.Execute, &log, "analytics", "status")
	if !strings.Contains(st.stdout, ": you ran `tool analytics disable` on ") || !strings.Contains(st.stdout, "`tool analytics enable`") {
		t.Fatalf("the status does not name the configured command:\n%s", st.stdout)
	}
	help := execute(t, root, r.Execute, &log, "analytics", "--help")
	if !strings.Contains(help.stdout, "status") || strings.Contains(help.stdout, "flush") {
		t.Fatalf("analytics help:\n%s", help.stdout)
	}
}

func TestRootWithoutSubcommandsIsUnchanged(t *testing.T) {
	e := newEnv(t, nil)
	build := func() *cobra.Command {
		return &cobra.Command{Use: "single FILE", RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "%d files\n", len(args))
			return nil
		}}
	}
	plain := build()
	var log hookLog
	wantRes := execute(t, plain, plain.Execute, &log, "a.txt", "help")
	inst := build()
	got := execute(t, inst, tkcobra.Instrument(inst, e.cfg).Execute, &log, "a.txt", "help")
	if got.stdout != wantRes.stdout || got.err != wantRes.err || got.stderr != wantRes.stderr {
		t.Fatalf("single-command tool changed:\n got %+v\nwant %+v", got, wantRes)
	}
	if inst.HasSubCommands() {
		t.Fatal("a telemetry subcommand was added to a tool without subcommands")
	}
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	checkEvent(t, evs[0], expect{command: "", flags: []string{}, args: 2, success: true})
}

func TestTraverseChildren(t *testing.T) {
	// With TraverseChildren, cobra parses the parents' flags while it finds
	// the command, and reports their errors without a flag error function.
	build := func(log *hookLog) *cobra.Command {
		root := newTree(log)
		root.TraverseChildren = true
		return root
	}
	for _, tc := range []struct {
		args []string
		want expect
	}{
		{[]string{"-v", "remote", "add", "a", "b"}, expect{command: "remote add", flags: []string{"verbose"}, args: 2, success: true}},
		{[]string{"--bogus", "remote", "add", "a", "b"}, expect{command: "", flags: []string{}, kind: "unknown_flag", exitCode: 1}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			e := newEnv(t, nil)
			var plainLog, tkLog hookLog
			plain := build(&plainLog)
			wantRes := execute(t, plain, plain.Execute, &plainLog, tc.args...)
			inst := build(&tkLog)
			got := execute(t, inst, tkcobra.Instrument(inst, e.cfg).Execute, &tkLog, tc.args...)
			got.stdout = telemetryLine.ReplaceAllString(got.stdout, "")
			if got.stdout != wantRes.stdout || got.stderr != wantRes.stderr || got.err != wantRes.err {
				t.Fatalf("behaviour changed:\n got %+v\nwant %+v", got, wantRes)
			}
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			checkEvent(t, evs[0], tc.want)
		})
	}
}

func TestExecuteContextAndClient(t *testing.T) {
	e := newEnv(t, nil)
	var log hookLog
	root := newTree(&log)
	r := tkcobra.Instrument(root, e.cfg)
	type key struct{}
	var sawCtx bool
	root.AddCommand(&cobra.Command{Use: "plugin", RunE: func(cmd *cobra.Command, _ []string) error {
		sawCtx = cmd.Context().Value(key{}) == "v"
		// A command may record its own events with the run's client.
		r.Client().TrackFeature("plugin_loaded", core.Props{"name": "fmt"})
		return nil
	}})
	root.SetOut(io.Discard)
	root.SetArgs([]string{"plugin"})
	if err := r.ExecuteContext(context.WithValue(context.Background(), key{}, "v")); err != nil {
		t.Fatal(err)
	}
	if !sawCtx {
		t.Fatal("the command did not get the context")
	}
	if r.Client() != nil {
		t.Fatal("Client is not nil after the run")
	}
	evs := e.events(t)
	if len(evs) != 2 || evs[0].EventType != wire.EventFeatureUsed || evs[1].Metadata["command"] != "plugin" {
		t.Fatalf("events: %+v", evs)
	}
}

func TestShellCompletionIsNotRecorded(t *testing.T) {
	e := newEnv(t, nil)
	var log hookLog
	root := newTree(&log)
	got := execute(t, root, tkcobra.Instrument(root, e.cfg).Execute, &log, cobra.ShellCompRequestCmd, "dep")
	if !strings.Contains(got.stdout, "deploy") {
		t.Fatalf("completion output %q", got.stdout)
	}
	if n := len(e.events(t)); n != 0 {
		t.Fatalf("%d events for a completion request", n)
	}
}
