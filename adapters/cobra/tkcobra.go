package tkcobra

import (
	"context"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/adapter"
	"github.com/telemetry-kit/telemetry-kit/internal/telemetrycmd"
)

// Config configures [Instrument]. Its zero value, with a ServiceName, is a
// valid configuration.
type Config struct {
	// Config is the client's configuration. Its Mode is ignored: a command
	// line tool always runs the client in [core.CLIMode]. Zero Host.Stderr: the
	// root command's stderr (cobra's ErrOrStderr).
	core.Config

	// AllowFlagValues names the flags (long names, without dashes) whose
	// values are recorded when the user sets them. Values are scrubbed like
	// every other string. Zero: no value is recorded, only flag names.
	AllowFlagValues []string

	// CommandName names the generated telemetry subcommand.
	// Zero: "telemetry".
	CommandName string

	// ShowFlag names the hidden persistent flag that prints the run's event
	// to stderr. Zero: "show-telemetry".
	ShowFlag string

	// HideCommand hides the telemetry subcommand from the root's help.
	// Zero: it is listed.
	HideCommand bool

	// HideFlush hides `telemetry flush` from the subcommand's help.
	// Zero: it is listed.
	HideFlush bool

	// ExitCode maps the error Execute returns to the exit code the tool
	// exits with, for the event. Zero: 1 for any error, 0 for none.
	ExitCode func(error) int
}

// Runner runs an instrumented command tree. Create it with [Instrument].
type Runner struct {
	root     *cobra.Command
	cfg      Config
	tele     *cobra.Command // the generated subcommand; nil when not added
	showFlag string
	args     []string
	argsSet  bool

	wrapped map[*cobra.Command]bool // the commands whose hooks are wrapped

	mu  sync.Mutex
	run *run // the run in progress
}

// run is what one Execute learns while cobra runs the tree.
type run struct {
	inv      *adapter.Invocation
	ctl      telemetrycmd.Controls
	cmd      *cobra.Command // the command the stages below belong to
	args     []string       // its positional arguments, as its hooks saw them
	argsSeen bool
	stage    stage
	failed   bool  // the stage returned an error
	flagErr  error // the flag parsing error, before the author's FlagErrorFunc
	begun    bool  // BeginCommand was called for this run
}

type stage int

const (
	stageNone stage = iota // none of the command's code ran
	stageArgs
	stagePre
	stageRun
	stagePost
)

// Instrument prepares root's command tree for recording and returns the
// [Runner] that runs it. It adds the telemetry subcommand and the show flag
// and wraps every command's hooks; it does no I/O. Run the tree with
// [Runner.Execute] (or ExecuteContext, ExecuteC).
func Instrument(root *cobra.Command, cfg Config) *Runner {
	if len(cfg.Policy.FlagValues) == 0 {
		// The notice, the prompt and the help name what is collected.
		cfg.Policy.FlagValues = cfg.AllowFlagValues
	}
	r := &Runner{root: root, cfg: cfg, showFlag: cfg.ShowFlag, wrapped: map[*cobra.Command]bool{}}
	if r.showFlag == "" {
		r.showFlag = telemetrycmd.DefaultShowFlag
	}
	name := cfg.CommandName
	if name == "" {
		name = telemetrycmd.DefaultCommandName
	}
	var cmds []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// The flag error function in effect for each command, before any is replaced.
	origFlagErr := make([]func(*cobra.Command, error) error, len(cmds))
	for i, c := range cmds {
		origFlagErr[i] = c.FlagErrorFunc()
	}
	for i, c := range cmds {
		r.wrap(c, origFlagErr[i])
	}
	if root.PersistentFlags().Lookup(r.showFlag) == nil && root.Flags().Lookup(r.showFlag) == nil {
		root.PersistentFlags().Bool(r.showFlag, false, telemetrycmd.ShortShowFlag)
		_ = root.PersistentFlags().MarkHidden(r.showFlag)
	} else {
		r.logger().Warn("telemetry: the tool already has the show flag; not adding it", "flag", r.showFlag)
	}
	if !root.HasSubCommands() {
		return r
	}
	for _, c := range root.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			r.logger().Warn("telemetry: the tool already has the telemetry command; not adding it", "command", name)
			return r
		}
	}
	r.tele = r.newCommand(name)
	root.AddCommand(r.tele)
	return r
}

