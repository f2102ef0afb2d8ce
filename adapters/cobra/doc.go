// Package tkcobra records the use of a [cobra] command line tool with
// telemetry-kit and gives the tool's users the controls.
//
// # Use
//
// Build the command tree as usual, then run it through [Instrument]:
//
//	func main() {
//		cfg := tkcobra.Config{Config: core.Config{ServiceName: "my-cli", Consent: consent.OptOut}}
//		if err := tkcobra.Instrument(newRoot(), cfg).Execute(); err != nil {
//			os.Exit(1)
//		}
//	}
//
// [Runner.Execute] is the place to run the tree: it is the only place that
// sees failures cobra reports before any of the tree's code runs (an unknown
// subcommand is one), and it records the run's event and closes the client
// when the command is over. Calling root.Execute directly after Instrument
// runs the tree unchanged but records nothing.
//
// # What is recorded
//
// One command_executed event per run (see docs/protocol.md): the full
// command path with canonical names (an alias records the command's name),
// the names of the flags the user set, the values of the flags listed in
// [Config.AllowFlagValues] (scrubbed), the number of positional arguments,
// success, the exit code, an error kind and the duration. Failures before
// the command's action are recorded with these kinds: unknown_command,
// unknown_flag, invalid_flag, missing_flag, invalid_args, pre_run_failed;
// a failing PostRunE or PersistentPostRunE is post_run_failed; an error from
// RunE gets the core's kind for it; a panic is recorded as panic (exit code 2)
// and then goes on unchanged. The error's message is never recorded.
//
// Nothing is recorded for the telemetry subcommand itself or for cobra's
// hidden shell completion requests, nor for a command that ends the process
// itself (os.Exit, cobra.CheckErr) before Execute returns.
//
// # What the tree gets
//
// Instrument adds a `telemetry` subcommand (see [Config.CommandName]) with
// status, enable, disable, show and flush, and a hidden persistent
// --show-telemetry flag (see [Config.ShowFlag]) that prints the run's event
// to the command's stderr. A root command without subcommands gets no
// telemetry subcommand: adding one would change how the root reads its
// arguments.
//
// # What does not change
//
// The tool's output, errors, exit code and hook order. Instrument wraps
// each command's own hooks (PersistentPreRun(E), PreRun(E), Run(E),
// PostRun(E), PersistentPostRun(E)), its Args validator when it has one, and
// sets on each command a flag error function that notes the error and then
// calls the one that was in effect. No process-wide setting of cobra is read
// or changed. Call Instrument once the tree is complete: commands added
// afterwards are not wrapped. cobra's default `completion` command, which
// cobra adds when the tree is executed, is the exception: [Runner.Execute]
// adds it just before cobra would (unless the root's CompletionOptions
// disable it), from the same settings, and wraps it, so that its runs are
// recorded like any command's.
package tkcobra
