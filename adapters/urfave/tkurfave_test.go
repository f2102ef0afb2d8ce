package tkurfave_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	tkurfave "github.com/telemetry-kit/telemetry-kit/adapters/urfave"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

type hookLog struct{ calls []string }

func (l *hookLog) add(format string, a ...any) { l.calls = append(l.calls, fmt.Sprintf(format, a...)) }

var errDeploy = errors.New("deploy to staging failed: token s3cr3t rejected")

// newApp builds a realistic app with every kind of hook. Each call returns a
// fresh app, so that a test can run an instrumented app and its
// uninstrumented twin side by side.
func newApp(log *hookLog) *cli.App {
	return &cli.App{
		Name:  "tool",
		Usage: "a tool",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}},
			&cli.BoolFlag{Name: "fail-pre"},
		},
		Before: func(c *cli.Context) error {
			log.add("app before")
			if c.Bool("fail-pre") {
				return errors.New("cannot load configuration")
			}
			return nil
		},
		After: func(c *cli.Context) error {
			log.add("app after")
			return nil
		},
		Commands: []*cli.Command{
			{
				Name:  "remote",
				Usage: "manage remotes",
				Subcommands: []*cli.Command{{
					Name:    "add",
					Aliases: []string{"a", "new"},
					Flags: []cli.Flag{
						&cli.BoolFlag{Name: "force", Aliases: []string{"f"}},
						&cli.StringFlag{Name: "mirror"},
						&cli.StringFlag{Name: "token"},
					},
					Action: func(c *cli.Context) error {
						log.add("remote add %v", c.Args().Slice())
						if c.NArg() != 2 {
							return fmt.Errorf("want NAME and URL, got %d arguments", c.NArg())
						}
						fmt.Fprintf(c.App.Writer, "added %s\n", c.Args().First())
						return nil
					},
				}},
			},
			{
				Name: "deep",
				Subcommands: []*cli.Command{{
					Name:   "deeper",
					Hidden: true,
					Subcommands: []*cli.Command{{
						Name: "deepest",
						Before: func(c *cli.Context) error {
							log.add("deepest before")
							if c.Args().First() == "bad" {
								return errors.New("precondition failed")
							}
							return nil
						},
						Action: func(c *cli.Context) error {
							log.add("deepest action")
							fmt.Fprintln(c.App.Writer, "deepest ran")
							return nil
						},
						After: func(c *cli.Context) error {
							log.add("deepest after")
							if c.Args().First() == "postfail" {
								return errors.New("cleanup failed")
							}
							return nil
						},
					}},
				}},
			},
			{
				Name:  "deploy",
				Flags: []cli.Flag{&cli.StringFlag{Name: "target", Required: true}},
				Action: func(c *cli.Context) error {
					log.add("deploy %s", c.String("target"))
					if c.String("target") == "fail" {
						return errDeploy
					}
					fmt.Fprintf(c.App.Writer, "deployed to %s\n", c.String("target"))
					return nil
				},
			},
			{
				Name: "exit",
				Action: func(c *cli.Context) error {
					log.add("exit action")
					return cli.Exit("giving up: "+errDeploy.Error(), 3)
				},
			},
			{
				Name: "crash",
				Action: func(c *cli.Context) error {
					log.add("crash action")
					panic("boom")
				},
			},
			{
				Name: "config",
				Subcommands: []*cli.Command{
					{Name: "get", Action: func(c *cli.Context) error {
						fmt.Fprintf(c.App.Writer, "%s=1\n", c.Args().First())
						return nil
					}},
				},
			},
		},
	}
}

type result struct {
	stdout, stderr, globalErr string
	err                       string
	calls                     []string
	exitCodes                 []int
	queuedAtExit              []int
}

// env is an isolated environment: a temporary queue and config directory
// and an empty process environment.
type env struct {
	cfg tkurfave.Config
}

func newEnv(t *testing.T, vars map[string]string) *env {
	t.Helper()
	dir := t.TempDir()
	return &env{cfg: tkurfave.Config{
		Config: core.Config{
			ServiceName:    "tool",
			ServiceVersion: "1.0.0",
			Consent:        consent.Silent,
			ConfigDir:      filepath.Join(dir, "config"),
			Queue:          core.Queue{Path: filepath.Join(dir, "cache", "queue.db")},
			Host:           core.Host{Getenv: func(k string) string { return vars[k] }},
		},
		AllowFlagValues: []string{"mirror"},
	}}
}

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