func (r *Runner) logger() interface {
	Warn(string, ...any)
} {
	if r.cfg.Logger != nil {
		return r.cfg.Logger
	}
	return nopLogger{}
}

type nopLogger struct{}

func (nopLogger) Warn(string, ...any) {}

// current returns the run in progress, or nil.
func (r *Runner) current() *run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

// enter notes that cmd reached stage s.
func (r *Runner) enter(cmd *cobra.Command, s stage, args []string) {
	if st := r.current(); st != nil {
		st.cmd, st.stage, st.failed = cmd, s, false
		st.args, st.argsSeen = args, true
		if !st.begun && !r.skip(cmd) {
			// The command and its flags are known: if the process ends
			// inside the author's code, the run is still recorded.
			st.begun = true
			st.inv.Begin(r.describe(st, cmd))
		}
	}
}

// fail notes that the stage entered last returned an error.
func (r *Runner) fail() {
	if st := r.current(); st != nil {
		st.failed = true
	}
}

func (r *Runner) flagError(cmd *cobra.Command, err error) {
	if st := r.current(); st != nil {
		st.cmd, st.flagErr = cmd, err
	}
}

// hookE wraps one of the author's error-returning hooks.
func (r *Runner) hookE(f func(*cobra.Command, []string) error, s stage) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		r.enter(cmd, s, args)
		err := f(cmd, args)
		if err != nil {
			r.fail()
		}
		return err
	}
}

// hook wraps one of the author's hooks that return nothing.
func (r *Runner) hook(f func(*cobra.Command, []string), s stage) func(*cobra.Command, []string) {
	return func(cmd *cobra.Command, args []string) {
		r.enter(cmd, s, args)
		f(cmd, args)
	}
}

// wrap instruments one command. Only the hooks cobra would run are wrapped,
// and none is added, so that which hooks run, and in what order, is the same.
// A nil origFlagErr keeps the flag error function c inherits (its parent's,
// already wrapped).
func (r *Runner) wrap(c *cobra.Command, origFlagErr func(*cobra.Command, error) error) {
	r.wrapped[c] = true
	if origFlagErr != nil {
		c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
			r.flagError(cmd, err)
			return origFlagErr(cmd, err)
		})
	}
	if f := c.Args; f != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			r.enter(cmd, stageArgs, args)
			err := f(cmd, args)
			if err != nil {
				r.fail()
			}
			return err
		}
	}
	if f := c.PersistentPreRunE; f != nil {
		c.PersistentPreRunE = r.hookE(f, stagePre)
	} else if f := c.PersistentPreRun; f != nil {
		c.PersistentPreRun = r.hook(f, stagePre)
	}
	if f := c.PreRunE; f != nil {
		c.PreRunE = r.hookE(f, stagePre)
	} else if f := c.PreRun; f != nil {
		c.PreRun = r.hook(f, stagePre)
	}
	if f := c.RunE; f != nil {
		c.RunE = r.hookE(f, stageRun)
	} else if f := c.Run; f != nil {
		c.Run = r.hook(f, stageRun)
	}
	if f := c.PostRunE; f != nil {
		c.PostRunE = r.hookE(f, stagePost)
	} else if f := c.PostRun; f != nil {
		c.PostRun = r.hook(f, stagePost)
	}
	if f := c.PersistentPostRunE; f != nil {
		c.PersistentPostRunE = r.hookE(f, stagePost)
	} else if f := c.PersistentPostRun; f != nil {
		c.PersistentPostRun = r.hook(f, stagePost)
	}
}

// SetArgs sets the arguments the tree runs with, like the root's SetArgs
// (which it calls). Zero: os.Args[1:].
func (r *Runner) SetArgs(args []string) {
	r.args, r.argsSet = args, true
	r.root.SetArgs(args)
}

// Client returns the client of the run in progress (nil outside Execute, or
// when telemetry could not start). Commands may use it to record their own
// events, e.g. with [core.Client.TrackFeature].
func (r *Runner) Client() *core.Client {
	if st := r.current(); st != nil {
		return st.inv.Client()
	}
	return nil
}

// Execute runs the tree like the root's Execute and records the run.
func (r *Runner) Execute() error {
	_, err := r.execute(r.root.ExecuteC)
	return err
}

// ExecuteContext runs the tree like the root's ExecuteContext and records the run.
func (r *Runner) ExecuteContext(ctx context.Context) error {
	_, err := r.ExecuteContextC(ctx)
	return err
}

