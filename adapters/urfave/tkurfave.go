package tkurfave

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/adapter"
	"github.com/telemetry-kit/telemetry-kit/internal/telemetrycmd"
)

// Config configures [Instrument]. Its zero value, with a ServiceName, is a
// valid configuration.
type Config struct {
	// Config is the client's configuration. Its Mode is ignored: a command
	// line tool always runs the client in [core.CLIMode]. Zero Host.Stderr: the
	// app's ErrWriter, or os.Stderr.
	core.Config

	// AllowFlagValues names the flags (by their first name) whose values are
	// recorded when the user sets them. Values are scrubbed like every other
	// string. Zero: no value is recorded, only flag names.
	AllowFlagValues []string

	// CommandName names the generated telemetry subcommand.
	// Zero: "telemetry".
	CommandName string

	// ShowFlag names the hidden flag that prints the run's event to stderr.
	// Zero: "show-telemetry".
	ShowFlag string

	// HideCommand hides the telemetry subcommand from the app's help.
	// Zero: it is listed.
	HideCommand bool

	// HideFlush hides `telemetry flush` from the subcommand's help.
	// Zero: it is listed.
	HideFlush bool
}

// Runner runs an instrumented app. Create it with [Instrument].
type Runner struct {
	app        *cli.App
	cfg        Config
	showFlag   string
	tele       *cli.Command // the generated subcommand; nil when not added
	helpCmd    *cli.Command // urfave's own help command: never wrapped
	helpAction cli.ActionFunc
	exitErr    cli.ExitErrHandlerFunc // the app's own, or nil

	mu  sync.Mutex
	run *run
}

// run is what one Run learns while urfave runs the app.
type run struct {
	inv   *adapter.Invocation
	ctl   telemetrycmd.Controls
	args  []string
	begun bool // BeginCommand was called for this run

	ctx        *cli.Context // the deepest context any wrapper saw
	reached    bool         // ctx's Before or Action ran (not only its After)
	stage      stage
	failed     bool  // the stage returned an error
	usageErr   error // a flag parsing error
	afterErr   error // an After's error
	helpAction bool  // the action that ran is urfave's help, standing in for a missing one
	notFound   bool  // the app's CommandNotFound ran
	suppress   bool  // skip the app's ExitErrHandler once (a usage error it would not have seen)
}

type stage int

const (
	stageNone stage = iota
	stagePre
	stageRun
)

// Instrument prepares app for recording and returns the [Runner] that runs
// it. It adds the telemetry subcommand and the show flag and wraps the
// app's and every command's hooks; it does no I/O. Run the app with
// [Runner.Run] or [Runner.RunContext].
func Instrument(app *cli.App, cfg Config) *Runner {
	if len(cfg.Policy.FlagValues) == 0 {
		// The notice, the prompt and the help name what is collected.
		cfg.Policy.FlagValues = cfg.AllowFlagValues
	}
	r := &Runner{app: app, cfg: cfg, showFlag: cfg.ShowFlag}
	if r.showFlag == "" {
		r.showFlag = telemetrycmd.DefaultShowFlag
	}
	// urfave's help command and action, as urfave itself would use them for
	// a command without an Action, taken from a throwaway app.
	probe := &cli.App{Name: "probe", Writer: io.Discard, ErrWriter: io.Discard}
	probe.Setup()
	if h := probe.Command("help"); h != nil {
		r.helpCmd, r.helpAction = h, h.Action
	}
	name := cfg.CommandName
	if name == "" {
		name = telemetrycmd.DefaultCommandName
	}

	app.Action = r.action(app.Action)
	if app.Before != nil {
		app.Before = r.before(app.Before)
	}
	app.After = r.after(app.After)
	app.OnUsageError = r.onUsageError(app.OnUsageError)
	if f := app.CommandNotFound; f != nil {
		app.CommandNotFound = func(cCtx *cli.Context, command string) {
			if st := r.current(); st != nil {
				st.notFound = true
			}
			f(cCtx, command)
		}
	}
	// urfave hands every action's outcome to the app's exit handling, also
	// that of its own help command, which is never wrapped: the handler is
	// where the adapter sees that command, and records the run before urfave
	// ends the process.
	r.exitErr = app.ExitErrHandler
	app.ExitErrHandler = r.handleExit
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c == r.helpCmd {
				continue
			}
			r.wrap(c)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)

	if !hasFlag(app.Flags, r.showFlag) {
		app.Flags = append(app.Flags, r.newShowFlag())
	}
	if len(app.Commands) == 0 {
		return r
	}
	for _, c := range app.Commands {
		if c.HasName(name) {
			r.logger().Warn("telemetry: the app already has the telemetry command; not adding it", "command", name)
			return r
		}
	}
	r.tele = r.newCommand(name)
	app.Commands = append(app.Commands, r.tele)
	return r
}