// run runs args through run with the app's writers, urfave's ErrWriter and
// OsExiter captured (the test's own stand-ins for the process), and notes
// how many events were queued at the moment urfave exits.
func run(t *testing.T, e *env, app *cli.App, runFn func([]string) error, log *hookLog, args ...string) result {
	t.Helper()
	var out, errOut, globalErr bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	var r result
	oldExiter, oldErrWriter := cli.OsExiter, cli.ErrWriter
	cli.OsExiter = func(code int) {
		r.exitCodes = append(r.exitCodes, code)
		if e != nil {
			r.queuedAtExit = append(r.queuedAtExit, len(e.events(t)))
		}
	}
	cli.ErrWriter = &globalErr
	defer func() { cli.OsExiter, cli.ErrWriter = oldExiter, oldErrWriter }()
	err := runFn(append([]string{"tool"}, args...))
	r.stdout, r.stderr, r.globalErr, r.calls = out.String(), errOut.String(), globalErr.String(), log.calls
	if err != nil {
		r.err = err.Error()
	}
	return r
}

var spaces = regexp.MustCompile(`  +`)

var telemetryLine = regexp.MustCompile(`(?m)^   telemetry +Show or change what this tool records about its use\n`)

// runBoth runs args on an uninstrumented app and on an instrumented twin,
// checks that the tool behaved the same, and returns the instrumented run.
func runBoth(t *testing.T, e *env, args ...string) result {
	t.Helper()
	return runBothWith(t, e, newApp, args...)
}

