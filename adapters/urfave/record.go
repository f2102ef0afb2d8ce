package tkurfave

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/adapter"
)

// exits reports whether urfave will end the process when it hands err to
// the app's exit handling: cli.HandleExitCoder exits for an ExitCoder or a
// MultiError. With the app's own ExitErrHandler nobody can tell, so the
// answer is yes.
func (r *Runner) exits(err error) bool {
	if err == nil {
		return false
	}
	if r.exitErr != nil {
		return true
	}
	if _, ok := err.(cli.ExitCoder); ok {
		return true
	}
	_, ok := err.(cli.MultiError)
	return ok
}

// exitCode is the exit code urfave's exit handling (or a conventional main)
// gives err.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok {
		return ec.ExitCode()
	}
	if me, ok := err.(cli.MultiError); ok {
		return multiCode(me)
	}
	return 1
}

// multiCode mirrors cli.HandleExitCoder for a MultiError: the last
// ExitCoder's code, or 1.
func multiCode(me cli.MultiError) int {
	code := 1
	for _, e := range me.Errors() {
		if m, ok := e.(cli.MultiError); ok {
			code = multiCode(m)
		} else if ec, ok := e.(cli.ExitCoder); ok {
			code = ec.ExitCode()
		}
	}
	return code
}

// finishIfExiting records the run now when urfave is about to end the
// process with err (cli.Exit from an action, for example).
func (r *Runner) finishIfExiting(st *run, cCtx *cli.Context, err error) {
	if !r.exits(err) {
		return
	}
	st.see(cCtx, false)
	r.finish(st, err)
}

// begin notes, once, that the command's own action is about to run: if
// the process ends inside it, the run is still recorded.
func (r *Runner) begin(st *run) {
	defer func() { _ = recover() }() // telemetry never harms the host
	if st.begun {
		return
	}
	st.begun = true
	names, extended := r.path(st)
	if r.skip(st, names) {
		return
	}
	st.inv.Begin(r.describe(st, names, extended))
}

// finish records the run's outcome err, once.
func (r *Runner) finish(st *run, err error) {
	defer func() { _ = recover() }() // telemetry never harms the host
	if st.inv.Finished() {
		return
	}
	names, extended := r.path(st)
	if r.skip(st, names) {
		st.inv.Skip()
		return
	}
	c := r.describe(st, names, extended)
	if err != nil {
		if code := exitCode(err); code != 0 {
			c.Err, c.ExitCode = err, code
			c.ErrorKind = r.kind(st, err)
		}
	} else if st.notFound {
		// The app's CommandNotFound handled an unknown command.
		c.ErrorKind = adapter.KindUnknownCommand
	}
	r.show(st)
	st.inv.Finish(c)
}

func (r *Runner) finishPanic(st *run) {
	defer func() { _ = recover() }()
	if st.inv.Finished() {
		return
	}
	names, extended := r.path(st)
	if r.skip(st, names) {
		st.inv.Skip()
		return
	}
	c := r.describe(st, names, extended)
	c.ErrorKind, c.ExitCode = adapter.KindPanic, adapter.PanicExitCode
	r.show(st)
	st.inv.Finish(c)
}

// path returns the command names from below the app to the deepest command
// the run reached. When that command handed the run on to a subcommand that
// stopped before any of its code ran (its --help, for example), the
// subcommand is named too, and extended is true.
func (r *Runner) path(st *run) (names []string, extended bool) {
	ctx := st.ctx
	if ctx == nil {
		return nil, false
	}
	lin := ctx.Lineage()
	for i := len(lin) - 1; i >= 0; i-- {
		if lin[i].Command != nil {
			names = append(names, lin[i].Command.Name)
		}
	}
	if len(names) > 0 {
		names = names[1:] // the app itself
	}
	if st.stage != stageRun && !st.failed && st.usageErr == nil && ctx.Command != nil {
		if first := safeArgs(ctx).First(); first != "" {
			if sub := ctx.Command.Command(first); sub != nil {
				names = append(names, sub.Name)
				extended = true
			}
		}
	}
	return names, extended
}

// safeArgs returns cCtx's positional arguments; none when its flags were
// never parsed.
func safeArgs(cCtx *cli.Context) (a cli.Args) {
	defer func() {
		if recover() != nil {
			a = cli.NewContext(nil, flag.NewFlagSet("", flag.ContinueOnError), nil).Args()
		}
	}()
	return cCtx.Args()
}

// skip reports whether the run is not recorded: the telemetry subcommand
// and shell completion requests.
func (r *Runner) skip(st *run, names []string) bool {
	if r.tele != nil && len(names) > 0 && r.tele.HasName(names[0]) {
		return true
	}
	if r.app.EnableBashCompletion && len(st.args) > 0 && st.args[len(st.args)-1] == "--generate-bash-completion" {
		return true
	}
	return false
}

// show turns on echoing when the user set the show flag.
func (r *Runner) show(st *run) {
	var on bool
	if st.ctx == nil || st.usageErr != nil {
		// The flags were not (all) parsed: read them raw.
		on = adapter.ArgsHaveFlag(argsAfterProgram(st.args), r.showFlag)
	} else {
		for _, cc := range st.ctx.Lineage() {
			for _, n := range localFlagNames(cc) {
				on = on || n == r.showFlag
			}
		}
	}
	if on {
		st.inv.EchoTo(r.errWriter())
	}
}