func (r *Runner) newShowFlag() cli.Flag {
	return &cli.BoolFlag{Name: r.showFlag, Usage: telemetrycmd.ShortShowFlag, Hidden: true}
}

func hasFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range flagNames(f) {
			if n == name {
				return true
			}
		}
	}
	return false
}

// flagNames returns f.Names() without its cost: urfave's flag types compute
// it with a regular expression for every name, and Instrument looks at every
// flag of every command on every start. For urfave's own flag types, which
// all have Name and Aliases fields, the names are cut the same way, at the
// first comma or space; any other flag answers Names().
func flagNames(f cli.Flag) []string {
	v := reflect.ValueOf(f)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	// Only urfave's own types: another type may define Names differently.
	if v.Kind() != reflect.Struct || v.Type().PkgPath() != urfavePkg {
		return f.Names()
	}
	name, aliases := v.FieldByName("Name"), v.FieldByName("Aliases")
	if name.Kind() != reflect.String || aliases.Kind() != reflect.Slice || aliases.Type().Elem().Kind() != reflect.String {
		return f.Names()
	}
	names := make([]string, 0, 1+aliases.Len())
	names = append(names, cutName(name.String()))
	for i := range aliases.Len() {
		names = append(names, cutName(aliases.Index(i).String()))
	}
	return names
}

var urfavePkg = reflect.TypeFor[cli.BoolFlag]().PkgPath()

// cutName is what urfave's FlagNames does to each name: it drops everything
// from the first comma or space on (the v1 "name, n" form).
func cutName(s string) string {
	if i := strings.IndexAny(s, ", "); i >= 0 {
		return s[:i]
	}
	return s
}

func (r *Runner) logger() interface{ Warn(string, ...any) } {
	if r.cfg.Logger != nil {
		return r.cfg.Logger
	}
	return nopLogger{}
}

type nopLogger struct{}

func (nopLogger) Warn(string, ...any) {}

// wrap instruments one command.
func (r *Runner) wrap(c *cli.Command) {
	c.Action = r.action(c.Action)
	if c.Before != nil {
		c.Before = r.before(c.Before)
	}
	c.After = r.after(c.After)
	c.OnUsageError = r.onUsageError(c.OnUsageError)
	if !r.app.Suggest && !c.SkipFlagParsing && !hasFlag(c.Flags, r.showFlag) {
		c.Flags = append(c.Flags, r.newShowFlag())
	}
}

func (r *Runner) current() *run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

func depth(cCtx *cli.Context) int {
	if cCtx == nil {
		return -1
	}
	return len(cCtx.Lineage())
}

// see notes that cCtx was reached; reached is true when its own code (Before
// or Action) runs, rather than only its After.
func (st *run) see(cCtx *cli.Context, reached bool) {
	if depth(cCtx) > depth(st.ctx) {
		st.ctx, st.reached, st.stage, st.failed = cCtx, false, stageNone, false
	}
	if cCtx == st.ctx && reached {
		st.reached = true
	}
}

