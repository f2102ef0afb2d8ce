// Package consent holds the author's choice of consent model ([Mode]) and
// the interface an author's error implements to name its kind
// ([Kinder]).
//
// The author picks a Mode in the client's configuration:
//
//   - [OptIn] (the zero value): nothing is recorded or sent until the user
//     agrees. The question is asked once, only when stdin and stderr are
//     both terminals and no CI is detected; the default answer is No.
//   - [OptOut]: on by default; a one-time notice on stderr (never stdout)
//     says what is collected and how to turn it off.
//   - [Silent]: on, with no notice; the author takes responsibility for
//     telling users.
//
// Whatever the mode, DO_NOT_TRACK=1 turns telemetry off, and the user's
// own choice (the generated `telemetry enable|disable` command or the
// <SERVICE>_TELEMETRY variable) wins over the author's default.
// docs/privacy.md gives the whole order of precedence, what is collected
// and how it is scrubbed.
package consent