func argsAfterProgram(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	return args[1:]
}

// describe fills in what is known about the run, whatever its outcome.
func (r *Runner) describe(st *run, names []string, extended bool) core.Command {
	c := core.Command{Path: strings.Join(names, " "), Flags: []string{}}
	ctx := st.ctx
	if ctx == nil {
		if name := helpShown(st); name != "" {
			c.Flags = append(c.Flags, name)
		} else if name := r.versionShown(st); name != "" {
			c.Flags = append(c.Flags, name)
		}
		return c
	}
	for _, cc := range ctx.Lineage() {
		if cc.Command == nil {
			continue
		}
		for _, n := range localFlagNames(cc) {
			n = canonical(cc.Command.Flags, n)
			if n != r.showFlag {
				c.Flags = append(c.Flags, n)
			}
		}
	}
	if name := helpShown(st); name != "" && !slices.Contains(c.Flags, name) {
		c.Flags = append(c.Flags, name)
	}
	c.FlagValues = st.inv.FlagValues(c.Flags, func(name string) (v string, ok bool) {
		defer func() {
			if recover() != nil {
				v, ok = "", false
			}
		}()
		val := ctx.Value(name)
		if val == nil {
			return "", false
		}
		return fmt.Sprint(val), true
	})
	if !extended {
		c.Args = safeArgs(ctx).Len()
	}
	return c
}

// helpShown returns the name of urfave's help flag when the run ended in
// the help it asked for: a command's --help stops the run before any of the
// command's code, so its flags are never seen in a context. It looks for the
// flag among the arguments before a "--".
func helpShown(st *run) string {
	if st.stage == stageRun || st.failed || st.usageErr != nil || st.notFound || cli.HelpFlag == nil {
		return ""
	}
	return flagInArgs(st.args, flagNames(cli.HelpFlag))
}

// versionShown returns the name of urfave's version flag when the run ended
// in the version it asked for: the app prints it, like its help, before any
// of its code runs, so that no context is ever seen.
func (r *Runner) versionShown(st *run) string {
	if st.ctx != nil || st.stage == stageRun || st.failed || st.usageErr != nil || st.notFound ||
		cli.VersionFlag == nil || r.app.HideVersion {
		return ""
	}
	return flagInArgs(st.args, flagNames(cli.VersionFlag))
}

// flagInArgs returns names[0] when the command line args (with the program
// name first) turn on the boolean flag with one of names, before any "--".
func flagInArgs(args []string, names []string) string {
	if len(args) < 2 || len(names) == 0 {
		return ""
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if n, v, ok := strings.Cut(a, "="); ok {
			if on, err := strconv.ParseBool(v); err != nil || !on {
				continue
			}
			a = n
		}
		if slices.Contains(names, a) {
			return names[0]
		}
	}
	return ""
}

// localFlagNames returns the names of the flags set on cCtx's own command;
// none when its flags were never parsed.
func localFlagNames(cCtx *cli.Context) (names []string) {
	defer func() {
		if recover() != nil {
			names = nil
		}
	}()
	return cCtx.LocalFlagNames()
}

// canonical returns the first name of the flag among flags that has name.
func canonical(flags []cli.Flag, name string) string {
	for _, f := range flags {
		ns := flagNames(f)
		for _, n := range ns {
			if n == name {
				return ns[0]
			}
		}
	}
	return name
}

// kind names the failure err of the run, or returns "" to let the core
// derive the kind from err (an error returned by an action).
func (r *Runner) kind(st *run, err error) string {
	switch {
	case st.notFound:
		return adapter.KindUnknownCommand
	case st.usageErr != nil:
		if strings.Contains(st.usageErr.Error(), "flag provided but not defined") {
			return adapter.KindUnknownFlag
		}
		return adapter.KindInvalidFlag
	case st.reached && st.failed && st.stage == stagePre:
		return adapter.KindPreRun
	case st.reached && st.failed && st.stage == stageRun:
		if st.helpAction && safeArgs(st.ctx).Present() {
			return adapter.KindUnknownCommand
		}
		return ""
	case st.afterErr != nil:
		return adapter.KindPostRun
	case !st.reached && st.ctx != nil && missingRequired(st.ctx):
		return adapter.KindMissingFlag
	}
	return ""
}

// missingRequired reports whether a required flag of cCtx's command is not set.
func missingRequired(cCtx *cli.Context) (missing bool) {
	defer func() {
		if recover() != nil {
			missing = false
		}
	}()
	if cCtx.Command == nil {
		return false
	}
	for _, f := range cCtx.Command.Flags {
		rf, ok := f.(cli.RequiredFlag)
		if !ok || !rf.IsRequired() {
			continue
		}
		set := false
		for _, n := range flagNames(f) {
			if cCtx.IsSet(strings.TrimSpace(n)) {
				set = true
			}
		}
		if !set {
			return true
		}
	}
	return false
}