// runBothWith is runBoth with the apps that build returns.
func runBothWith(t *testing.T, e *env, build func(*hookLog) *cli.App, args ...string) result {
	t.Helper()
	var plainLog, tkLog hookLog
	plain := build(&plainLog)
	want := run(t, nil, plain, plain.Run, &plainLog, args...)
	inst := build(&tkLog)
	got := run(t, e, inst, tkurfave.Instrument(inst, e.cfg).Run, &tkLog, args...)
	// The one intended difference: the app's help lists the telemetry
	// command, which may widen its column.
	got.stdout = spaces.ReplaceAllString(telemetryLine.ReplaceAllString(got.stdout, ""), "  ")
	want.stdout = spaces.ReplaceAllString(want.stdout, "  ")
	for _, c := range []struct{ name, got, want string }{
		{"stdout", got.stdout, want.stdout}, {"stderr", got.stderr, want.stderr},
		{"cli.ErrWriter", got.globalErr, want.globalErr}, {"error", got.err, want.err},
	} {
		if c.got != c.want {
			t.Errorf("%s differs from the uninstrumented app:\n got %q\nwant %q", c.name, c.got, c.want)
		}
	}
	if !reflect.DeepEqual(got.calls, want.calls) {
		t.Errorf("hook order differs:\n got %q\nwant %q", got.calls, want.calls)
	}
	if !reflect.DeepEqual(got.exitCodes, want.exitCodes) {
		t.Errorf("OsExiter calls differ: got %v, want %v", got.exitCodes, want.exitCodes)
	}
	return got
}

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
	m := ev.Metadata
	if ev.EventType != wire.EventCommandExecuted {
		t.Fatalf("event type %q", ev.EventType)
	}
	if m["command"] != w.command {
		t.Errorf("command = %q, want %q", m["command"], w.command)
	}
	flags := []string{}
	for _, f := range m["flags"].([]any) {
		flags = append(flags, f.(string))
	}
	if w.flags == nil {
		w.flags = []string{}
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
	raw, _ := json.Marshal(ev)
	for _, secret := range []string{"s3cr3t", "staging failed", "hunter2", "giving up"} {
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
			expect{command: "remote add", args: 2, success: true}},
		{"alias records the canonical name", []string{"remote", "a", "-f", "--mirror=push", "--token", "hunter2", "o", "u"},
			expect{command: "remote add", flags: []string{"force", "mirror", "token"}, values: map[string]any{"mirror": "push"}, args: 2, success: true}},
		{"global flag", []string{"-v", "remote", "new", "o", "u"},
			expect{command: "remote add", flags: []string{"verbose"}, args: 2, success: true}},
		{"hidden and deep", []string{"deep", "deeper", "deepest", "x"},
			expect{command: "deep deeper deepest", args: 1, success: true}},
		{"app", []string{},
			expect{command: "", success: true}},
		{"group without action", []string{"config"},
			expect{command: "config", success: true}},
		{"help flag", []string{"deploy", "--help"},
			expect{command: "deploy", flags: []string{"help"}, success: true}},
		{"help flag of a nested command", []string{"remote", "add", "-h"},
			expect{command: "remote add", flags: []string{"help"}, success: true}},
		{"help flag of the app", []string{"--help"},
			expect{command: "", flags: []string{"help"}, success: true}},
		{"help flag after --", []string{"remote", "add", "--", "-h", "u"},
			expect{command: "remote add", args: 2, success: true}},
		{"help command", []string{"help", "deploy"},
			expect{command: "help", args: 1, success: true}},
		{"help command without a topic", []string{"help"},
			expect{command: "help", success: true}},
		{"help command for an unknown command", []string{"help", "nosuch"},
			expect{command: "help", args: 1, kind: "unknown_command", exitCode: 3}},
		{"action error", []string{"deploy", "--target", "fail"},
			expect{command: "deploy", flags: []string{"target"}, kind: "error", exitCode: 1}},
		{"action error from argument check", []string{"remote", "add", "only-one"},
			expect{command: "remote add", args: 1, kind: "error", exitCode: 1}},
		{"unknown flag", []string{"remote", "add", "--bogus", "o", "u"},
			expect{command: "remote add", kind: "unknown_flag", exitCode: 1}},
		{"unknown flag on the app", []string{"-z"},
			expect{command: "", kind: "unknown_flag", exitCode: 1}},
		{"flag without its value", []string{"deploy", "--target"},
			expect{command: "deploy", kind: "invalid_flag", exitCode: 1}},
		{"unknown subcommand", []string{"remvoe", "add"},
			expect{command: "", args: 2, kind: "unknown_command", exitCode: 3}},
		{"unknown nested subcommand", []string{"config", "got", "x"},
			expect{command: "config", args: 2, kind: "unknown_command", exitCode: 3}},
		{"missing required flag", []string{"deploy"},
			expect{command: "deploy", kind: "missing_flag", exitCode: 1}},
		{"failing app Before", []string{"--fail-pre", "deploy", "--target", "prod"},
			expect{command: "", flags: []string{"fail-pre"}, args: 3, kind: "pre_run_failed", exitCode: 1}},
		{"failing command Before", []string{"deep", "deeper", "deepest", "bad"},
			expect{command: "deep deeper deepest", args: 1, kind: "pre_run_failed", exitCode: 1}},
		{"failing After", []string{"deep", "deeper", "deepest", "postfail"},
			expect{command: "deep deeper deepest", args: 1, kind: "post_run_failed", exitCode: 1}},
		{"cli.Exit from an action", []string{"exit"},
			expect{command: "exit", kind: "error", exitCode: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			got := runBoth(t, e, tc.args...)
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events queued, want 1", len(evs))
			}
			checkEvent(t, evs[0], tc.want)
			for _, n := range got.queuedAtExit {
				if n != 1 {
					t.Errorf("%d events were queued when urfave exited, want 1", n)
				}
			}
		})
	}
}

// newDefaultApp builds an app the way most tools do: cli.NewApp() and its
// defaults (urfave's help as the app's Action), with a Version.
func newDefaultApp(log *hookLog) *cli.App {
	app := cli.NewApp()
	app.Name = "tool"
	app.Version = "1.2.3"
	app.Commands = []*cli.Command{
		{
			Name: "init",
			Action: func(c *cli.Context) error {
				log.add("init %v", c.Args().Slice())
				return nil
			},
		},
		{
			Name: "remote",
			Subcommands: []*cli.Command{{
				Name: "add",
				Action: func(c *cli.Context) error {
					log.add("remote add %v", c.Args().Slice())
					return nil
				},
			}},
		},
	}
	return app
}

