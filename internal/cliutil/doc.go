// Package cliutil holds what the cobra and urfave adapters share and what does
// not depend on either framework: the client a command line tool runs with,
// the invocation record an adapter fills in while a command runs, the error
// kinds it reports, and the `telemetry` subcommand's actions.
//
// # Invocations
//
// An adapter creates one [Invocation] per run of the tool, marks the stages
// the framework reaches (flag parsing, argument validation, the author's
// hooks, the action) and calls [Invocation.Finish] exactly once with the
// outcome; Finish records the command_executed event and closes the client.
// Finish is safe to call from a deferred function while the host panics: it
// never recovers the host's panic and never panics itself.
//
// # Subcommand actions
//
// [Status], [Show], [Enable], [Disable] and [Flush] write what a user reads
// to the writer they are given; the adapters pass the command's stdout.
package cliutil
