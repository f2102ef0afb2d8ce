package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkEncoding fails t unless AppendEvent(e) is byte for byte what
// json.Marshal(e) makes, with the same outcome, and decodes to the same
// event.
func checkEncoding(t *testing.T, e *Event) {
	t.Helper()
	want, wantErr := json.Marshal(e)
	got, gotErr := AppendEvent(nil, e)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("json.Marshal error %v, AppendEvent error %v", wantErr, gotErr)
	}
	if wantErr != nil {
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendEvent differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
	var a, b Event
	if err := json.Unmarshal(want, &b); err != nil {
		return // a timestamp outside RFC 3339's years: written alike, read by neither
	}
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if !a.Timestamp.Equal(b.Timestamp.Time) {
		t.Fatalf("timestamps differ: %v, %v", a.Timestamp, b.Timestamp)
	}
	a.Timestamp, b.Timestamp = Timestamp{}, Timestamp{}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("decoded events differ:\n%+v\n%+v", a, b)
	}
}

func baseEvent(meta map[string]any) *Event {
	return &Event{
		EventID:        "019a4c3e-7b1d-7c2e-9a51-3f0e5d6c7b8a",
		SchemaVersion:  SchemaVersion,
		ServiceName:    "my-cli",
		ServiceVersion: "1.4.2",
		EventType:      EventCommandExecuted,
		Timestamp:      Timestamp{time.Date(2026, 11, 25, 21, 40, 51, 123_456_789, time.FixedZone("X", 5*3600))},
		UserID:         "anon_00",
		SessionID:      "019a4c3e-0000-7c2e-9a51-3f0e5d6c7b8a",
		SDK:            SDK{Name: "telemetry-kit-go", Version: "0.0.0-test"},
		Env:            Env{OS: "linux", Arch: "amd64", GoVersion: "go1.26.0"},
		Metadata:       meta,
	}
}

type label string

type point struct{ X, Y int }

type textual struct{}

func (textual) MarshalText() ([]byte, error) { return []byte("<text>"), nil }

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errTestMarshal }

var errTestMarshal = errors.New("test: cannot marshal")

func TestAppendEventMatchesJSON(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for _, tc := range []struct {
		name string
		edit func(e *Event)
	}{
		{"command", func(e *Event) {
			e.Metadata = map[string]any{"command": "remote add", "flags": []string{"force", "v"}, "args_count": 2,
				"success": true, "error_kind": "", "duration_ms": int64(12), "exit_code": 0}
		}},
		{"nil metadata", func(e *Event) { e.Metadata = nil }},
		{"empty metadata", func(e *Event) { e.Metadata = map[string]any{} }},
		{"ci", func(e *Event) { e.Env.CI, e.Env.CIName, e.Env.GoVersion = true, "github_actions", "" }},
		{"zero event", func(e *Event) { *e = Event{} }},
		{"escapes", func(e *Event) {
			e.ServiceVersion = "<&>\"\\\b\f\n\r\t\x00\x1f\x7f"
			e.Metadata = map[string]any{"\u2028k\u2029": "bad \xff\xfe utf8 \xe2\x80 end é 日本 🎉", "<": ">"}
		}},
		{"numbers", func(e *Event) {
			e.Metadata = map[string]any{
				"i8": int8(-8), "i16": int16(-16), "i32": int32(-32), "i64": int64(math.MinInt64), "i": math.MaxInt,
				"u8": uint8(8), "u16": uint16(16), "u32": uint32(32), "u64": uint64(math.MaxUint64), "u": uint(7),
				"up": uintptr(9), "f": 1.5, "tiny": 1e-7, "huge": 1e21, "edge": 1e20, "neg": math.Copysign(0, -1), "e-9": 1.5e-9,
				"f32": float32(0.1), "f32tiny": float32(1e-7), "f32huge": float32(3e21), "max": math.MaxFloat64,
				"small": math.SmallestNonzeroFloat64, "n": json.Number("12.50"),
			}
		}},
		{"nested", func(e *Event) {
			e.Metadata = map[string]any{
				"a": []any{1, "x", nil, true, []any{}, map[string]any{"z": 1, "a": []string{}}},
				"m": map[string]string{"b": "2", "a": "1", "&": "<"}, "nils": []any{[]string(nil), []any(nil),
					map[string]string(nil), map[string]any(nil)},
			}
		}},
		{"other types", func(e *Event) {
			e.Metadata = map[string]any{"label": label("x<y"), "point": point{1, 2}, "ptr": &point{3, 4},
				"text": textual{}, "time": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "bytes": []byte("hi"),
				"ints": []int{1, 2}, "keyed": map[int]string{2: "b", 1: "a"}, "nilptr": (*point)(nil)}
		}},
		{"NaN", func(e *Event) { e.Metadata = map[string]any{"x": []any{math.NaN()}} }},
		{"infinity", func(e *Event) { e.Metadata = map[string]any{"x": math.Inf(-1)} }},
		{"float32 infinity", func(e *Event) { e.Metadata = map[string]any{"x": float32(math.Inf(1))} }},
		{"failing marshaler", func(e *Event) { e.Metadata = map[string]any{"x": failing{}} }},
		{"cycle", func(e *Event) { e.Metadata = map[string]any{"x": cyclic} }},
		{"year 10000", func(e *Event) { e.Timestamp = Timestamp{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := baseEvent(nil)
			tc.edit(e)
			checkEncoding(t, e)
		})
	}
}

// TestAppendEventRandom compares AppendEvent with json.Marshal over many
// events with random metadata.
func TestAppendEventRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		meta := map[string]any{}
		for range rng.IntN(8) {
			meta[randString(rng)] = randValue(rng, 0)
		}
		e := baseEvent(meta)
		e.ServiceVersion = randString(rng)
		e.Timestamp = Timestamp{time.Unix(rng.Int64N(1<<36), rng.Int64N(1e9))}
		checkEncoding(t, e)
	}
}

