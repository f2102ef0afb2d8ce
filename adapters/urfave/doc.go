// Package tkurfave records the use of a [urfave/cli/v2] command line tool
// with telemetry-kit and gives the tool's users the controls.
//
// # Use
//
// Build the app as usual, then run it through [Instrument]:
//
//	func main() {
//		cfg := tkurfave.Config{Config: core.Config{ServiceName: "my-cli", Consent: consent.OptOut}}
//		if err := tkurfave.Instrument(newApp(), cfg).Run(os.Args); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// [Runner.Run] is the place to run the app: it records the run's event when
// the app returns, and it is the only place that sees failures that urfave
// reports without calling any of the app's code. Calling app.Run directly
// after Instrument runs the app unchanged but records nothing.
//
// # What is recorded
//
// One command_executed event per run (see docs/protocol.md): the full
// command path with canonical names (an alias records the command's name),
// the names of the flags the user set (by their first name), the values of
// the flags listed in [Config.AllowFlagValues] (scrubbed), the number of
// positional arguments, success, the exit code, an error kind and the
// duration. A run that ends in the help its --help asked for (urfave's
// cli.HelpFlag, before any "--") records that flag as well, as for cobra:
// urfave shows that help before any of the command's code runs; so does a
// run that ends in the app's version (cli.VersionFlag, --version or -v),
// recorded as the app's command with the flag "version". urfave's help
// command is recorded as "help" with its topic as its positional argument.
// An unknown command is unknown_command, also when urfave's help stands in
// for a missing Action (cli.NewApp's default) or the help command is asked
// about a command that does not exist. Failures
// before the action are recorded with these kinds:
// unknown_command, unknown_flag, invalid_flag, missing_flag, pre_run_failed
// (a failing Before); a failing After is post_run_failed; an error from an
// Action gets the core's kind for it, and its exit code when it is a
// cli.ExitCoder; a panic is recorded as panic (exit code 2) and then goes on
// unchanged. The error's message is never recorded.
//
// An action that returns cli.Exit(...) makes urfave exit through
// cli.OsExiter before the app returns: the event is recorded when the
// action returns, before urfave sees the error. An action that ends the
// process itself (os.Exit, log.Fatal) is not recorded: nothing runs after
// it.
//
// Nothing is recorded for the telemetry subcommand itself or for shell
// completion requests.
//
// # What the app gets
//
// Instrument adds a `telemetry` subcommand (see [Config.CommandName]) with
// status, enable, disable, show and flush, and a hidden --show-telemetry
// flag (see [Config.ShowFlag]) on the app and on every command, so that it
// may follow any command; it prints the run's event to the app's ErrWriter.
// When the app sets Suggest, the flag is added to the app only, so that it
// never appears in a command's "Did you mean" suggestion. An app without
// commands gets no telemetry subcommand.
//
// # What does not change
//
// The app's output, errors, exit code and hook order. Instrument wraps the
// Action, Before, After and OnUsageError of the app and of every command
// (a missing Action is urfave's help action, as urfave would use; a missing
// After is a no-op; a missing OnUsageError prints what urfave prints), its
// ExitErrHandler (a missing one does what urfave does without one:
// cli.HandleExitCoder) and, when the app has one, its CommandNotFound. No
// process-wide setting of urfave is changed: not OsExiter, not ErrWriter,
// not HelpFlag (which is only read). Call Instrument once the app is complete:
// commands added afterwards are not wrapped.
package tkurfave
