package decode

// A measurement, not product code: could a JSON library replace the
// hand-written scanner of [Batch]? libDecodeBatch does Batch's job with a
// library doing all the reading of the JSON text (body, events, metadata,
// flags) and the same rules applied to what it decoded; the reference
// decoder (refValidator.event, decode_ref_test.go) runs only for events the
// fast path does not accept, to give the exact reason.
// libDecodeBatchOnePass decodes the whole body into typed events in one
// library call and falls back to libDecodeBatch for anything but valid
// events. On BenchmarkDecodeBatch's body every event takes the fast path
// (TestLibDecodeMatches checks that and the output).
//
// The variants are registered in libVariants; decode_libs_v2_bench_test.go
// adds encoding/json/v2 under GOEXPERIMENT=jsonv2, and
// testdata/jsonlibs/run.sh measures third-party libraries from a scratch
// copy of this package, so that server/go.mod does not need them.

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

type libVariant struct {
	name   string
	decode func(body []byte, now time.Time, retention time.Duration) (*server.Batch, error)
}

var libVariants = []libVariant{
	{"handwritten", Batch},
	{"encoding-json", func(body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
		return libDecodeBatch[json.RawMessage](json.Unmarshal, body, now, retention)
	}},
	{"encoding-json-1pass", func(body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
		return libDecodeBatchOnePass[json.RawMessage](json.Unmarshal, body, now, retention)
	}},
}

// libSlow counts the events (or, for the one-pass variant, the batches)
// that left the fast path.
var libSlow int

type libTop[R ~[]byte] struct {
	Events  *[]R `json:"events"`
	Dropped R    `json:"dropped"`
}

type libSDK struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type libEnv struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CIName    string `json:"ci_name"`
	GoVersion string `json:"go_version"`
	CI        *bool  `json:"ci"`
}

type libEvent[R ~[]byte] struct {
	EventID        string  `json:"event_id"`
	SchemaVersion  R       `json:"schema_version"`
	ServiceName    string  `json:"service_name"`
	ServiceVersion string  `json:"service_version"`
	EventType      string  `json:"event_type"`
	Timestamp      string  `json:"timestamp"`
	UserID         string  `json:"user_id"`
	SessionID      string  `json:"session_id"`
	SDK            *libSDK `json:"sdk"`
	Env            *libEnv `json:"env"`
	Metadata       R       `json:"metadata"`
}

