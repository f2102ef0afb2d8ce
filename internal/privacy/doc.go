// Package privacy decides whether telemetry events may be recorded and
// sent, derives the anonymous user ID, and scrubs what must never leave the
// machine.
//
// # Consent model
//
// The author picks a [consent.Mode] in [Options]:
//
//   - [consent.OptIn] (the zero value): nothing is recorded or sent until the user
//     agrees. The question is asked once, only when stdin and stderr are
//     both terminals and no CI is detected; the default answer is No. Where
//     nobody can be asked, nothing is collected ([SourceNoTTY]).
//   - [consent.OptOut]: on by default; a one-time notice on stderr (never stdout)
//     says what is collected and how to turn it off.
//   - [consent.Silent]: on, with no notice; the author takes responsibility for
//     telling users.
//
// # Precedence
//
// [Resolve] applies these rules, highest first; the first that applies
// decides:
//
//  1. DO_NOT_TRACK set to 1, true, yes or on (any case): off, always.
//  2. <SERVICE>_TELEMETRY (see [EnvVar]; "my-cli" gives MY_CLI_TELEMETRY):
//     0, false, off or no: off; 1, true, on or yes: on. On counts as
//     consent, also in OptIn mode and in CI. Any other non-empty value is
//     not understood and means off.
//  3. CI detected ([DetectCI]) and [Options.DisableInCI]: off. An explicit
//     <SERVICE>_TELEMETRY=1 in the CI configuration still wins (rule 2).
//  4. The user's stored choice (telemetry enable/disable or the prompt's
//     answer), kept in <Dir>/consent.json with the date and the policy
//     version it was given for:
//     - a file that exists but cannot be read or understood: off
//     ([SourceUnreadable]; fail closed, never "on");
//     - "disable": off, whatever policy version it was given for (a policy
//     change never turns a refusal into consent);
//     - "enable": on, if given for the current policy version or a later
//     one. An "enable" for an older policy version no longer counts.
//  5. The author's mode: Silent on; OptOut on (notice pending if it was not
//     shown for this policy version); OptIn off, asking if possible.
//
// # Showing the notice and asking
//
// [Resolve] never prints, prompts or writes. [Ensure] does the one-time
// work: in OptOut mode it prints the notice and records, in consent.json,
// the policy version it was shown for; in OptIn mode it asks and stores the
// answer (a plain Enter, "n" or end of input is a stored No, so the
// question is not asked again). Bumping [Options.PolicyVersion] shows the
// notice, or asks, again.
//
// In CI the notice is never printed (CI machines are usually fresh, and
// the notice would be repeated in every log) and never recorded as shown;
// OptOut still records in CI, with env.ci = true, unless the author sets
// [Options.DisableInCI]. OptIn never asks in CI, so records nothing there
// unless <SERVICE>_TELEMETRY=1 is set.
//
// [Ensure] never replaces a consent.json it cannot read: only an explicit
// [Enable] or [Disable] does. It does not block unless it asks a question
// on a terminal, where it waits for the answer.
//
// Events recorded before consent was given are never sent: in OptIn mode
// nothing is recorded while the decision is off, and callers drop the
// local queue when the decision turns off ([Disable] is paired with a
// purge by the caller).
//
// # Environment
//
// [DetectCI] recognises the usual CI services (GitHub Actions, GitLab,
// Buildkite, CircleCI, Travis, Jenkins, Azure Pipelines, TeamCity,
// Bitbucket, CodeBuild, and more) and a generic CI variable.
// [DebugEnabled] reports <SERVICE>_TELEMETRY_DEBUG: events are then
// printed as JSON to stderr and nothing is sent.
//
// # Anonymous identity
//
// [AnonymousID] is "anon_" + hex(HMAC-SHA256(key = service name,
// message = machine ID)): stable for one machine and one tool, unrelated
// across tools. The machine ID is read with github.com/denisbrodbeck/machineid
// (on Linux, /var/lib/dbus/machine-id or /etc/machine-id are read directly);
// its ProtectedID is not used because it keys the HMAC with the machine ID
// and hashes the application name, the reverse of the protocol's
// definition. Where no machine ID can be read, a random one is generated
// once and kept in <Dir>/machine_id (mode 0600). The raw machine ID,
// hostname, user name, IP address and home path never leave the machine.
//
// # Scrubbing
//
// [Scrub] replaces e-mail addresses, IP and MAC addresses, URL credentials,
// query and name=value secrets, the values of flags named like secrets,
// known token formats, long random-looking strings, payment card numbers
// and home directories with markers such as "<email>" and "~". [ScrubValue] applies it to every string in a metadata
// value. Scrub is idempotent and never panics. A [Scrubber] (see
// [LocalScrubber]) also removes what no pattern can recognise: this
// machine's home directory wherever it is, its host name, and the user name
// as a path segment. Event IDs, session IDs and the user ID are not
// metadata and are not scrubbed.
//
// [ErrorKind] turns an error into a short kind ("timeout", "not_found",
// ...), or the author's own kind via [consent.Kinder]; error messages are never
// recorded.
//
// # Caveats
//
// The token heuristic (32 or more random-looking characters) misses about
// 1 % of random base64 strings of that length and shorter unknown secrets;
// known formats are matched by their prefixes. Do not rely on the scrubber
// to make arbitrary text safe: record names and kinds, not free text.
package privacy
