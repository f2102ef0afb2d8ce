// Package synth generates a realistic, deterministic usage history of one
// command-line tool: the events its users' SDKs would have sent over a
// period, in the wire protocol v1 (package wire), ready to be posted to
// tk-server's ingest endpoint or stored directly.
//
// [New] takes a [Config] (the number of users, days and events, the end of
// the period and a seed) and returns a [Generator]. The same Config always
// yields the same events, byte for byte (on one architecture: the model
// uses floating point, which another one may round differently). The stream is made one day at a
// time, in timestamp order, so that ten million events never sit in
// memory at once: read it with [Generator.Next], one [wire.Event] at a
// time, or with [Generator.Batches], as request bodies made by
// [wire.AppendBatch]. [ServerEvent] turns a generated event into the
// [server.Event] the server's decoder makes of it, for tests that store
// events without HTTP.
//
// # The model
//
// Users arrive over the period: 12% of them were already users when it
// starts, the others arrive at a rate that grows linearly to three times
// its first value by the end. Each user has:
//
//   - a lifetime in days: 45% of new users try the tool on one day only;
//     the others keep it for exp(N(ln 20, 1.4)) days (median 20, a heavy
//     tail past the period), the existing users for exp(N(ln 60, 1.2));
//   - a daily activity rate, the chance of using the tool on a day of
//     their lifetime: exp(N(ln 0.18, 0.7)) clamped to [0.02, 0.9] (0.35 for
//     existing users, 0.6 for CI machines), lower on weekends except in CI;
//   - an intensity, how many events an active day holds relative to
//     others: exp(N(0, 0.9)), multiplied on each active day by an
//     exponential factor of mean 1;
//   - an environment: CI on 7.5% of the machines, which make about 15% of
//     the events (github_actions, gitlab, jenkins, circleci, buildkite,
//     azure_pipelines), an OS (people:
//     linux 45%, darwin 38%, windows 17%; CI: linux 85%, windows 9%, darwin
//     6%), an arch by OS (darwin mostly arm64, the others mostly amd64), a
//     time zone and a preferred hour of the day;
//   - an upgrade habit: the release current on arrival is installed; later
//     releases are taken exp(N(ln 6, 1.0)) days after they come out
//     (jittered per release); 15% of users never upgrade on their own.
//
// The event count of the whole stream is exactly [Config.Events]: every
// active user-day gets one event when the count allows it, and the rest
// is shared among the active user-days in proportion to their weights
// (intensity times the daily factor), with exact integer rounding.
//
// An active day is a few bursts of runs around the user's preferred hour.
// Each run of the tool is a session (one process in the SDK's CLI mode,
// its own session_id): one command_executed event at its start, and on
// average 0.35 feature_used and 0.2 method_called events during the run.
//
// Go versions: 75% of people run prebuilt binaries, built with the Go
// release of their tool's release ([Version].Go); the others build the
// tool themselves with a Go version of their own. The SDK version follows
// the tool's release.
//
// # The catalog
//
// Twelve releases ([Versions]): the first came out before the period
// starts, the others every Days/12 days. Forty commands ([Commands]) used
// with Zipf weights k^-1.1 by rank, each with a few flags: --output
// (json, yaml, table) and --auth (token, oauth, ssh) and --env (dev,
// staging, prod) have their values collected; --watch is rare and makes a
// run long. Durations are log-normal around a median per command, longer
// on windows and in CI, short for usage errors, long for timeouts.
// Twelve features ([Features]) and ten methods ([Methods]) are used with
// Zipf weights k^-1, among those the user's release has: some appear in a
// later release, one feature is dropped by 2.0.0, and the method
// Client.FetchLegacy is deprecated in 1.3.0 (called less) and removed in
// 1.5.0.
//
// Failures: each command has a base failure rate (0.1% to 12%), times 1.3
// on windows, 0.9 on linux and 1.2 in CI. Release 1.4.0 on windows fails
// 30% more runs on top (exit errors and crashes), which 1.4.1 fixes
// ([BadOS], [BadVersion]); release 2.0.0 adds 5% usage errors (renamed
// flags). Error kinds: exit_error, usage, timeout, network, and unknown
// for a run that crashed, whose event has no success, duration_ms or
// exit_code, as the SDK records such runs.
//
// Release 1.5.0 becomes the oldest supported one Days/6 days after it
// comes out ([Generator.SunsetDay]): users of older releases, even those
// who never upgrade, take the current release then. So events of releases
// before 1.5.0, and the calls of Client.FetchLegacy, end on that day.
package synth