func TestRecordsEveryPathOfADefaultApp(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want expect
	}{
		{"app", []string{}, expect{command: "", success: true}},
		{"command", []string{"init", "x"}, expect{command: "init", args: 1, success: true}},
		{"unknown command", []string{"nosuch"},
			expect{command: "", args: 1, kind: "unknown_command", exitCode: 3}},
		{"unknown nested command", []string{"remote", "nosuch"},
			expect{command: "remote", args: 1, kind: "unknown_command", exitCode: 3}},
		{"help command", []string{"help", "init"}, expect{command: "help", args: 1, success: true}},
		{"help command without a topic", []string{"help"}, expect{command: "help", success: true}},
		{"help alias", []string{"h", "init"}, expect{command: "help", args: 1, success: true}},
		{"help command for an unknown command", []string{"help", "nosuch"},
			expect{command: "help", args: 1, kind: "unknown_command", exitCode: 3}},
		{"help flag", []string{"--help"}, expect{command: "", flags: []string{"help"}, success: true}},
		{"help flag of a command", []string{"init", "--help"}, expect{command: "init", flags: []string{"help"}, success: true}},
		{"version flag", []string{"--version"}, expect{command: "", flags: []string{"version"}, success: true}},
		{"version flag, short", []string{"-v"}, expect{command: "", flags: []string{"version"}, success: true}},
		{"version flag set to false", []string{"--version=false"}, expect{command: "", flags: []string{"version"}, success: true}},
		{"unknown flag", []string{"--nope"}, expect{command: "", kind: "unknown_flag", exitCode: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			got := runBothWith(t, e, newDefaultApp, tc.args...)
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events queued, want 1", len(evs))
			}
			checkEvent(t, evs[0], tc.want)
			if len(got.exitCodes) != len(got.queuedAtExit) {
				t.Fatalf("exit codes %v, queued at exit %v", got.exitCodes, got.queuedAtExit)
			}
			for _, n := range got.queuedAtExit {
				if n != 1 {
					t.Errorf("%d events were queued when urfave exited, want 1", n)
				}
			}
		})
	}
}

func TestPanicIsRecordedAndRepanicked(t *testing.T) {
	e := newEnv(t, nil)
	var log hookLog
	app := newApp(&log)
	r := tkurfave.Instrument(app, e.cfg)
	var got any
	func() {
		defer func() { got = recover() }()
		run(t, e, app, r.Run, &log, "crash")
	}()
	if got != "boom" {
		t.Fatalf("recovered %v, want the original panic value \"boom\"", got)
	}
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d events queued, want 1", len(evs))
	}
	checkEvent(t, evs[0], expect{command: "crash", kind: "panic", exitCode: 2})
}

func TestOwnHandlersStillRun(t *testing.T) {
	e := newEnv(t, nil)
	build := func(log *hookLog) *cli.App {
		app := newApp(log)
		app.OnUsageError = func(c *cli.Context, err error, sub bool) error {
			log.add("usage error handler")
			return fmt.Errorf("usage: %w", err)
		}
		app.CommandNotFound = func(c *cli.Context, name string) {
			log.add("not found %s", name)
			fmt.Fprintf(c.App.Writer, "no such command %q\n", name)
		}
		app.ExitErrHandler = func(c *cli.Context, err error) {
			log.add("exit handler %v", err != nil)
		}
		return app
	}
	for _, args := range [][]string{{"--nope"}, {"bogus"}, {"remote", "add", "--nope"}, {"deploy", "--target", "fail"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var plainLog, tkLog hookLog
			plain := build(&plainLog)
			want := run(t, nil, plain, plain.Run, &plainLog, args...)
			inst := build(&tkLog)
			got := run(t, e, inst, tkurfave.Instrument(inst, e.cfg).Run, &tkLog, args...)
			if got.stdout != want.stdout || got.err != want.err || got.stderr != want.stderr || !reflect.DeepEqual(got.calls, want.calls) {
				t.Fatalf("the app's own handlers were not honoured:\n got %+v\nwant %+v", got, want)
			}
		})
	}
	kinds := map[string]int{}
	for _, ev := range e.events(t) {
		kinds[ev.Metadata["error_kind"].(string)]++
	}
	if want := map[string]int{"unknown_flag": 2, "unknown_command": 1, "error": 1}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
}