// ExecuteC runs the tree like the root's ExecuteC and records the run.
func (r *Runner) ExecuteC() (*cobra.Command, error) { return r.execute(r.root.ExecuteC) }

// ExecuteContextC runs the tree like the root's ExecuteContextC and records the run.
func (r *Runner) ExecuteContextC(ctx context.Context) (*cobra.Command, error) {
	return r.execute(func() (*cobra.Command, error) { return r.root.ExecuteContextC(ctx) })
}

// execute records the run of the tree by run, one of the root's Execute
// methods.
func (r *Runner) execute(run func() (*cobra.Command, error)) (cmd *cobra.Command, err error) {
	r.initCompletion()
	st := r.start()
	r.mu.Lock()
	r.run = st
	r.mu.Unlock()
	returned := false
	defer func() {
		if !returned {
			// The host panicked: record it and let the panic go on unchanged
			// (no recover here).
			r.finishPanic(st)
		}
		r.mu.Lock()
		r.run = nil
		r.mu.Unlock()
	}()
	cmd, err = run()
	returned = true
	r.finish(st, cmd, err)
	return cmd, err
}

// initCompletion adds cobra's default `completion` command, which cobra
// itself adds at the start of Execute, and wraps it like the tree's own
// commands. It is added here, right before cobra would add it, so that it is
// built from the root's settings (CompletionOptions, output) as they are
// then. A root without subcommands is left to cobra: from cobra v1.9 on it
// gets the command only when it is called, which depends on the arguments.
func (r *Runner) initCompletion() {
	defer func() { _ = recover() }() // telemetry never harms the host
	root := r.root
	if root.CompletionOptions.DisableDefaultCmd || !hasOwnSubcommands(root) {
		return
	}
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != compCmdName || r.wrapped[c] {
			continue
		}
		var walk func(*cobra.Command)
		walk = func(c *cobra.Command) {
			if !r.wrapped[c] {
				r.wrap(c, nil)
			}
			for _, sub := range c.Commands() {
				walk(sub)
			}
		}
		walk(c)
	}
}

// compCmdName is the name of cobra's default completion command.
const compCmdName = "completion"

// hasOwnSubcommands reports whether root has subcommands other than the
// ones cobra adds (help, and the hidden shell completion request).
func hasOwnSubcommands(root *cobra.Command) bool {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			continue
		}
		return true
	}
	return false
}

// start creates the run's client and invocation. It never fails: without a
// client nothing is recorded.
func (r *Runner) start() (st *run) {
	st = &run{}
	defer func() {
		if p := recover(); p != nil { // telemetry never harms the host
			st.inv = nil
		}
	}()
	if completionRequest(os.Args) {
		// The shell asks for completions: no client, so nothing is
		// recorded and no notice is printed or marked as shown.
		return st
	}
	cfg := r.cfg.Config
	if cfg.Host.Stderr == nil {
		cfg.Host.Stderr = r.root.ErrOrStderr()
	}
	if cfg.Policy.CommandHint == "" && r.tele != nil {
		cfg.Policy.CommandHint = r.root.Name() + " " + r.tele.Name()
	}
	client, err := adapter.NewClient(cfg)
	st.inv = adapter.NewInvocation(client, r.cfg.AllowFlagValues, cfg.Host.Now)
	st.ctl = telemetrycmd.Controls{Client: client, Err: err, Service: cfg.ServiceName}
	return st
}

func (r *Runner) finishPanic(st *run) {
	defer func() { _ = recover() }()
	cmd := st.cmd
	if cmd == nil {
		cmd = r.root
	}
	if r.skip(cmd) {
		st.inv.Skip()
		return
	}
	c := r.describe(st, cmd)
	c.ErrorKind, c.ExitCode = adapter.KindPanic, adapter.PanicExitCode
	r.show(st, cmd)
	st.inv.Finish(c)
}

func (r *Runner) finish(st *run, cmd *cobra.Command, err error) {
	defer func() { _ = recover() }() // telemetry never harms the host
	if cmd == nil {
		cmd = r.root
	}
	if r.skip(cmd) {
		st.inv.Skip()
		return
	}
	c := r.describe(st, cmd)
	if err != nil {
		c.Err = err
		c.ExitCode = 1
		if r.cfg.ExitCode != nil {
			c.ExitCode = r.cfg.ExitCode(err)
		}
		c.ErrorKind = r.kind(st, cmd, err)
	}
	r.show(st, cmd)
	st.inv.Finish(c)
}