func libDecodeBatch[R ~[]byte](unmarshal func([]byte, any) error, body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
	if retention <= 0 {
		retention = server.DefaultRetention
	}
	var top libTop[R]
	if err := unmarshal(body, &top); err != nil {
		// Not a batch (or, for strict libraries, invalid UTF-8 or a
		// duplicate name somewhere): the reference gives the exact error
		// or the per-event rejections.
		return refDecodeBatch(body, now, retention)
	}
	switch {
	case top.Events == nil:
		return nil, server.Errorf(server.KindBadRequest, `missing "events"`)
	case len(*top.Events) == 0:
		return nil, server.Errorf(server.KindBadRequest, `"events" is empty`)
	}
	events := *top.Events
	if len(events) > wire.MaxEvents {
		return nil, server.Errorf(server.KindTooLarge, "%d events, at most %d per request", len(events), wire.MaxEvents)
	}
	b := &server.Batch{Total: len(events)}
	if d := top.Dropped; len(d) > 0 && string(d) != "null" {
		n, err := strconv.ParseInt(string(d), 10, 64)
		if err != nil || n < 0 || n > wire.MaxDropped {
			return nil, server.Errorf(server.KindBadRequest, `"dropped" must be an integer from 0 to %d`, int64(wire.MaxDropped))
		}
		b.Dropped = n
	}
	v := libValidator[R]{unmarshal: unmarshal, now: now, oldest: now.Add(-retention),
		ref: refValidator{now: now, oldest: now.Add(-retention), intern: make(map[string]string)}}
	seen := make(map[[16]byte]struct{}, len(events))
	b.Events = make([]server.Event, 0, len(events))
	for i, r := range events {
		ev, reason := v.event(r)
		if reason == "" {
			if _, dup := seen[ev.EventID]; dup {
				reason = wire.ReasonDuplicateInBatch
			} else {
				seen[ev.EventID] = struct{}{}
			}
		}
		if reason != "" {
			b.Rejected = append(b.Rejected, wire.Rejection{Index: i, Reason: reason})
			continue
		}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}

// libDecodeBatchOnePass decodes the whole body in one library call,
// events into libEvent; when the body has invalid UTF-8, a lone surrogate
// or a NUL escape, or when an event is not accepted, it is
// libDecodeBatch's job instead.
func libDecodeBatchOnePass[R ~[]byte](unmarshal func([]byte, any) error, body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
	if retention <= 0 {
		retention = server.DefaultRetention
	}
	slow := func() (*server.Batch, error) {
		libSlow++
		return libDecodeBatch[R](unmarshal, body, now, retention)
	}
	if !utf8.Valid(body) || bytes.Contains(body, []byte(`\u`)) && (hasLoneSurrogate(body) || containsNUL(body)) {
		return slow()
	}
	var top struct {
		Events  *[]libEvent[R] `json:"events"`
		Dropped R              `json:"dropped"`
	}
	if unmarshal(body, &top) != nil || top.Events == nil || len(*top.Events) == 0 || len(*top.Events) > wire.MaxEvents {
		return slow()
	}
	events := *top.Events
	b := &server.Batch{Total: len(events)}
	if d := top.Dropped; len(d) > 0 && string(d) != "null" {
		n, err := strconv.ParseInt(string(d), 10, 64)
		if err != nil || n < 0 || n > wire.MaxDropped {
			return slow()
		}
		b.Dropped = n
	}
	v := libValidator[R]{unmarshal: unmarshal, now: now, oldest: now.Add(-retention)}
	seen := make(map[[16]byte]struct{}, len(events))
	b.Events = make([]server.Event, 0, len(events))
	for i := range events {
		ev, ok := v.valid(&events[i])
		if !ok {
			return slow()
		}
		if _, dup := seen[ev.EventID]; dup {
			b.Rejected = append(b.Rejected, wire.Rejection{Index: i, Reason: wire.ReasonDuplicateInBatch})
			continue
		}
		seen[ev.EventID] = struct{}{}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}

type libValidator[R ~[]byte] struct {
	unmarshal   func([]byte, any) error
	now, oldest time.Time
	ref         refValidator
}

func (v *libValidator[R]) event(r R) (server.Event, string) {
	if ev, ok := v.fast(r); ok {
		return ev, ""
	}
	libSlow++
	return v.ref.event([]byte(r))
}

func fitsChars(s string, n int) bool { return len(s) <= n || utf8.RuneCountInString(s) <= n }

// fast decodes and validates a valid event; ok is false when the event is
// not valid or when the reference is needed to say why.
func (v *libValidator[R]) fast(r R) (ev server.Event, ok bool) {
	if len(r) == 0 || r[0] != '{' || !utf8.Valid(r) {
		return ev, false
	}
	if bytes.Contains(r, []byte(`\u`)) && (hasLoneSurrogate(r) || containsNUL(r)) {
		return ev, false
	}
	var e libEvent[R]
	if v.unmarshal(r, &e) != nil {
		return ev, false
	}
	return v.valid(&e)
}

// valid applies the rules to an event the library decoded.
func (v *libValidator[R]) valid(e *libEvent[R]) (ev server.Event, ok bool) {
	id, idOK := wire.ParseUUID(e.EventID)
	if !idOK || !wire.IsUUIDv7(id) {
		return ev, false
	}
	if t := time.UnixMilli(wire.UUIDv7Millis(id)); t.After(v.now.Add(wire.MaxFutureSkew)) || t.Before(v.oldest) {
		return ev, false
	}
	ev.EventID = id
	if string(e.SchemaVersion) != "1" || !wire.ValidServiceName(e.ServiceName) || !wire.ValidEventType(e.EventType) ||
		!fitsChars(e.ServiceVersion, wire.MaxFieldChars) || !fitsChars(e.Timestamp, maxTimestampLength) {
		return ev, false
	}
	ev.ServiceName, ev.ServiceVersion, ev.EventType = e.ServiceName, e.ServiceVersion, e.EventType
	ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil {
		return ev, false
	}
	if ts = ts.UTC(); ts.After(v.now.Add(wire.MaxFutureSkew)) || ts.Before(v.oldest) {
		return ev, false
	}
	ev.Timestamp = ts
	if ev.UserID, ok = wire.ParseUserID(e.UserID); !ok {
		return ev, false
	}
	if ev.SessionID, ok = wire.ParseUUID(e.SessionID); !ok {
		return ev, false
	}
	if e.SDK != nil {
		if !fitsChars(e.SDK.Name, wire.MaxFieldChars) || !fitsChars(e.SDK.Version, wire.MaxFieldChars) {
			return ev, false
		}
		ev.SDKName, ev.SDKVersion = e.SDK.Name, e.SDK.Version
	}
	if en := e.Env; en != nil {
		for _, s := range []string{en.OS, en.Arch, en.CIName, en.GoVersion} {
			if !fitsChars(s, wire.MaxFieldChars) {
				return ev, false
			}
		}
		ev.OS, ev.Arch, ev.CIName, ev.GoVersion = en.OS, en.Arch, en.CIName, en.GoVersion
		ev.CI = en.CI != nil && *en.CI
	}

	md := []byte(e.Metadata)
	if md == nil || string(md) == "null" {
		md = []byte("{}")
	}
	if md[0] != '{' || len(md) > wire.MaxMetadataBytes {
		return ev, false
	}
	var meta map[string]R
	if v.unmarshal(md, &meta) != nil {
		return ev, false
	}
	for k, val := range meta {
		if !fitsChars(k, wire.MaxMetadataString) || !v.checkMeta(val, 2) {
			return ev, false
		}
	}
	ev.Metadata = md
	get := func(name string) R {
		if r := meta[name]; string(r) != "null" {
			return r
		}
		return nil
	}
	nameField := ""
	switch ev.EventType {
	case "command_executed":
		nameField = "command"
		switch string(get("success")) {
		case "true":
			ev.Success = new(true)
		case "false":
			ev.Success = new(false)
		}
		if r := get("duration_ms"); isInteger(r) {
			n, err := strconv.ParseInt(string(r), 10, 64)
			if err != nil || n < 0 || n > wire.MaxDurationMS {
				return ev, false
			}
			ev.DurationMS = &n
		}
		if r := get("exit_code"); isInteger(r) {
			n, err := strconv.ParseInt(string(r), 10, 32)
			if err != nil {
				return ev, false
			}
			ev.ExitCode = new(int32(n))
		}
		if r := get("error_kind"); r != nil {
			var s string
			if v.unmarshal(r, &s) == nil && fitsChars(s, wire.MaxMetadataString) {
				ev.ErrorKind = &s
			}
		}
		ev.Flags = v.flags(get("flags"), get("flag_values"))
	case "feature_used":
		nameField = "feature"
	case "method_called":
		nameField = "method"
	}
	if nameField != "" {
		var s string
		if r := get(nameField); r != nil && r[0] == '"' {
			if v.unmarshal(r, &s) != nil || !fitsChars(s, wire.MaxNameChars) {
				return ev, false
			}
		}
		ev.Name = s
	}
	return ev, true
}

// checkMeta is checkMeta's rules on a value the library has checked.
func (v *libValidator[R]) checkMeta(r R, depth int) bool {
	switch c := r[0]; {
	case c == '{':
		if depth > wire.MaxMetadataDepth {
			return false
		}
		var m map[string]R
		if v.unmarshal(r, &m) != nil {
			return false
		}
		for k, val := range m {
			if !fitsChars(k, wire.MaxMetadataString) || !v.checkMeta(val, depth+1) {
				return false
			}
		}
	case c == '[':
		if depth > wire.MaxMetadataDepth {
			return false
		}
		var l []R
		if v.unmarshal(r, &l) != nil {
			return false
		}
		for _, val := range l {
			if !v.checkMeta(val, depth+1) {
				return false
			}
		}
	case c == '"':
		if len(r) > 2+wire.MaxMetadataString {
			var s string
			if v.unmarshal(r, &s) != nil || !fitsChars(s, wire.MaxMetadataString) {
				return false
			}
		}
	case c == '-' || isDigit(c):
		return checkNumber(r) == ""
	}
	return true
}

func (v *libValidator[R]) flagString(r R) (string, bool) {
	var s string
	if len(r) < 3 || r[0] != '"' || v.unmarshal(r, &s) != nil {
		return "", false
	}
	return s, s != "" && fitsChars(s, wire.MaxFlagChars)
}

// flags is commandFlags with the library.
func (v *libValidator[R]) flags(list, values R) []server.Flag {
	if len(list) < 2 || list[0] != '[' {
		return nil
	}
	var l []R
	if v.unmarshal(list, &l) != nil {
		return nil
	}
	var fs []server.Flag
	for _, r := range l {
		if len(fs) == wire.MaxRollupFlags {
			break
		}
		if name, ok := v.flagString(r); ok && !containsFlag(fs, name) {
			fs = append(fs, server.Flag{Name: name})
		}
	}
	if len(fs) == 0 {
		return nil
	}
	if len(values) > 0 && values[0] == '{' {
		var m map[string]R
		if v.unmarshal(values, &m) == nil {
			for i := range fs {
				if r, ok := m[fs[i].Name]; ok {
					fs[i].Value, fs[i].HasValue = v.flagString(r)
				}
			}
		}
	}
	return fs
}

func containsFlag(fs []server.Flag, name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}

func benchBody() []byte {
	return []byte(`{"events":[` + strings.TrimSuffix(strings.Repeat(fuzzEvent+",", 100), ",") + `]}`)
}

// TestLibDecodeMatches checks that each variant gives Batch's output on
// BenchmarkDecodeBatch's body, every event on the fast path, and counts
// the differences on FuzzDecodeBatch's stored corpus.
func TestLibDecodeMatches(t *testing.T) {
	body := benchBody()
	want, err := Batch(body, fuzzNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	corpus := libCorpus(t)
	for _, lv := range libVariants[1:] {
		libSlow = 0
		got, err := lv.decode(body, fuzzNow, 0)
		if err != nil {
			t.Fatalf("%s: %v", lv.name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v\nwant %+v", lv.name, got, want)
		}
		if libSlow != 0 {
			t.Fatalf("%s: %d left the fast path", lv.name, libSlow)
		}
		diff := 0
		for _, in := range corpus {
			w, werr := Batch(in, fuzzNow, 0)
			g, gerr := lv.decode(in, fuzzNow, 0)
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() || !reflect.DeepEqual(g, w) {
				diff++
				t.Logf("%s differs on %.120q:\n got %+v %v\nwant %+v %v", lv.name, in, g, gerr, w, werr)
			}
		}
		t.Logf("%s: same output as Batch on the benchmark body; %d of %d corpus inputs differ", lv.name, diff, len(corpus))
	}
}

// libCorpus is FuzzDecodeBatch's stored corpus.
func libCorpus(t *testing.T) [][]byte {
	var out [][]byte
	dir := "testdata/fuzz/FuzzDecodeBatch"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		_, arg, ok := strings.Cut(string(b), "\n[]byte(")
		if !ok {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(arg), ")")))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// TestLibDiverge logs the inputs on which a library variant differs from
// Batch (with -v): the libraries' own rules for names and null.
func TestLibDiverge(t *testing.T) {
	inputs := []struct{ name, event string }{
		{"upper-case key", strings.Replace(fuzzEvent, `"service_name":"my-cli"`, `"service_name":"my-cli","SERVICE_NAME":"other"`, 1)},
		{"null after value", strings.Replace(fuzzEvent, `"service_version":"1.4.2"`, `"service_version":"1.4.2","service_version":null`, 1)},
		{"duplicate key", strings.Replace(fuzzEvent, `"service_version":"1.4.2"`, `"service_version":"1.4.2","service_version":"1.4.3"`, 1)},
		{"invalid utf-8", strings.Replace(fuzzEvent, `"remote add"`, "\"remote\xffadd\"", 1)},
	}
	for _, in := range inputs {
		body := []byte(`{"events":[` + in.event + `,` + strings.Replace(fuzzEvent, "7b8a", "7b8b", 1) + `]}`)
		want, werr := Batch(body, fuzzNow, 0)
		if werr != nil {
			t.Fatal(werr)
		}
		for _, lv := range libVariants[1:] {
			got, err := lv.decode(body, fuzzNow, 0)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Logf("%-16s %-26s differs: %v", in.name, lv.name, err)
			}
		}
	}
}

// BenchmarkDecodeBatchLibs runs BenchmarkDecodeBatch's body through each
// variant. Interleave runs with -count=1 in a loop (testdata/jsonlibs/run.sh).
func BenchmarkDecodeBatchLibs(b *testing.B) {
	body := benchBody()
	for _, lv := range libVariants {
		b.Run(lv.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := lv.decode(body, fuzzNow, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