func TestNoProcessWideSettingChanges(t *testing.T) {
	e := newEnv(t, nil)
	helpFlag, versionFlag, errWriter := cli.HelpFlag, cli.VersionFlag, cli.ErrWriter
	exiter := fmt.Sprintf("%p", cli.OsExiter)
	var log hookLog
	app := newApp(&log)
	r := tkurfave.Instrument(app, e.cfg)
	app.Writer, app.ErrWriter = &bytes.Buffer{}, &bytes.Buffer{}
	_ = r.Run([]string{"tool", "remote", "add", "a", "b"})
	if cli.HelpFlag != helpFlag || cli.VersionFlag != versionFlag || cli.ErrWriter != errWriter || fmt.Sprintf("%p", cli.OsExiter) != exiter {
		t.Fatal("a urfave global changed")
	}
}

func TestShowTelemetryFlag(t *testing.T) {
	for _, args := range [][]string{
		{"remote", "add", "--show-telemetry", "o", "u"},
		{"--show-telemetry", "remote", "add", "o", "u"},
	} {
		e := newEnv(t, nil)
		var log hookLog
		app := newApp(&log)
		got := run(t, e, app, tkurfave.Instrument(app, e.cfg).Run, &log, args...)
		if got.stdout != "added o\n" {
			t.Fatalf("stdout %q", got.stdout)
		}
		var ev wire.Event
		if err := json.Unmarshal([]byte(strings.TrimSpace(got.stderr)), &ev); err != nil {
			t.Fatalf("stderr is not the event: %q: %v", got.stderr, err)
		}
		checkEvent(t, ev, expect{command: "remote add", args: 2, success: true})
	}
}

