package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is the version of the event format described in docs/protocol.md.
const SchemaVersion = 1

// Event types recorded by the SDK itself. An author may record any other
// type whose name [ValidEventType] accepts.
const (
	EventCommandExecuted = "command_executed"
	EventFeatureUsed     = "feature_used"
	EventMethodCalled    = "method_called"
)

// Metadata members that the server reads (docs/protocol.md, "Metadata by
// event type"). Others are stored as they are.
const (
	MetaCommand    = "command"     // command_executed: the command path, e.g. "remote add"
	MetaFlags      = "flags"       // command_executed: names of the flags set, without dashes
	MetaFlagValues = "flag_values" // command_executed: values of the flags the author collects
	MetaSuccess    = "success"     // command_executed: whether the command succeeded
	MetaDurationMS = "duration_ms" // command_executed: wall time in milliseconds
	MetaExitCode   = "exit_code"   // command_executed: the process's exit code
	MetaErrorKind  = "error_kind"  // command_executed: a coarse class of the error
	MetaFeature    = "feature"     // feature_used: the feature's name
	MetaMethod     = "method"      // method_called: the method's name
)

// TimestampLayout is the wire format of [Event.Timestamp]: UTC, RFC 3339 with milliseconds.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// Event is one recorded event: the JSON object stored in the local queue,
// printed by `telemetry show` and sent to the server. See docs/protocol.md.
type Event struct {
	EventID        string         `json:"event_id"`
	SchemaVersion  int            `json:"schema_version"`
	ServiceName    string         `json:"service_name"`
	ServiceVersion string         `json:"service_version"`
	EventType      string         `json:"event_type"`
	Timestamp      Timestamp      `json:"timestamp"`
	UserID         string         `json:"user_id"`
	SessionID      string         `json:"session_id"`
	SDK            SDK            `json:"sdk"`
	Env            Env            `json:"env"`
	Metadata       map[string]any `json:"metadata"`
}

// SDK names the library that made an event.
type SDK struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Env is what an event says about where it was recorded: only what helps an
// author decide what to support. It never holds a hostname, a user name, a
// path or an address.
type Env struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CI        bool   `json:"ci"`
	CIName    string `json:"ci_name,omitempty"`
	GoVersion string `json:"go_version,omitempty"`
}

// Timestamp is a point in time that encodes as UTC RFC 3339 with milliseconds.
type Timestamp struct{ time.Time }

// MarshalJSON implements [json.Marshaler].
func (t Timestamp) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimestampLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimestampLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements [json.Unmarshaler]. It accepts any RFC 3339 time.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	t.Time = v.UTC()
	return nil
}

// ValidEventType reports whether name is an acceptable event type: snake_case,
// starting with a letter, at most 64 characters.
func ValidEventType(name string) bool {
	return validName(name, func(c byte) bool { return 'a' <= c && c <= 'z' }, "_")
}

// ValidServiceName reports whether name is an acceptable service name: lower
// case letters, digits, '.', '_' and '-', starting with a letter or digit, at
// most 64 characters ([MaxFieldChars]).
func ValidServiceName(name string) bool {
	return validName(name, func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }, "._-")
}

// validName reports whether name is 1 to 64 bytes, starts with a byte first
// accepts, and continues with lower case letters, digits and bytes of extra.
func validName(name string, first func(byte) bool, extra string) bool {
	if len(name) == 0 || len(name) > MaxFieldChars || !first(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
