// Package telemetrycmd is the generated `telemetry` subcommand that both
// adapters add to a tool: its names and help texts, and the actions of
// `telemetry status|show|enable|disable|flush` ([Controls]). The actions
// write what a user reads to the writer they are given (the adapters pass
// the command's stdout) and never depend on a command-line framework; the
// adapters wire them into cobra and urfave/cli.
package telemetrycmd