// isHelpAction reports whether f is urfave's help action (cli.NewApp's
// default Action, and what urfave runs for a command without one).
func (r *Runner) isHelpAction(f cli.ActionFunc) bool {
	if f == nil || r.helpAction == nil {
		return false
	}
	return reflect.ValueOf(f).Pointer() == reflect.ValueOf(r.helpAction).Pointer()
}

func (r *Runner) action(f cli.ActionFunc) cli.ActionFunc {
	isHelp := f == nil || r.isHelpAction(f)
	if f == nil {
		f = r.helpAction
	}
	return func(cCtx *cli.Context) error {
		st := r.current()
		if st != nil {
			st.see(cCtx, true)
			st.stage, st.failed, st.helpAction = stageRun, false, isHelp
			if !isHelp {
				r.begin(st)
			}
		}
		if f == nil { // no help action could be found; urfave would have one
			return nil
		}
		err := f(cCtx)
		if st != nil && err != nil {
			st.failed = true
			r.finishIfExiting(st, cCtx, err)
		}
		return err
	}
}

func (r *Runner) before(f cli.BeforeFunc) cli.BeforeFunc {
	return func(cCtx *cli.Context) error {
		st := r.current()
		if st != nil {
			st.see(cCtx, true)
			st.stage, st.failed = stagePre, false
		}
		err := f(cCtx)
		if st != nil && err != nil {
			st.failed = true
			r.finishIfExiting(st, cCtx, err)
		}
		return err
	}
}

func (r *Runner) after(f cli.AfterFunc) cli.AfterFunc {
	return func(cCtx *cli.Context) error {
		st := r.current()
		if st != nil {
			st.see(cCtx, false)
		}
		if f == nil {
			return nil
		}
		err := f(cCtx)
		if st != nil && err != nil && st.afterErr == nil {
			st.afterErr = err
		}
		return err
	}
}

// handleExit is the app's ExitErrHandler: it notes the outcome of urfave's
// own help command and records the run when urfave is about to end the
// process, then does what urfave would have done: call the app's own
// handler, or cli.HandleExitCoder.
func (r *Runner) handleExit(cCtx *cli.Context, err error) {
	if st := r.current(); st != nil {
		if st.suppress {
			st.suppress = false
			return
		}
		r.noteExit(st, cCtx, err)
	}
	if r.exitErr != nil {
		r.exitErr(cCtx, err)
		return
	}
	cli.HandleExitCoder(err)
}

func (r *Runner) noteExit(st *run, cCtx *cli.Context, err error) {
	defer func() { _ = recover() }() // telemetry never harms the host
	if cCtx != nil && cCtx.Command != nil && r.isHelpAction(cCtx.Command.Action) {
		// urfave's help command (`help`, `help CMD`) ran its action.
		st.see(cCtx, true)
		if st.ctx == cCtx {
			st.stage, st.failed, st.helpAction = stageRun, err != nil, true
		}
	}
	r.finishIfExiting(st, cCtx, err)
}

// onUsageError notes a flag parsing error. Without the author's own
// OnUsageError it prints exactly what urfave prints without one.
func (r *Runner) onUsageError(f cli.OnUsageErrorFunc) cli.OnUsageErrorFunc {
	return func(cCtx *cli.Context, err error, isSubcommand bool) error {
		st := r.current()
		if st != nil {
			st.see(cCtx, false)
			if st.usageErr == nil {
				st.usageErr = err
			}
		}
		if f != nil {
			err = f(cCtx, err, isSubcommand)
			if st != nil && err != nil {
				r.finishIfExiting(st, cCtx, err)
			}
			return err
		}
		usageError(cCtx, err, isSubcommand)
		if st != nil {
			// urfave calls the ExitErrHandler after an OnUsageError, which
			// it would not have done here.
			st.suppress = true
		}
		return err
	}
}

