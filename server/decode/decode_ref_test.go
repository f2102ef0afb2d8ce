package decode

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// The decoder as it was before it scanned each event in one pass, kept as
// the reference that FuzzDecodeMatchesReference compares [Batch] with.

// refDecodeBatch decodes and validates a request body (already decompressed).
// now is the server's clock and retention the storage window: an event whose
// timestamp or event id time is older than now-retention is rejected.
//
// It returns an [*Error] of kind [KindBadRequest] when the body is not a
// batch and of kind [KindTooLarge] when it holds more than [wire.MaxEvents]
// events; invalid events are reported in [Batch.Rejected] instead.
func refDecodeBatch(body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
	if retention <= 0 {
		retention = server.DefaultRetention
	}
	events, dropped, err := refSplitBatch(body)
	if err != nil {
		return nil, err
	}
	if len(events) > wire.MaxEvents {
		return nil, server.Errorf(server.KindTooLarge, "%d events, at most %d per request", len(events), wire.MaxEvents)
	}
	b := &server.Batch{Total: len(events)}
	if len(dropped) > 0 && string(dropped) != "null" {
		n, err := strconv.ParseInt(string(dropped), 10, 64)
		if err != nil || n < 0 || n > wire.MaxDropped {
			return nil, server.Errorf(server.KindBadRequest, `"dropped" must be an integer from 0 to %d`, int64(wire.MaxDropped))
		}
		b.Dropped = n
	}
	v := refValidator{now: now, oldest: now.Add(-retention), intern: make(map[string]string)}
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

// refSplitBatch checks that body is a JSON object with an "events" array and
// returns the spans of its elements and of "dropped". Other members are
// ignored.
func refSplitBatch(body []byte) ([][]byte, []byte, error) {
	notJSON := func() error {
		if !utf8.Valid(body) {
			return server.Errorf(server.KindBadRequest, "the body is not valid UTF-8 JSON")
		}
		return server.Errorf(server.KindBadRequest, "the body is not valid JSON")
	}
	s := scanner{b: body}
	if c := s.peek(); c != '{' {
		if _, err := s.value(); err != nil {
			return nil, nil, notJSON()
		}
		return nil, nil, server.Errorf(server.KindBadRequest, "the body must be a JSON object")
	}
	s.i++
	var events [][]byte
	var dropped []byte
	hasEvents, wrongType := false, false
	if !s.expect('}') {
		for {
			k, esc, err := s.str()
			if err != nil || !s.expect(':') {
				return nil, nil, notJSON()
			}
			key := unescape(k, esc)
			switch {
			case key == "events" && s.peek() == '[':
				s.i++
				hasEvents, wrongType = true, false
				events = events[:0]
				if !s.expect(']') {
					for {
						el, err := s.value()
						if err != nil {
							return nil, nil, notJSON()
						}
						events = append(events, el)
						if s.expect(',') {
							continue
						}
						if s.expect(']') {
							break
						}
						return nil, nil, notJSON()
					}
				}
			default:
				v, err := s.value()
				if err != nil {
					return nil, nil, notJSON()
				}
				switch key {
				case "events":
					hasEvents, wrongType = string(v) != "null", true
				case "dropped":
					dropped = v
				}
			}
			if s.expect(',') {
				continue
			}
			if s.expect('}') {
				break
			}
			return nil, nil, notJSON()
		}
	}
	if s.ws(); s.i != len(body) {
		return nil, nil, notJSON()
	}
	switch {
	case !hasEvents:
		return nil, nil, server.Errorf(server.KindBadRequest, `missing "events"`)
	case wrongType:
		return nil, nil, server.Errorf(server.KindBadRequest, `"events" must be an array`)
	case len(events) == 0:
		return nil, nil, server.Errorf(server.KindBadRequest, `"events" is empty`)
	}
	return events, dropped, nil
}

type refValidator struct {
	now, oldest       time.Time
	f, sdk, env, meta refFields         // scratch, reused for each event
	intern            map[string]string // strings seen in this batch
}

// refMember is one refMember of a JSON object: its unescaped key and the span of
// its value.
type refMember struct {
	key []byte // still escaped when esc
	esc bool
	val []byte
}

// refFields is one JSON object's members, in order.
type refFields []refMember

// refParseFields reads the members of a valid JSON object into f[:0].
func refParseFields(f refFields, r []byte) (refFields, bool) {
	f = f[:0]
	s := scanner{b: r}
	err := s.members(func(k []byte, esc bool, v []byte) error {
		f = append(f, refMember{k, esc, v})
		return nil
	})
	return f, err == nil
}

// get returns a refMember (the last of that name), treating null as absent.
func (f refFields) get(name string) ([]byte, bool) {
	for i := len(f) - 1; i >= 0; i-- {
		if (!f[i].esc && string(f[i].key) == name) || (f[i].esc && unescape(f[i].key, true) == name) {
			if string(f[i].val) == "null" {
				return nil, false
			}
			return f[i].val, true
		}
	}
	return nil, false
}

// str reads a string refMember. path names it in reasons.
func (f refFields) str(name, path string, required bool, maxChars int) (string, string) {
	return f.strIn(nil, name, path, required, maxChars)
}

// strIn is str that reuses equal strings from intern, so that values
// repeated across a batch (names, versions) are allocated once.
func (f refFields) strIn(intern map[string]string, name, path string, required bool, maxChars int) (string, string) {
	r, ok := f.get(name)
	if !ok {
		if required {
			return "", wire.MissingField(path)
		}
		return "", ""
	}
	if len(r) < 2 || r[0] != '"' {
		return "", wire.InvalidField(path)
	}
	content := r[1 : len(r)-1]
	esc := bytes.IndexByte(content, '\\') >= 0
	if intern != nil && !esc {
		if s, ok := intern[string(content)]; ok {
			return s, ""
		}
	}
	s := unescape(content, esc)
	if strings.IndexByte(s, 0) >= 0 {
		return "", wire.ReasonNULByte
	}
	if len(s) > maxChars && utf8.RuneCountInString(s) > maxChars {
		return "", wire.TooLong(path)
	}
	if intern != nil && !esc && len(intern) < 256 {
		intern[s] = s
	}
	return s, ""
}

func (f refFields) object(dst refFields, name, path string) (refFields, string) {
	r, ok := f.get(name)
	if !ok {
		return dst[:0], ""
	}
	if r[0] != '{' {
		return nil, wire.InvalidField(path)
	}
	o, ok := refParseFields(dst, r)
	if !ok {
		return nil, wire.InvalidField(path)
	}
	return o, ""
}

func (v *refValidator) event(r []byte) (ev server.Event, reason string) {
	if len(r) == 0 || r[0] != '{' {
		return ev, wire.ReasonInvalidEvent
	}
	if !utf8.Valid(r) {
		return ev, wire.ReasonInvalidUTF8
	}
	if bytes.Contains(r, []byte(`\u`)) {
		if hasLoneSurrogate(r) {
			return ev, wire.ReasonInvalidUTF8
		}
		// A NUL anywhere wins over other reasons, so that the client
		// learns the real cause.
		if containsNUL(r) {
			return ev, wire.ReasonNULByte
		}
	}
	f, ok := refParseFields(v.f, r)
	if !ok {
		return ev, wire.ReasonInvalidEvent
	}
	v.f = f

	// event_id
	s, reason := f.str("event_id", "event_id", true, 36)
	if reason != "" {
		if strings.HasPrefix(reason, "too_long") {
			reason = wire.InvalidField("event_id")
		}
		return ev, reason
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || strings.ToLower(s) != s || id.Version() != 7 || id.Variant() != uuid.RFC4122 {
		return ev, wire.InvalidField("event_id")
	}
	idTime := time.UnixMilli(wire.UUIDv7Millis(id))
	if idTime.After(v.now.Add(wire.MaxFutureSkew)) || idTime.Before(v.oldest) {
		return ev, wire.InvalidField("event_id")
	}
	ev.EventID = id

	// schema_version
	sv, ok := f.get("schema_version")
	if !ok {
		return ev, wire.MissingField("schema_version")
	}
	if string(sv) != "1" {
		return ev, wire.InvalidField("schema_version")
	}

	if ev.ServiceName, reason = f.strIn(v.intern, "service_name", "service_name", true, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !wire.ValidServiceName(ev.ServiceName) {
		return ev, wire.InvalidField("service_name")
	}
	if ev.ServiceVersion, reason = f.strIn(v.intern, "service_version", "service_version", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.EventType, reason = f.strIn(v.intern, "event_type", "event_type", true, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !wire.ValidEventType(ev.EventType) {
		return ev, wire.InvalidField("event_type")
	}

	// timestamp
	if s, reason = f.str("timestamp", "timestamp", true, maxTimestampLength); reason != "" {
		return ev, reason
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ev, wire.InvalidField("timestamp")
	}
	ts = ts.UTC()
	if ts.After(v.now.Add(wire.MaxFutureSkew)) {
		return ev, wire.ReasonTimestampInFuture
	}
	if ts.Before(v.oldest) {
		return ev, wire.ReasonTimestampTooOld
	}
	ev.Timestamp = ts

	// user_id
	if s, reason = f.str("user_id", "user_id", true, 69); reason != "" {
		if strings.HasPrefix(reason, "too_long") {
			reason = wire.InvalidField("user_id")
		}
		return ev, reason
	}
	if !strings.HasPrefix(s, "anon_") || len(s) != 69 || strings.ToLower(s) != s {
		return ev, wire.InvalidField("user_id")
	}
	if n, err := hex.Decode(ev.UserID[:], []byte(s[5:])); err != nil || n != 32 {
		return ev, wire.InvalidField("user_id")
	}

	// session_id
	if s, reason = f.str("session_id", "session_id", true, 36); reason != "" {
		if strings.HasPrefix(reason, "too_long") {
			reason = wire.InvalidField("session_id")
		}
		return ev, reason
	}
	sid, ok := wire.ParseUUID(s)
	if !ok {
		return ev, wire.InvalidField("session_id")
	}
	ev.SessionID = sid

	// sdk
	sdk, reason := f.object(v.sdk, "sdk", "sdk")
	if reason != "" {
		return ev, reason
	}
	v.sdk = sdk
	if ev.SDKName, reason = sdk.strIn(v.intern, "name", "sdk.name", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.SDKVersion, reason = sdk.strIn(v.intern, "version", "sdk.version", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}

	// env
	env, reason := f.object(v.env, "env", "env")
	if reason != "" {
		return ev, reason
	}
	v.env = env
	if ev.OS, reason = env.strIn(v.intern, "os", "env.os", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.Arch, reason = env.strIn(v.intern, "arch", "env.arch", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.CIName, reason = env.strIn(v.intern, "ci_name", "env.ci_name", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.GoVersion, reason = env.strIn(v.intern, "go_version", "env.go_version", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if r, ok := env.get("ci"); ok {
		switch string(r) {
		case "true":
			ev.CI = true
		case "false":
		default:
			return ev, wire.InvalidField("env.ci")
		}
	}

	// metadata
	md, ok := f.get("metadata")
	if !ok {
		md = []byte("{}")
	}
	if md[0] != '{' {
		return ev, wire.InvalidField("metadata")
	}
	if len(md) > wire.MaxMetadataBytes {
		return ev, wire.ReasonMetadataTooLarge
	}
	ms := scanner{b: md}
	if reason := checkMeta(&ms, 1); reason != "" {
		return ev, reason
	}
	ev.Metadata = md
	meta, _ := refParseFields(v.meta, md)
	v.meta = meta
	nameField := ""
	switch ev.EventType {
	case "command_executed":
		nameField = "command"
		if r, ok := meta.get("success"); ok {
			switch string(r) {
			case "true", "false":
				b := string(r) == "true"
				ev.Success = &b
			}
		}
		if r, ok := meta.get("duration_ms"); ok && refIsInteger(r) {
			n, err := strconv.ParseInt(string(r), 10, 64)
			if err != nil || n < 0 || n > wire.MaxDurationMS {
				return ev, "invalid_field:metadata.duration_ms"
			}
			ev.DurationMS = &n
		}
		if r, ok := meta.get("exit_code"); ok && refIsInteger(r) {
			n, err := strconv.ParseInt(string(r), 10, 32)
			if err != nil {
				return ev, "invalid_field:metadata.exit_code"
			}
			c := int32(n)
			ev.ExitCode = &c
		}
		if _, ok := meta.get("error_kind"); ok {
			if s, reason := meta.strIn(v.intern, "error_kind", "metadata.error_kind", false, wire.MaxMetadataString); reason == "" {
				ev.ErrorKind = &s
			}
		}
		ev.Flags = refFlags(md)
	case "feature_used":
		nameField = "feature"
	case "method_called":
		nameField = "method"
	}
	if nameField != "" {
		s, reason := meta.strIn(v.intern, nameField, "metadata."+nameField, false, wire.MaxNameChars)
		if strings.HasPrefix(reason, "too_long") {
			return ev, reason
		}
		ev.Name = s // a name of the wrong type is kept in metadata only
	}
	return ev, ""
}

// refFlags is the flag rule of commandFlags, written with encoding/json,
// for the metadata object md.
func refFlags(md []byte) []server.Flag {
	var m map[string]json.RawMessage
	if json.Unmarshal(md, &m) != nil {
		return nil
	}
	fits := func(raw json.RawMessage) (string, bool) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		if n := utf8.RuneCountInString(s); n < 1 || n > wire.MaxFlagChars {
			return "", false
		}
		return s, true
	}
	var list []json.RawMessage
	if json.Unmarshal(m["flags"], &list) != nil {
		return nil
	}
	var flags []server.Flag
	for _, raw := range list {
		if name, ok := fits(raw); ok && len(flags) < wire.MaxRollupFlags &&
			!slices.ContainsFunc(flags, func(f server.Flag) bool { return f.Name == name }) {
			flags = append(flags, server.Flag{Name: name})
		}
	}
	var values map[string]json.RawMessage
	if json.Unmarshal(m["flag_values"], &values) == nil {
		for i := range flags {
			if raw, ok := values[flags[i].Name]; ok {
				flags[i].Value, flags[i].HasValue = fits(raw)
			}
		}
	}
	return flags
}

// FuzzDecodeMatchesReference checks that [Batch] gives exactly what the
// reference decoder gives: the same error, or the same events, rejections
// and counts. Its seeds include FuzzDecodeBatch's corpus.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, ev := range []string{fuzzEvent, strings.Replace(fuzzEvent, `"command_executed"`, `"feature_used"`, 1)} {
		f.Add([]byte(`{"events":[` + ev + `],"dropped":0}`))
		f.Add([]byte(`{"events":[` + ev + `,` + ev + `]}`))
	}
	f.Add([]byte(`{"events":[` + strings.Replace(fuzzEvent, `"args_count":2`, `"n":1e999,"s":"\ud800"`, 1) + `]}`))
	f.Add([]byte(`{"events":[` + strings.Replace(fuzzEvent, `"remote add"`, `"a\u0000b"`, 1) + `]}`))
	f.Add([]byte(`{"events":[{"metadata":{"a":{"b":{"c":{"d":{}}}}}}]}`))
	// Numbers the rollups add up, at and past their bounds.
	for _, n := range []string{`"duration_ms":31622400000,"exit_code":-2147483648`, `"duration_ms":31622400001`,
		`"duration_ms":-0,"exit_code":2147483648`, `"duration_ms":9223372036854775808`, `"duration_ms":1.5,"exit_code":"1"`} {
		f.Add([]byte(`{"events":[` + strings.Replace(fuzzEvent, `"args_count":2`, n, 1) + `]}`))
	}
	f.Add([]byte(`{"events":[1,"x",null,[],{}],"dropped":-1}`))
	f.Add([]byte(`{"ev\u0065nts":[` + strings.Replace(fuzzEvent, `"event_id"`, `"event\u005fid"`, 1) + `],"events":[{}],"dropped":null}`))
	f.Add([]byte(`{"events":[` + strings.NewReplacer(`"sdk":{`, `"sdk":null,"sdk":{"name":null,`, `"env":{`, `"env":"x","env":{`,
		`"metadata":{`, `"metadata":{"success":false},"metadata":{"success":null,"exit_code":1e3,`).Replace(fuzzEvent) + `]}`))
	f.Add([]byte(`{"events":[` + strings.NewReplacer(`"user_id":"anon_3f`, `"user_id":"anon_\u0033f`,
		`"timestamp":"2026`, `"timestamp":"\u0032026`, `"session_id":"019a`, `"session_id":"\u003019a`).Replace(fuzzEvent) + `]}`))
	// Flags: duplicates, escapes, characters beyond the BMP, lengths at and
	// over the limit, other types, more than wire.MaxRollupFlags, values.
	long := strings.Repeat("x", wire.MaxFlagChars)
	for _, flags := range []string{
		`"flags":["watch","watch","w\u0061tch","",null,1,["x"],"` + long + `","` + long + `y","\ud83d\ude00"],` +
			`"flag_values":{"watch":"on","w\u0061tch":"again","x":"y"}`,
		`"flags":["a","b"],"flag_values":{"a":1,"b":"","a":"\u00e9t\u00e9","b":"` + long + `z"}`,
		`"flags":"watch","flag_values":["watch"]`,
		`"flags":{"watch":true},"flags":["late"],"flag_values":null`,
		`"flags":[` + strings.Repeat(`"a","b","c","d","e","f","g","h","i","j","k",`, 4) + `"z"]`,
		`"flags":["` + strings.Repeat(`\ud83d\ude00`, wire.MaxFlagChars) + `"],"flag_values":{"` + strings.Repeat(`\ud83d\ude00`, wire.MaxFlagChars) + `":"v"}`,
	} {
		f.Add([]byte(`{"events":[` + strings.Replace(fuzzEvent, `"flags":["force","verbose"]`, flags, 1) + `]}`))
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		_, arg, ok := strings.Cut(string(b), "\n[]byte(")
		if !ok {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(arg), ")")))
		if err != nil {
			f.Fatalf("%s: %v", e.Name(), err)
		}
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := Batch(body, fuzzNow, 0)
		want, wantErr := refDecodeBatch(body, fuzzNow, 0)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("error %v, want %v", gotErr, wantErr)
		}
		if gotErr != nil {
			if gotErr.(*server.Error).Kind != wantErr.(*server.Error).Kind {
				t.Fatalf("error kind %v, want %v", gotErr.(*server.Error).Kind, wantErr.(*server.Error).Kind)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})
}

var refIntegerRE = regexp.MustCompile(`^-?[0-9]+$`)

// refIsInteger reports whether a JSON value is written as an integer.
func refIsInteger(r []byte) bool { return refIntegerRE.Match(r) }
