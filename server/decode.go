package server

import (
	"bytes"
	"encoding/hex"
	"math"
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

// validServiceName reports whether s matches ^[a-z0-9][a-z0-9._-]*$.
func validServiceName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return s != ""
}

// validEventType reports whether s matches ^[a-z][a-z0-9_]{0,63}$.
func validEventType(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

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
	events, dropped, err := splitBatch(body)
	if err != nil {
		return nil, err
	}
	if len(events) > MaxEvents {
		return nil, errorf(KindTooLarge, "%d events, at most %d per request", len(events), MaxEvents)
	}
	b := &Batch{Total: len(events)}
	if len(dropped) > 0 && string(dropped) != "null" {
		n, err := strconv.ParseInt(string(dropped), 10, 64)
		if err != nil || n < 0 || n > MaxDropped {
			return nil, errorf(KindBadRequest, `"dropped" must be an integer from 0 to %d`, int64(MaxDropped))
		}
		b.Dropped = n
	}
	v := validator{now: now, oldest: now.Add(-retention), intern: make(map[string]string)}
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

// splitBatch checks that body is a JSON object with an "events" array and
// returns the spans of its elements and of "dropped". Other members are
// ignored.
func splitBatch(body []byte) ([][]byte, []byte, error) {
	notJSON := func() error {
		if !utf8.Valid(body) {
			return errorf(KindBadRequest, "the body is not valid UTF-8 JSON")
		}
		return errorf(KindBadRequest, "the body is not valid JSON")
	}
	s := scanner{b: body}
	if c := s.peek(); c != '{' {
		if _, err := s.value(); err != nil {
			return nil, nil, notJSON()
		}
		return nil, nil, errorf(KindBadRequest, "the body must be a JSON object")
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
		return nil, nil, errorf(KindBadRequest, `missing "events"`)
	case wrongType:
		return nil, nil, errorf(KindBadRequest, `"events" must be an array`)
	case len(events) == 0:
		return nil, nil, errorf(KindBadRequest, `"events" is empty`)
	}
	return events, dropped, nil
}

type validator struct {
	now, oldest       time.Time
	f, sdk, env, meta fields            // scratch, reused for each event
	intern            map[string]string // strings seen in this batch
}

// member is one member of a JSON object: its unescaped key and the span of
// its value.
type member struct {
	key []byte // still escaped when esc
	esc bool
	val []byte
}

// fields is one JSON object's members, in order.
type fields []member

// parseFields reads the members of a valid JSON object into f[:0].
func parseFields(f fields, r []byte) (fields, bool) {
	f = f[:0]
	s := scanner{b: r}
	err := s.members(func(k []byte, esc bool, v []byte) error {
		f = append(f, member{k, esc, v})
		return nil
	})
	return f, err == nil
}

// get returns a member (the last of that name), treating null as absent.
func (f fields) get(name string) ([]byte, bool) {
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

// str reads a string member. path names it in reasons.
func (f fields) str(name, path string, required bool, maxChars int) (string, string) {
	return f.strIn(nil, name, path, required, maxChars)
}

// strIn is str that reuses equal strings from intern, so that values
// repeated across a batch (names, versions) are allocated once.
func (f fields) strIn(intern map[string]string, name, path string, required bool, maxChars int) (string, string) {
	r, ok := f.get(name)
	if !ok {
		if required {
			return "", missing(path)
		}
		return "", ""
	}
	if len(r) < 2 || r[0] != '"' {
		return "", invalid(path)
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
		return "", reasonNUL
	}
	if len(s) > maxChars && utf8.RuneCountInString(s) > maxChars {
		return "", tooLong(path)
	}
	if intern != nil && !esc && len(intern) < 256 {
		intern[s] = s
	}
	return s, ""
}

func (f fields) object(dst fields, name, path string) (fields, string) {
	r, ok := f.get(name)
	if !ok {
		return dst[:0], ""
	}
	if r[0] != '{' {
		return nil, invalid(path)
	}
	o, ok := parseFields(dst, r)
	if !ok {
		return nil, invalid(path)
	}
	return o, ""
}

func (v *validator) event(r []byte) (ev Event, reason string) {
	if len(r) == 0 || r[0] != '{' {
		return ev, reasonInvalidEvent
	}
	if !utf8.Valid(r) {
		return ev, reasonInvalidUTF8
	}
	if bytes.Contains(r, []byte(`\u`)) {
		if hasLoneSurrogate(r) {
			return ev, reasonInvalidUTF8
		}
		// A NUL anywhere wins over other reasons, so that the client
		// learns the real cause.
		if containsNUL(r) {
			return ev, reasonNUL
		}
	}
	f, ok := parseFields(v.f, r)
	if !ok {
		return ev, reasonInvalidEvent
	}
	v.f = f

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

	if ev.ServiceName, reason = f.strIn(v.intern, "service_name", "service_name", true, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !validServiceName(ev.ServiceName) {
		return ev, invalid("service_name")
	}
	if ev.ServiceVersion, reason = f.strIn(v.intern, "service_version", "service_version", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.EventType, reason = f.strIn(v.intern, "event_type", "event_type", true, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !validEventType(ev.EventType) {
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
	sdk, reason := f.object(v.sdk, "sdk", "sdk")
	if reason != "" {
		return ev, reason
	}
	v.sdk = sdk
	if ev.SDKName, reason = sdk.strIn(v.intern, "name", "sdk.name", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.SDKVersion, reason = sdk.strIn(v.intern, "version", "sdk.version", false, MaxFieldChars); reason != "" {
		return ev, reason
	}

	// env
	env, reason := f.object(v.env, "env", "env")
	if reason != "" {
		return ev, reason
	}
	v.env = env
	if ev.OS, reason = env.strIn(v.intern, "os", "env.os", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.Arch, reason = env.strIn(v.intern, "arch", "env.arch", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.CIName, reason = env.strIn(v.intern, "ci_name", "env.ci_name", false, MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.GoVersion, reason = env.strIn(v.intern, "go_version", "env.go_version", false, MaxFieldChars); reason != "" {
		return ev, reason
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
		md = []byte("{}")
	}
	if md[0] != '{' {
		return ev, invalid("metadata")
	}
	if len(md) > MaxMetadataBytes {
		return ev, reasonMetadataTooLarge
	}
	ms := scanner{b: md}
	if reason := checkMeta(&ms, 1); reason != "" {
		return ev, reason
	}
	ev.Metadata = md
	meta, _ := parseFields(v.meta, md)
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
		if _, ok := meta.get("error_kind"); ok {
			if s, reason := meta.strIn(v.intern, "error_kind", "metadata.error_kind", false, MaxMetadataString); reason == "" {
				ev.ErrorKind = &s
			}
		}
	case "feature_used":
		nameField = "feature"
	case "method_called":
		nameField = "method"
	}
	if nameField != "" {
		s, reason := meta.strIn(v.intern, nameField, "metadata."+nameField, false, MaxNameChars)
		if strings.HasPrefix(reason, "too_long") {
			return ev, reason
		}
		ev.Name = s // a name of the wrong type is kept in metadata only
	}
	return ev, ""
}

// checkMeta validates the metadata value at s.i, at depth (the metadata
// object is depth 1): nesting, string lengths and numbers that
// PostgreSQL's jsonb accepts. The text must be valid JSON without NUL
// escapes or lone surrogates.
func checkMeta(s *scanner, depth int) string {
	switch c := s.peek(); {
	case c == '{' || c == '[':
		if depth > MaxMetadataDepth {
			return reasonMetadataTooDeep
		}
		s.i++
		closer := byte(']')
		if c == '{' {
			closer = '}'
		}
		if s.expect(closer) {
			return ""
		}
		for {
			if c == '{' {
				k, esc, err := s.str()
				if err != nil || !s.expect(':') {
					return invalid("metadata")
				}
				if r := checkMetaString(k, esc); r != "" {
					return r
				}
			}
			if r := checkMeta(s, depth+1); r != "" {
				return r
			}
			if s.expect(',') {
				continue
			}
			if s.expect(closer) {
				return ""
			}
			return invalid("metadata")
		}
	case c == '"':
		raw, esc, err := s.str()
		if err != nil {
			return invalid("metadata")
		}
		return checkMetaString(raw, esc)
	case c == '-' || isDigit(c):
		n, err := s.number()
		if err != nil {
			return invalid("metadata")
		}
		return checkNumber(n)
	default:
		if _, err := s.value(); err != nil {
			return invalid("metadata")
		}
		return ""
	}
}

func checkMetaString(raw []byte, esc bool) string {
	if len(raw) <= MaxMetadataString {
		return ""
	}
	if utf8.RuneCountInString(unescape(raw, esc)) > MaxMetadataString {
		return tooLong("metadata")
	}
	return ""
}

// checkNumber accepts integers (the metadata size bounds them) and other
// numbers within float64's range with an exponent PostgreSQL's numeric
// accepts.
func checkNumber(n []byte) string {
	if bytes.IndexAny(n, ".eE") < 0 {
		return ""
	}
	if len(n) > 400 {
		return invalid("metadata")
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return invalid("metadata")
	}
	if i := bytes.IndexAny(n, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(string(n[i+1:]), "+"))
		if err != nil || e > 300 || e < -300 {
			return invalid("metadata")
		}
	}
	return ""
}

// parseUUID accepts only the canonical lower-case 8-4-4-4-12 form.
func parseUUID(s string) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[j] = hi<<4 | lo
		j++
		i += 2
	}
	return id, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
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
