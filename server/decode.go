package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Protocol limits (docs/protocol.md).
const (
	MaxEvents          = 1000      // events per request
	MaxBodyBytes       = 1 << 20   // request body as sent
	MaxDecodedBytes    = 8 << 20   // request body after decompression
	MaxMetadataBytes   = 8 << 10   // one event's metadata object
	MaxMetadataDepth   = 4         // nesting depth of metadata, the object itself is 1
	MaxMetadataString  = 1024      // characters of a metadata key or string value
	MaxNameChars       = 256       // characters of metadata.command, .feature or .method
	MaxFieldChars      = 64        // characters of the other string fields
	MaxFutureSkew      = time.Hour // how far in the future a timestamp may be
	MaxDropped         = 1 << 40   // largest accepted "dropped" count
	DefaultRetention   = 395 * 24 * time.Hour
	maxTimestampLength = 64
)

var (
	serviceNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	eventTypeRe   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// Rejection reasons (docs/protocol.md).
const (
	reasonMetadataTooLarge = "metadata_too_large"
	reasonMetadataTooDeep  = "metadata_too_deep"
	reasonFuture           = "timestamp_in_future"
	reasonTooOld           = "timestamp_too_old"
	reasonInvalidUTF8      = "invalid_utf8"
	reasonNUL              = "nul_byte"
	reasonDuplicateInBatch = "duplicate_in_batch"
	reasonInvalidEvent     = "invalid_event"
)

func missing(field string) string { return "missing_field:" + field }
func invalid(field string) string { return "invalid_field:" + field }
func tooLong(field string) string { return "too_long:" + field }

// DecodeBatch decodes and validates a request body (already decompressed).
// now is the server's clock and retention the storage window: an event whose
// timestamp or event id time is older than now-retention is rejected.
//
// It returns an [*Error] of kind [KindBadRequest] when the body is not a
// batch and of kind [KindTooLarge] when it holds more than [MaxEvents]
// events; invalid events are reported in [Batch.Rejected] instead.
func DecodeBatch(body []byte, now time.Time, retention time.Duration) (*Batch, error) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	var raw struct {
		Events  *[]json.RawMessage `json:"events"`
		Dropped json.RawMessage    `json:"dropped"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return nil, errorf(KindBadRequest, "the body must be a JSON object")
			}
			return nil, errorf(KindBadRequest, "%q has the wrong type", te.Field)
		}
		if !utf8.Valid(body) {
			return nil, errorf(KindBadRequest, "the body is not valid UTF-8 JSON")
		}
		return nil, errorf(KindBadRequest, "the body is not valid JSON")
	}
	if raw.Events == nil {
		return nil, errorf(KindBadRequest, `missing "events"`)
	}
	events := *raw.Events
	if len(events) == 0 {
		return nil, errorf(KindBadRequest, `"events" is empty`)
	}
	if len(events) > MaxEvents {
		return nil, errorf(KindTooLarge, "%d events, at most %d per request", len(events), MaxEvents)
	}
	b := &Batch{Total: len(events)}
	if len(raw.Dropped) > 0 && string(raw.Dropped) != "null" {
		n, err := strconv.ParseInt(string(raw.Dropped), 10, 64)
		if err != nil || n < 0 || n > MaxDropped {
			return nil, errorf(KindBadRequest, `"dropped" must be an integer from 0 to %d`, int64(MaxDropped))
		}
		b.Dropped = n
	}
	v := validator{now: now, oldest: now.Add(-retention)}
	seen := make(map[[16]byte]struct{}, len(events))
	b.Events = make([]Event, 0, len(events))
	for i, r := range events {
		ev, reason := v.event(r)
		if reason == "" {
			if _, dup := seen[ev.EventID]; dup {
				reason = reasonDuplicateInBatch
			} else {
				seen[ev.EventID] = struct{}{}
			}
		}
		if reason != "" {
			b.Rejected = append(b.Rejected, Rejection{Index: i, Reason: reason})
			continue
		}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}

type validator struct {
	now, oldest time.Time
}

// fields is one JSON object's members.
type fields map[string]json.RawMessage

// get returns a member, treating null as absent.
func (f fields) get(name string) (json.RawMessage, bool) {
	r, ok := f[name]
	if !ok || string(r) == "null" {
		return nil, false
	}
	return r, true
}

// str reads a string member. path names it in reasons.
func (f fields) str(name, path string, required bool, maxChars int) (string, string) {
	r, ok := f.get(name)
	if !ok {
		if required {
			return "", missing(path)
		}
		return "", ""
	}
	var s string
	if len(r) == 0 || r[0] != '"' || json.Unmarshal(r, &s) != nil {
		return "", invalid(path)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", reasonNUL
	}
	if utf8.RuneCountInString(s) > maxChars {
		return "", tooLong(path)
	}
	return s, ""
}

func (f fields) object(name, path string) (fields, string) {
	r, ok := f.get(name)
	if !ok {
		return fields{}, ""
	}
	if r[0] != '{' {
		return nil, invalid(path)
	}
	var o fields
	if json.Unmarshal(r, &o) != nil {
		return nil, invalid(path)
	}
	return o, ""
}

func (v *validator) event(r json.RawMessage) (ev Event, reason string) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || r[0] != '{' {
		return ev, reasonInvalidEvent
	}
	if !utf8.Valid(r) || hasLoneSurrogate(r) {
		return ev, reasonInvalidUTF8
	}
	var f fields
	if err := json.Unmarshal(r, &f); err != nil {
		return ev, reasonInvalidEvent
	}
	// A NUL anywhere wins over other reasons, so that the client learns the
	// real cause.
	if bytes.Contains(r, []byte(`\u0000`)) && containsNUL(r) {
		return ev, reasonNUL
	}

	// event_id
	s, reason := f.str("event_id", "event_id", true, 36)
	if reason != "" {
		if strings.HasPrefix(reason, "too_long") {
			reason = invalid("event_id")
		}
		return ev, reason
	}
	id, ok := parseUUID(s)
	if !ok || id.Version() != 7 || id.Variant() != uuid.RFC4122 {
		return ev, invalid("event_id")
	}
	idTime := time.UnixMilli(uuidv7Millis(id))
	if idTime.After(v.now.Add(MaxFutureSkew)) || idTime.Before(v.oldest) {
		return ev, invalid("event_id")
	}
	ev.EventID = id

	// schema_version
	sv, ok := f.get("schema_version")
	if !ok {
		return ev, missing("schema_version")
	}
	if string(sv) != "1" {
		return ev, invalid("schema_version")
	}

	if ev.ServiceName, reason = f.str("service_name", "service_name", true, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !serviceNameRe.MatchString(ev.ServiceName) {
		return ev, invalid("service_name")
	}
	if ev.ServiceVersion, reason = f.str("service_version", "service_version", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.EventType, reason = f.str("event_type", "event_type", true, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !eventTypeRe.MatchString(ev.EventType) {
		return ev, invalid("event_type")
	}

	// timestamp
	if s, reason = f.str("timestamp", "timestamp", true, maxTimestampLength); reason != "" {
		return ev, reason
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ev, invalid("timestamp")
	}
	ts = ts.UTC()
	if ts.After(v.now.Add(MaxFutureSkew)) {
		return ev, reasonFuture
	}
	if ts.Before(v.oldest) {
		return ev, reasonTooOld
	}
	ev.Timestamp = ts

	// user_id
	if s, reason = f.str("user_id", "user_id", true, 69); reason != "" {
		if strings.HasPrefix(reason, "too_long") {
			reason = invalid("user_id")
		}
		return ev, reason
	}
	if !strings.HasPrefix(s, "anon_") || len(s) != 69 || strings.ToLower(s) != s {
		return ev, invalid("user_id")
	}
	if n, err := hex.Decode(ev.UserID[:], []byte(s[5:])); err != nil || n != 32 {
		return ev, invalid("user_id")
	}

	// session_id
	if s, reason = f.str("session_id", "session_id", true, 36); reason != "" {
		if strings.HasPrefix(reason, "too_long") {
			reason = invalid("session_id")
		}
		return ev, reason
	}
	sid, ok := parseUUID(s)
	if !ok {
		return ev, invalid("session_id")
	}
	ev.SessionID = sid

	// sdk
	sdk, reason := f.object("sdk", "sdk")
	if reason != "" {
		return ev, reason
	}
	if ev.SDKName, reason = sdk.str("name", "sdk.name", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.SDKVersion, reason = sdk.str("version", "sdk.version", false, MaxFieldChars); reason != "" {
		return ev, reason
	}

	// env
	env, reason := f.object("env", "env")
	if reason != "" {
		return ev, reason
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"os", &ev.OS}, {"arch", &ev.Arch}, {"ci_name", &ev.CIName}, {"go_version", &ev.GoVersion}} {
		if *p.dst, reason = env.str(p.name, "env."+p.name, false, MaxFieldChars); reason != "" {
			return ev, reason
		}
	}
	if r, ok := env.get("ci"); ok {
		switch string(r) {
		case "true":
			ev.CI = true
		case "false":
		default:
			return ev, invalid("env.ci")
		}
	}

	// metadata
	md, ok := f.get("metadata")
	if !ok {
		md = json.RawMessage("{}")
	}
	if md[0] != '{' {
		return ev, invalid("metadata")
	}
	if len(md) > MaxMetadataBytes {
		return ev, reasonMetadataTooLarge
	}
	if ev.Metadata, reason = normalizeMetadata(md); reason != "" {
		return ev, reason
	}
	if len(ev.Metadata) > MaxMetadataBytes {
		return ev, reasonMetadataTooLarge
	}
	var meta fields
	if json.Unmarshal(md, &meta) != nil {
		return ev, invalid("metadata")
	}
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
		if r, ok := meta.get("duration_ms"); ok {
			if n, err := strconv.ParseInt(string(r), 10, 64); err == nil {
				ev.DurationMS = &n
			}
		}
		if r, ok := meta.get("exit_code"); ok {
			if n, err := strconv.ParseInt(string(r), 10, 32); err == nil {
				c := int32(n)
				ev.ExitCode = &c
			}
		}
		if s, reason := meta.str("error_kind", "metadata.error_kind", false, MaxMetadataString); reason == "" {
			if _, ok := meta.get("error_kind"); ok {
				ev.ErrorKind = &s
			}
		}
	case "feature_used":
		nameField = "feature"
	case "method_called":
		nameField = "method"
	}
	if nameField != "" {
		s, reason := meta.str(nameField, "metadata."+nameField, false, MaxNameChars)
		if strings.HasPrefix(reason, "too_long") {
			return ev, reason
		}
		ev.Name = s // a name of the wrong type is kept in metadata only
	}
	return ev, ""
}

// parseUUID accepts only the canonical lower-case 8-4-4-4-12 form.
func parseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return uuid.UUID{}, false
	}
	return id, true
}

// uuidv7Millis returns the Unix time in milliseconds that a UUIDv7 carries.
func uuidv7Millis(id [16]byte) int64 {
	var ms int64
	for _, b := range id[:6] {
		ms = ms<<8 | int64(b)
	}
	return ms
}

// hasLoneSurrogate reports whether a valid JSON text has a \uD800–\uDFFF
// escape that is not part of a surrogate pair: such strings are not valid
// Unicode, and PostgreSQL refuses them in jsonb.
func hasLoneSurrogate(r []byte) bool {
	for i := 0; i < len(r); i++ {
		if r[i] != '\\' {
			continue
		}
		if i+1 >= len(r) {
			return false
		}
		if r[i+1] != 'u' {
			i++ // skip the escaped character
			continue
		}
		c, ok := hex4(r, i+2)
		if !ok {
			return true
		}
		switch {
		case c >= 0xD800 && c <= 0xDBFF:
			if i+11 < len(r) && r[i+6] == '\\' && r[i+7] == 'u' {
				if c2, ok := hex4(r, i+8); ok && c2 >= 0xDC00 && c2 <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		case c >= 0xDC00 && c <= 0xDFFF:
			return true
		}
		i += 5
	}
	return false
}

func hex4(r []byte, at int) (rune, bool) {
	if at+4 > len(r) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(r[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// containsNUL reports whether a valid JSON text has a \u0000 escape (a raw
// NUL byte is not valid JSON), as opposed to an escaped backslash followed by
// "u0000".
func containsNUL(r []byte) bool {
	for i := 0; i < len(r); i++ {
		if r[i] != '\\' || i+1 >= len(r) {
			continue
		}
		if r[i+1] == 'u' && i+5 < len(r) && string(r[i+2:i+6]) == "0000" {
			return true
		}
		i++
	}
	return false
}

// normalizeMetadata checks a metadata object's depth, strings and numbers
// and re-encodes it compactly. The result is valid UTF-8 JSON that
// PostgreSQL's jsonb accepts.
func normalizeMetadata(md json.RawMessage) ([]byte, string) {
	dec := json.NewDecoder(bytes.NewReader(md))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("metadata")
	}
	if reason := checkValue(v, 1); reason != "" {
		return nil, reason
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, invalid("metadata")
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), ""
}

func checkString(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return reasonNUL
	}
	if utf8.RuneCountInString(s) > MaxMetadataString {
		return tooLong("metadata")
	}
	return ""
}

// checkValue validates v at depth (the metadata object is depth 1) and
// rewrites non-integer numbers into a form PostgreSQL's numeric accepts.
func checkValue(v any, depth int) string {
	switch x := v.(type) {
	case map[string]any:
		if depth > MaxMetadataDepth {
			return reasonMetadataTooDeep
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if r := checkString(k); r != "" {
				return r
			}
			if n, ok := x[k].(json.Number); ok {
				nn, r := checkNumber(n)
				if r != "" {
					return r
				}
				x[k] = nn
				continue
			}
			if r := checkValue(x[k], depth+1); r != "" {
				return r
			}
		}
	case []any:
		if depth > MaxMetadataDepth {
			return reasonMetadataTooDeep
		}
		for i, e := range x {
			if n, ok := e.(json.Number); ok {
				nn, r := checkNumber(n)
				if r != "" {
					return r
				}
				x[i] = nn
				continue
			}
			if r := checkValue(e, depth+1); r != "" {
				return r
			}
		}
	case string:
		return checkString(x)
	case json.Number:
		_, r := checkNumber(x)
		return r
	}
	return ""
}

// checkNumber keeps integers as written (the metadata size bounds them) and
// rewrites other numbers as float64, refusing those out of its range.
func checkNumber(n json.Number) (json.Number, string) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		return n, ""
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "", invalid("metadata")
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), ""
}