func randString(rng *rand.Rand) string {
	const alphabet = "ab<>&\"\\\n\t\x00\x1f é日\u2028\u2029\xff\xc3"
	var sb strings.Builder
	for range rng.IntN(12) {
		i := rng.IntN(len(alphabet))
		sb.WriteByte(alphabet[i])
	}
	return sb.String()
}

func randValue(rng *rand.Rand, depth int) any {
	n := 14
	if depth > 3 {
		n = 9
	}
	switch rng.IntN(n) {
	case 0:
		return nil
	case 1:
		return randString(rng)
	case 2:
		return rng.IntN(2) == 0
	case 3:
		return rng.Int64() - rng.Int64()
	case 4:
		return math.Float64frombits(rng.Uint64())
	case 5:
		return float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30)))
	case 6:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))
	case 7:
		return uint32(rng.Uint32())
	case 8:
		return label(randString(rng))
	case 9:
		s := make([]string, rng.IntN(4))
		for i := range s {
			s[i] = randString(rng)
		}
		return s
	case 10:
		m := map[string]string{}
		for range rng.IntN(4) {
			m[randString(rng)] = randString(rng)
		}
		return m
	case 11, 12:
		a := make([]any, rng.IntN(4))
		for i := range a {
			a[i] = randValue(rng, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for range rng.IntN(4) {
			m[randString(rng)] = randValue(rng, depth+1)
		}
		return m
	}
}

// FuzzEncodeEvent checks that AppendEvent writes exactly what json.Marshal
// writes, for events decoded from JSON and for metadata of typed values.
func FuzzEncodeEvent(f *testing.F) {
	f.Add([]byte(`{"event_id":"019a4c3e-7b1d-7c2e-9a51-3f0e5d6c7b8a","schema_version":1,"service_name":"my-cli","service_version":"1.4.2","event_type":"command_executed","timestamp":"2026-11-25T21:40:51.123Z","user_id":"anon_00","session_id":"s","sdk":{"name":"telemetry-kit-go","version":"0.1.0"},"env":{"os":"linux","arch":"amd64","ci":true,"ci_name":"github_actions"},"metadata":{"command":"remote add","flags":["force"],"args_count":2,"success":true,"duration_ms":12}}`),
		"remote add", int64(2), 12.5, true)
	f.Add([]byte(`{"metadata":{"nested":{"a":[1,"x",null,true,1e-7,1e21]}}}`), "<a&b>\u2028", int64(-1), 1e-9, false)
	f.Add([]byte(`{"metadata":{"\u0000":"\ud800"}}`), "\xff", int64(0), math.Inf(1), false)
	f.Fuzz(func(t *testing.T, data []byte, s string, i int64, x float64, b bool) {
		var e Event
		if json.Unmarshal(data, &e) != nil {
			e = *baseEvent(nil)
		}
		if e.Metadata == nil && b {
			e.Metadata = map[string]any{}
		}
		if e.Metadata != nil {
			e.Metadata[s] = []any{s, i, x, float32(x), b, []string{s}, map[string]string{s: s},
				map[string]any{s: i, "x": uint64(i)}, label(s)}
		}
		e.EventType, e.Env.CIName = s, s
		checkEncoding(t, &e)
	})
}