func TestDoNotTrackRecordsNothing(t *testing.T) {
	e := newEnv(t, map[string]string{"DO_NOT_TRACK": "1"})
	runBoth(t, e, "remote", "add", "a", "b")
	// Nothing of the SDK's is opened or made: not even the queue's directory.
	if _, err := os.Stat(filepath.Dir(e.cfg.Queue.Path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a run with DO_NOT_TRACK=1 made the queue directory (stat: %v)", err)
	}
	runBoth(t, e, "exit") // its exit hook reads the queue
	if n := len(e.events(t)); n != 0 {
		t.Fatalf("%d events queued with DO_NOT_TRACK=1", n)
	}
}

func TestTelemetryCommands(t *testing.T) {
	e := newEnv(t, nil)
	do := func(args ...string) result {
		var log hookLog
		app := newApp(&log)
		return run(t, e, app, tkurfave.Instrument(app, e.cfg).Run, &log, args...)
	}
	do("remote", "add", "a", "b")
	do("config", "get", "k")
	st := do("telemetry", "status")
	for _, s := range []string{"Telemetry is on: the author's default (silent).", "Anonymous ID: anon_", "Queued events: 2"} {
		if !strings.Contains(st.stdout, s) {
			t.Errorf("status lacks %q:\n%s", s, st.stdout)
		}
	}
	show := do("telemetry", "show")
	lines := strings.Split(strings.TrimSpace(show.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"command":"config get"`) {
		t.Fatalf("show:\n%s", show.stdout)
	}
	dis := do("telemetry", "disable")
	if !strings.Contains(dis.stdout, "Deleted 2 queued events") {
		t.Errorf("disable said %q", dis.stdout)
	}
	do("remote", "add", "a", "b")
	do("exit")
	if n := len(e.events(t)); n != 0 {
		t.Fatalf("%d events queued after disable", n)
	}
	do("telemetry", "enable")
	do("exit")
	if n := len(e.events(t)); n != 1 {
		t.Fatalf("%d events queued after enable, want 1", n)
	}
}

func TestFailedFlushPrintsItsErrorOnce(t *testing.T) {
	for _, build := range []func(*hookLog) *cli.App{newApp, newDefaultApp} {
		e := newEnv(t, nil) // no endpoint: sending fails
		var log hookLog
		app := build(&log)
		r := tkurfave.Instrument(app, e.cfg)
		run(t, e, app, r.Run, &log, "help")
		app = build(&log)
		r = tkurfave.Instrument(app, e.cfg)
		got := run(t, e, app, r.Run, &log, "telemetry", "flush")
		// urfave prints the exit error and exits: the app's main never sees it.
		if !reflect.DeepEqual(got.exitCodes, []int{1}) {
			t.Fatalf("exit codes %v, want [1]", got.exitCodes)
		}
		all := got.stdout + got.stderr + got.globalErr
		if n := strings.Count(all, "sending failed"); n != 1 {
			t.Fatalf("the error is printed %d times:\nstdout %q\nstderr %q\nErrWriter %q", n, got.stdout, got.stderr, got.globalErr)
		}
		if !strings.HasPrefix(got.globalErr, "sending failed, 0 sent and 1 still queued: ") {
			t.Fatalf("ErrWriter %q", got.globalErr)
		}
	}
}

func TestExitFromBeforeAndMergedAfterErrors(t *testing.T) {
	build := func(log *hookLog) *cli.App {
		app := newApp(log)
		app.Commands = append(app.Commands,
			&cli.Command{
				Name: "guarded",
				Before: func(c *cli.Context) error {
					log.add("guarded before")
					return cli.Exit("not allowed here", 4)
				},
				Action: func(c *cli.Context) error { log.add("guarded action"); return nil },
			},
			&cli.Command{
				Name:   "leaky",
				Action: func(c *cli.Context) error { log.add("leaky action"); return errors.New("work failed") },
				After:  func(c *cli.Context) error { log.add("leaky after"); return errors.New("cleanup failed") },
			},
		)
		return app
	}
	for _, tc := range []struct {
		args []string
		want expect
	}{
		{[]string{"guarded"}, expect{command: "guarded", kind: "pre_run_failed", exitCode: 4}},
		{[]string{"leaky"}, expect{command: "leaky", kind: "error", exitCode: 1}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			e := newEnv(t, nil)
			var plainLog, tkLog hookLog
			plain := build(&plainLog)
			want := run(t, nil, plain, plain.Run, &plainLog, tc.args...)
			inst := build(&tkLog)
			got := run(t, e, inst, tkurfave.Instrument(inst, e.cfg).Run, &tkLog, tc.args...)
			if got.stdout != want.stdout || got.stderr != want.stderr || got.globalErr != want.globalErr ||
				got.err != want.err || !reflect.DeepEqual(got.calls, want.calls) || !reflect.DeepEqual(got.exitCodes, want.exitCodes) {
				t.Fatalf("behaviour changed:\n got %+v\nwant %+v", got, want)
			}
			for _, n := range got.queuedAtExit {
				if n != 1 {
					t.Fatalf("%d events queued when urfave exited", n)
				}
			}
			evs := e.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			checkEvent(t, evs[0], tc.want)
		})
	}
}

func TestExitErrHandlerWithoutOnUsageError(t *testing.T) {
	// urfave calls the ExitErrHandler after an OnUsageError only; the
	// adapter's stand-in for a missing OnUsageError must not make it call it.
	build := func(log *hookLog) *cli.App {
		app := newApp(log)
		app.ExitErrHandler = func(c *cli.Context, err error) { log.add("exit handler: %v", err) }
		return app
	}
	for _, args := range [][]string{{"--nope"}, {"remote", "add", "--nope"}, {"exit"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			e := newEnv(t, nil)
			var plainLog, tkLog hookLog
			plain := build(&plainLog)
			want := run(t, nil, plain, plain.Run, &plainLog, args...)
			inst := build(&tkLog)
			got := run(t, e, inst, tkurfave.Instrument(inst, e.cfg).Run, &tkLog, args...)
			got.stdout = spaces.ReplaceAllString(telemetryLine.ReplaceAllString(got.stdout, ""), "  ")
			want.stdout = spaces.ReplaceAllString(want.stdout, "  ")
			if got.stdout != want.stdout || got.err != want.err || !reflect.DeepEqual(got.calls, want.calls) {
				t.Fatalf("behaviour changed:\n got %+v\nwant %+v", got, want)
			}
			if n := len(e.events(t)); n != 1 {
				t.Fatalf("%d events", n)
			}
		})
	}
}