// skip reports whether cmd's runs are not recorded: the telemetry
// subcommand and shell completion requests.
func (r *Runner) skip(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if r.tele != nil && c == r.tele {
			return true
		}
	}
	switch cmd.Name() {
	case cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return cmd.Parent() == r.root
	}
	return false
}

// show turns on echoing when the user set the show flag.
func (r *Runner) show(st *run, cmd *cobra.Command) {
	on := false
	if f := cmd.Flags().Lookup(r.showFlag); f != nil && f.Changed {
		on = f.Value.String() == "true"
	} else if !cmd.Flags().Parsed() {
		// cobra failed before parsing flags (unknown command): read them raw.
		args := os.Args[1:]
		if r.argsSet {
			args = r.args
		}
		on = adapter.ArgsHaveFlag(args, r.showFlag)
	}
	if on {
		st.inv.EchoTo(cmd.ErrOrStderr())
	}
}

// describe fills in what is known about cmd's run, whatever its outcome.
func (r *Runner) describe(st *run, cmd *cobra.Command) core.Command {
	c := core.Command{Path: path(cmd)}
	var set []string
	values := map[string]string{}
	// The command's own parse holds the flags set after it; with
	// TraverseChildren, its parents' parses hold those set before it.
	for c := cmd; c != nil; c = c.Parent() {
		c.Flags().Visit(func(f *pflag.Flag) {
			if _, ok := values[f.Name]; ok || f.Name == r.showFlag {
				return
			}
			set = append(set, f.Name)
			values[f.Name] = f.Value.String()
		})
	}
	c.Flags = set
	c.FlagValues = st.inv.FlagValues(set, func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok
	})
	switch {
	case st.argsSeen && st.cmd == cmd:
		c.Args = len(st.args)
	case cmd.Flags().Parsed():
		c.Args = len(cmd.Flags().Args())
	}
	return c
}

// kind names the failure err of cmd's run, or returns "" to let the core
// derive the kind from err (an error returned by the command's action).
func (r *Runner) kind(st *run, cmd *cobra.Command, err error) string {
	if st.flagErr != nil {
		if k := flagKind(st.flagErr); k != "" {
			return k
		}
		return adapter.KindInvalidFlag
	}
	if st.failed && st.cmd == cmd {
		switch st.stage {
		case stageArgs:
			if strings.HasPrefix(err.Error(), "unknown command ") {
				return adapter.KindUnknownCommand
			}
			return adapter.KindInvalidArgs
		case stagePre:
			return adapter.KindPreRun
		case stageRun:
			return ""
		case stagePost:
			return adapter.KindPostRun
		}
	}
	if k := flagKind(err); k != "" { // parsed while traversing (TraverseChildren)
		return k
	}
	if cmd.Flags().Parsed() {
		if cmd.ValidateRequiredFlags() != nil {
			return adapter.KindMissingFlag
		}
		if cmd.ValidateFlagGroups() != nil {
			return adapter.KindInvalidFlag
		}
	} else if strings.HasPrefix(err.Error(), "unknown command ") {
		return adapter.KindUnknownCommand
	}
	return ""
}

// flagKind classifies a flag parsing error, or returns "". It reads the
// message, which every pflag release since v1.0.0 words the same way (the
// typed errors of pflag v1.0.7 keep it), so that the adapter works with the
// pflag its host already has.
func flagKind(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "unknown flag: "), strings.HasPrefix(msg, "unknown shorthand flag: "):
		return adapter.KindUnknownFlag
	case strings.HasPrefix(msg, "flag needs an argument: "), strings.HasPrefix(msg, "invalid argument "),
		strings.HasPrefix(msg, "bad flag syntax: "):
		return adapter.KindInvalidFlag
	}
	return ""
}

// path is cmd's full command path without the root's name, with canonical
// names: "remote add".
func path(cmd *cobra.Command) string {
	var names []string
	for c := cmd; c != nil && c.HasParent(); c = c.Parent() {
		names = append(names, c.Name())
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	return strings.Join(names, " ")
}

// completionRequest reports whether args (the process's arguments) are a
// shell's request for completions, which cobra answers with its hidden
// __complete command. A tree run with SetArgs is checked again when it
// finishes (see [Runner.skip]).
func completionRequest(args []string) bool {
	return len(args) > 1 && (args[1] == cobra.ShellCompRequestCmd || args[1] == cobra.ShellCompNoDescRequestCmd)
}