// usageError prints what urfave v2's Command.Run prints for a flag parsing
// error when the command has no OnUsageError.
func usageError(cCtx *cli.Context, err error, isSubcommand bool) {
	c := cCtx.Command
	_, _ = fmt.Fprintf(cCtx.App.Writer, "%s %s\n\n", "Incorrect Usage:", err.Error())
	if cCtx.App.Suggest {
		if suggestion, ok := suggestFlag(c, err); ok {
			fmt.Fprintf(cCtx.App.Writer, "%s", suggestion)
		}
	}
	if c == nil || !c.HideHelp {
		if !isSubcommand {
			_ = cli.ShowAppHelp(cCtx)
		} else if lin := cCtx.Lineage(); len(lin) > 1 {
			_ = cli.ShowCommandHelp(lin[1], c.Name)
		}
	}
}

const providedButNotDefined = "flag provided but not defined: -"

func suggestFlag(c *cli.Command, err error) (string, bool) {
	if c == nil || cli.SuggestFlag == nil {
		return "", false
	}
	errStr := err.Error()
	name := strings.TrimPrefix(errStr, providedButNotDefined)
	if name == errStr {
		return "", false
	}
	s := cli.SuggestFlag(c.Flags, name, c.HideHelp)
	if s == "" {
		return "", false
	}
	return fmt.Sprintf(cli.SuggestDidYouMeanTemplate, s) + "\n\n", true
}

// Client returns the client of the run in progress (nil outside Run, or
// when telemetry could not start). Commands may use it to record their own
// events, e.g. with [core.Client.TrackFeature].
func (r *Runner) Client() *core.Client {
	if st := r.current(); st != nil {
		return st.inv.Client()
	}
	return nil
}

// Run runs the app like its Run and records the run.
func (r *Runner) Run(arguments []string) error {
	return r.RunContext(context.Background(), arguments)
}

// RunContext runs the app like its RunContext and records the run.
func (r *Runner) RunContext(ctx context.Context, arguments []string) (err error) {
	st := r.start(arguments)
	r.mu.Lock()
	r.run = st
	r.mu.Unlock()
	returned := false
	defer func() {
		if !returned {
			// The host panicked: record it and let the panic go on
			// unchanged (no recover here).
			r.finishPanic(st)
		}
		r.mu.Lock()
		r.run = nil
		r.mu.Unlock()
	}()
	err = r.app.RunContext(ctx, arguments)
	returned = true
	r.finish(st, err)
	return err
}

func (r *Runner) errWriter() io.Writer {
	if r.app.ErrWriter != nil {
		return r.app.ErrWriter
	}
	return os.Stderr
}

// start creates the run's client and invocation. It never fails: without a
// client nothing is recorded.
func (r *Runner) start(arguments []string) (st *run) {
	st = &run{args: arguments}
	defer func() {
		if p := recover(); p != nil { // telemetry never harms the host
			st.inv = nil
		}
	}()
	if completionRequest(arguments) {
		// The shell asks for completions: no client, so nothing is
		// recorded and no notice is printed or marked as shown.
		return st
	}
	cfg := r.cfg.Config
	if cfg.Host.Stderr == nil {
		cfg.Host.Stderr = r.errWriter()
	}
	if cfg.Policy.CommandHint == "" && r.tele != nil {
		cfg.Policy.CommandHint = r.appName() + " " + r.tele.Name
	}
	client, err := adapter.NewClient(cfg)
	st.inv = adapter.NewInvocation(client, r.cfg.AllowFlagValues, cfg.Host.Now)
	st.ctl = telemetrycmd.Controls{Client: client, Err: err, Service: cfg.ServiceName}
	return st
}

// completionRequest reports whether arguments are a shell's request for
// completions: urfave/cli answers them when the last argument is its
// completion flag.
func completionRequest(arguments []string) bool {
	if len(arguments) < 2 {
		return false
	}
	last := arguments[len(arguments)-1]
	for _, name := range cli.BashCompletionFlag.Names() {
		if last == "--"+name {
			return true
		}
	}
	return false
}
