package consent

import "fmt"

// Mode is the author's choice of consent model. Its zero value is [OptIn].
type Mode int

const (
	// OptIn records and sends nothing until the user agrees. The user is
	// asked once, and only when stdin and stderr are terminals outside CI.
	OptIn Mode = iota
	// OptOut is on by default and prints a one-time notice to stderr
	// saying what is collected and how to turn it off.
	OptOut
	// Silent is on by default with no notice: the author takes
	// responsibility for informing users (for example in the README).
	Silent
)

// String returns "opt-in", "opt-out" or "silent".
func (m Mode) String() string {
	switch m {
	case OptIn:
		return "opt-in"
	case OptOut:
		return "opt-out"
	case Silent:
		return "silent"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Kinder is implemented by an author's error that names its own kind for
// telemetry. The SDK finds it anywhere in a command's error chain
// (errors.As) and records its result as the event's error_kind, scrubbed
// and turned into snake_case, instead of a generic class. An error's
// message is never recorded.
type Kinder interface {
	TelemetryKind() string
}
