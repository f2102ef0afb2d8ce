package wire_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

func TestValidNames(t *testing.T) {
	for name, want := range map[string]bool{
		"command_executed": true, "plugin_loaded": true, "a": true, "x9_y": true,
		"": false, "Feature": false, "9lives": false, "with-dash": false, "sp ace": false,
		strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
	} {
		if got := wire.ValidEventType(name); got != want {
			t.Errorf("ValidEventType(%q) = %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]bool{
		"my-cli": true, "cobra-cli": true, "tool.v2": true, "k8s_ctl": true,
		"": false, "My-CLI": false, "-x": false, "a b": false, "a/b": false,
	} {
		if got := wire.ValidServiceName(name); got != want {
			t.Errorf("ValidServiceName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTimestampJSON(t *testing.T) {
	ts := wire.Timestamp{time.Date(2026, 11, 25, 22, 40, 51, 7_000_000, time.FixedZone("CET", 3600))}
	b, err := json.Marshal(ts)
	if err != nil || string(b) != `"2026-11-25T21:40:51.007Z"` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back wire.Timestamp
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(ts.Time) {
		t.Fatalf("Unmarshal = %v, %v", back, err)
	}
	for _, bad := range []string{`"yesterday"`, `12`, `"2026-11-25"`, `null`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil && bad != `null` {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

// FuzzEventJSON checks that any event that decodes encodes to JSON that
// decodes to the same event, and that encoding is stable.
func FuzzEventJSON(f *testing.F) {
	f.Add([]byte(`{"event_id":"019a4c3e-7b1d-7c2e-9a51-3f0e5d6c7b8a","schema_version":1,"service_name":"my-cli","service_version":"1.4.2","event_type":"command_executed","timestamp":"2026-11-25T21:40:51.123Z","user_id":"anon_00","session_id":"s","sdk":{"name":"telemetry-kit-go","version":"0.1.0"},"env":{"os":"linux","arch":"amd64","ci":true,"ci_name":"github_actions"},"metadata":{"command":"remote add","flags":["force"],"args_count":2,"success":true,"duration_ms":12}}`))
	f.Add([]byte(`{"timestamp":"2026-11-25T21:40:51.123456789+05:30","metadata":{"nested":{"a":[1,"x",null,true]}}}`))
	f.Add([]byte(`{"metadata":null}`))
	f.Add([]byte(`{"metadata":{"\u0000":"\ud800"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e wire.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return
		}
		if e.Timestamp.Year() < 0 || e.Timestamp.Year() > 9999 {
			return // outside RFC 3339's range: not representable on the wire
		}
		b1, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", e, err)
		}
		var e2 wire.Event
		if err := json.Unmarshal(b1, &e2); err != nil {
			t.Fatalf("re-decode of %s: %v", b1, err)
		}
		// The wire keeps milliseconds only.
		e.Timestamp.Time = e.Timestamp.Truncate(time.Millisecond)
		if !e.Timestamp.Equal(e2.Timestamp.Time) {
			t.Fatalf("timestamp %v became %v", e.Timestamp, e2.Timestamp)
		}
		e.Timestamp, e2.Timestamp = wire.Timestamp{}, wire.Timestamp{}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, e2)
		}
		b2, _ := json.Marshal(e2)
		var e3 wire.Event
		json.Unmarshal(b2, &e3)
		b3, _ := json.Marshal(e3)
		if string(b2) != string(b3) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b2, b3)
		}
	})
}
