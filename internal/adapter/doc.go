// Package adapter holds what the cobra and urfave adapters share and what does
// not depend on either framework: the client a command line tool runs with,
// the invocation record an adapter fills in while a command runs and the
// error kinds it reports. The generated `telemetry` subcommand's actions
// are in package telemetrycmd.
//
// # Invocations
//
// An adapter creates one [Invocation] per run of the tool, marks the stages
// the framework reaches (flag parsing, argument validation, the author's
// hooks, the action) and calls [Invocation.Finish] exactly once with the
// outcome; Finish records the command_executed event and closes the client.
// Finish is safe to call from a deferred function while the host panics: it
// never recovers the host's panic and never panics itself.
package adapter
