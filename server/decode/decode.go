package decode

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// maxTimestampLength is the longest timestamp string read.
const maxTimestampLength = 64

// Batch decodes and validates a request body (already decompressed).
// now is the server's clock and retention the storage window: an event whose
// timestamp or event id time is older than now-retention is rejected.
//
// It returns an [*Error] of kind [KindBadRequest] when the body is not a
// batch and of kind [KindTooLarge] when it holds more than [wire.MaxEvents]
// events; invalid events are reported in [Batch.Rejected] instead.
//
// The body is scanned once: each element of "events" is validated as
// JSON and decoded in the same pass, its members found by name as the
// scanner meets them.
func Batch(body []byte, now time.Time, retention time.Duration) (*server.Batch, error) {
	if retention <= 0 {
		retention = server.DefaultRetention
	}
	d := decoder{v: validator{now: now, oldest: now.Add(-retention)}, capHint: min(wire.MaxEvents, len(body)/384+1)}
	dropped, err := d.body(body)
	if err != nil {
		return nil, err
	}
	if d.total > wire.MaxEvents {
		return nil, server.Errorf(server.KindTooLarge, "%d events, at most %d per request", d.total, wire.MaxEvents)
	}
	b := &server.Batch{Events: d.events, Rejected: d.rejected, Total: d.total}
	if len(dropped) > 0 && string(dropped) != "null" {
		n, err := strconv.ParseInt(string(dropped), 10, 64)
		if err != nil || n < 0 || n > wire.MaxDropped {
			return nil, server.Errorf(server.KindBadRequest, `"dropped" must be an integer from 0 to %d`, int64(wire.MaxDropped))
		}
		b.Dropped = n
	}
	if b.Events == nil {
		b.Events = []server.Event{}
	}
	return b, nil
}

// decoder holds the state of one [Batch].
type decoder struct {
	v        validator
	capHint  int // expected number of events, for the first allocations
	total    int // elements of the events array so far
	events   []server.Event
	rejected []wire.Rejection
	seen     map[[16]byte]struct{}
}

// reset forgets the events decoded so far: a later "events" member
// replaces an earlier one.
func (d *decoder) reset() {
	d.total = 0
	d.events = d.events[:0]
	d.rejected = nil
	clear(d.seen)
}

// body checks that body is a JSON object with an "events" array, decodes
// the elements of that array and returns the span of "dropped". Other
// members are ignored.
func (d *decoder) body(body []byte) ([]byte, error) {
	notJSON := func() error {
		if !utf8.Valid(body) {
			return server.Errorf(server.KindBadRequest, "the body is not valid UTF-8 JSON")
		}
		return server.Errorf(server.KindBadRequest, "the body is not valid JSON")
	}
	s := scanner{b: body}
	if c := s.peek(); c != '{' {
		if _, err := s.value(); err != nil {
			return nil, notJSON()
		}
		return nil, server.Errorf(server.KindBadRequest, "the body must be a JSON object")
	}
	s.i++
	var dropped []byte
	hasEvents, wrongType := false, false
	if !s.expect('}') {
		for {
			k, esc, err := s.str()
			if err != nil || !s.expect(':') {
				return nil, notJSON()
			}
			isEvents := keyIs(k, esc, "events")
			switch {
			case isEvents && s.peek() == '[':
				s.i++
				hasEvents, wrongType = true, false
				d.reset()
				if !s.expect(']') {
					for {
						if err := d.element(&s); err != nil {
							return nil, notJSON()
						}
						if s.expect(',') {
							continue
						}
						if s.expect(']') {
							break
						}
						return nil, notJSON()
					}
				}
			default:
				v, err := s.value()
				if err != nil {
					return nil, notJSON()
				}
				switch {
				case isEvents:
					hasEvents, wrongType = string(v) != "null", true
				case keyIs(k, esc, "dropped"):
					dropped = v
				}
			}
			if s.expect(',') {
				continue
			}
			if s.expect('}') {
				break
			}
			return nil, notJSON()
		}
	}
	if s.ws(); s.i != len(body) {
		return nil, notJSON()
	}
	switch {
	case !hasEvents:
		return nil, server.Errorf(server.KindBadRequest, `missing "events"`)
	case wrongType:
		return nil, server.Errorf(server.KindBadRequest, `"events" must be an array`)
	case d.total == 0:
		return nil, server.Errorf(server.KindBadRequest, `"events" is empty`)
	}
	return dropped, nil
}

// element scans the next element of the events array and, within the
// limit of wire.MaxEvents, decodes it into an event or a rejection.
func (d *decoder) element(s *scanner) error {
	d.total++
	if d.total > wire.MaxEvents {
		_, err := s.value()
		return err
	}
	var raw rawEvent
	s.ws()
	start := s.i
	if s.peek() == '{' {
		if err := raw.scan(s); err != nil {
			return err
		}
	} else if _, err := s.value(); err != nil {
		return err
	}
	if d.events == nil {
		d.events = make([]server.Event, 0, d.capHint)
		d.seen = make(map[[16]byte]struct{}, d.capHint)
	}
	ev, reason := d.v.event(s.b[start:s.i], &raw)
	if reason == "" {
		if _, dup := d.seen[ev.EventID]; dup {
			reason = wire.ReasonDuplicateInBatch
		} else {
			d.seen[ev.EventID] = struct{}{}
		}
	}
	if reason != "" {
		d.rejected = append(d.rejected, wire.Rejection{Index: d.total - 1, Reason: reason})
		return nil
	}
	d.events = append(d.events, ev)
	return nil
}

// keyIs reports whether an object key (still escaped when esc) is name.
func keyIs(k []byte, esc bool, name string) bool {
	if esc {
		return unescape(k, true) == name
	}
	return string(k) == name
}

// lookup returns the index of an object key (still escaped when esc) in
// names, or -1.
func lookup(k []byte, esc bool, names []string) int {
	if esc {
		u := unescape(k, true)
		for i, n := range names {
			if n != "" && u == n {
				return i
			}
		}
		return -1
	}
	for i, n := range names {
		if n != "" && string(k) == n {
			return i
		}
	}
	return -1
}

// The members of an event that [Batch] reads, by index.
const (
	fEventID = iota
	fSchemaVersion
	fServiceName
	fServiceVersion
	fEventType
	fTimestamp
	fUserID
	fSessionID
	fSDK
	fEnv
	fMetadata
	nEventFields
)

var eventNames = [2]*[8]string{
	{"event_id", "schema_version", "service_name", "service_version", "event_type", "timestamp", "user_id", "session_id"},
	{"sdk", "env", "metadata"},
}

const (
	sdkName = iota
	sdkVersion
)

var sdkNames = [8]string{"name", "version"}

const (
	envOS = iota
	envArch
	envCIName
	envGoVersion
	envCI
)

var envNames = [8]string{"os", "arch", "ci_name", "go_version", "ci"}

const (
	metaCommand = iota
	metaFeature
	metaMethod
	metaSuccess
	metaDurationMS
	metaExitCode
	metaErrorKind
	metaFlags
	metaFlagValues
	nMetaFields
)

var metaNames = [nMetaFields]string{wire.MetaCommand, wire.MetaFeature, wire.MetaMethod, wire.MetaSuccess,
	wire.MetaDurationMS, wire.MetaExitCode, wire.MetaErrorKind, wire.MetaFlags, wire.MetaFlagValues}

// rawEvent holds the spans of the members of one event object that the
// validator reads, as the last member of each name has them (null counts
// as absent); nil when absent.
type rawEvent struct {
	top  [nEventFields][]byte
	sdk  [2][]byte           // of the last "sdk", when an object
	env  [5][]byte           // of the last "env", when an object
	meta [nMetaFields][]byte // of the last "metadata", when an object passing checkMeta
	// metaReason is checkMeta's verdict on the last "metadata" object.
	metaReason string
}

// notNull returns v, or nil for null.
func notNull(v []byte) []byte {
	if string(v) == "null" {
		return nil
	}
	return v
}

// eventField returns the index of an event member name, or -1.
func eventField(k []byte, esc bool) int {
	if i := lookup(k, esc, eventNames[0][:]); i >= 0 {
		return i
	}
	if i := lookup(k, esc, eventNames[1][:]); i >= 0 {
		return fSDK + i
	}
	return -1
}

// scan reads the event object at s.i (at its '{'), validating its syntax,
// and records the members it needs.
func (r *rawEvent) scan(s *scanner) error {
	s.i++
	if s.expect('}') {
		return nil
	}
	for {
		k, esc, err := s.str()
		if err != nil || !s.expect(':') {
			return errSyntax
		}
		s.ws()
		start := s.i
		f := eventField(k, esc)
		switch f {
		case fSDK:
			r.sdk = [2][]byte{}
			err = scanObject(s, sdkNames[:], r.sdk[:])
		case fEnv:
			r.env = [5][]byte{}
			err = scanObject(s, envNames[:], r.env[:])
		case fMetadata:
			r.meta, r.metaReason = [nMetaFields][]byte{}, ""
			if s.peek() == '{' {
				if r.metaReason = checkMetaTop(s, &r.meta); r.metaReason != "" {
					// Find the end of the value (and check its syntax).
					s.i = start
					_, err = s.value()
				}
			} else {
				_, err = s.value()
			}
		default:
			_, err = s.value()
		}
		if err != nil {
			return err
		}
		if f >= 0 {
			r.top[f] = notNull(s.b[start:s.i])
		}
		if s.expect(',') {
			continue
		}
		if s.expect('}') {
			return nil
		}
		return errSyntax
	}
}

// scanObject scans the value at s.i; when it is an object, the values of
// its members named in names go to dst (by index; the last of a name wins,
// null counts as absent).
func scanObject(s *scanner, names []string, dst [][]byte) error {
	if s.peek() != '{' {
		_, err := s.value()
		return err
	}
	s.i++
	if s.expect('}') {
		return nil
	}
	for {
		k, esc, err := s.str()
		if err != nil || !s.expect(':') {
			return errSyntax
		}
		v, err := s.value()
		if err != nil {
			return err
		}
		if i := lookup(k, esc, names); i >= 0 && i < len(dst) {
			dst[i] = notNull(v)
		}
		if s.expect(',') {
			continue
		}
		if s.expect('}') {
			return nil
		}
		return errSyntax
	}
}

// checkMetaTop is checkMeta for the metadata object itself (at s.i, at
// its '{'), which also records the members in metaNames. When it returns
// a reason, s.i is left anywhere within the object.
func checkMetaTop(s *scanner, dst *[nMetaFields][]byte) string {
	s.i++
	if s.expect('}') {
		return ""
	}
	for {
		k, esc, err := s.str()
		if err != nil || !s.expect(':') {
			return wire.InvalidField("metadata")
		}
		if r := checkMetaString(k, esc); r != "" {
			return r
		}
		s.ws()
		start := s.i
		if r := checkMeta(s, 2); r != "" {
			return r
		}
		if i := lookup(k, esc, metaNames[:]); i >= 0 && i < len(dst) {
			dst[i] = notNull(s.b[start:s.i])
		}
		if s.expect(',') {
			continue
		}
		if s.expect('}') {
			return ""
		}
		return wire.InvalidField("metadata")
	}
}

type validator struct {
	now, oldest time.Time
	intern      map[string]string // strings seen in this batch
	// Backing arrays for the pointer fields of Event, filled in turn so
	// that a batch allocates them a few at a time rather than one by one.
	bools []bool
	ints  []int64
	codes []int32
	kinds []string
	flags []server.Flag
}

const slabSize = 64

// inSlab stores x in *slab and returns a pointer to it, starting a new slab
// of slabSize when the current one is full (earlier pointers stay valid).
func inSlab[T any](slab *[]T, x T) *T {
	if len(*slab) == cap(*slab) {
		*slab = make([]T, 0, slabSize)
	}
	*slab = append(*slab, x)
	return &(*slab)[len(*slab)-1]
}

func (v *validator) newBool(b bool) *bool { return inSlab(&v.bools, b) }

func (v *validator) newInt(n int64) *int64 { return inSlab(&v.ints, n) }

func (v *validator) newCode(n int32) *int32 { return inSlab(&v.codes, n) }

func (v *validator) newKind(s string) *string { return inSlab(&v.kinds, s) }

// str reads a string value r (nil when absent). path names it in reasons.
// With intern, equal strings without escapes are allocated once per batch.
func str(intern map[string]string, r []byte, path string, required bool, maxChars int) (string, string) {
	if r == nil {
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

// plain returns the content of a string value r without escapes, or
// false when r is not such a string.
func plain(r []byte) ([]byte, bool) {
	if len(r) < 2 || r[0] != '"' || bytes.IndexByte(r, '\\') >= 0 {
		return nil, false
	}
	return r[1 : len(r)-1], true
}

func (v *validator) in(r []byte, path string, required bool, maxChars int) (string, string) {
	if v.intern == nil {
		v.intern = make(map[string]string)
	}
	return str(v.intern, r, path, required, maxChars)
}

// event validates the event whose text is r and whose members raw holds.
func (v *validator) event(r []byte, raw *rawEvent) (ev server.Event, reason string) {
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
	f := &raw.top

	// event_id
	id, reason := uuidMember(f[fEventID], "event_id")
	if reason != "" {
		return ev, reason
	}
	if !wire.IsUUIDv7(id) {
		return ev, wire.InvalidField("event_id")
	}
	ev.EventID = id
	idTime := time.UnixMilli(wire.UUIDv7Millis(ev.EventID))
	if idTime.After(v.now.Add(wire.MaxFutureSkew)) || idTime.Before(v.oldest) {
		return ev, wire.InvalidField("event_id")
	}

	// schema_version
	if sv := f[fSchemaVersion]; sv == nil {
		return ev, wire.MissingField("schema_version")
	} else if string(sv) != "1" {
		return ev, wire.InvalidField("schema_version")
	}

	if ev.ServiceName, reason = v.in(f[fServiceName], "service_name", true, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !wire.ValidServiceName(ev.ServiceName) {
		return ev, wire.InvalidField("service_name")
	}
	if ev.ServiceVersion, reason = v.in(f[fServiceVersion], "service_version", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.EventType, reason = v.in(f[fEventType], "event_type", true, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if !wire.ValidEventType(ev.EventType) {
		return ev, wire.InvalidField("event_type")
	}

	// timestamp
	var ts time.Time
	var err error
	if c, isPlain := plain(f[fTimestamp]); isPlain {
		if len(c) > maxTimestampLength && utf8.RuneCount(c) > maxTimestampLength {
			return ev, wire.TooLong("timestamp")
		}
		ts, err = time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(c), len(c)))
	} else {
		s, reason := str(nil, f[fTimestamp], "timestamp", true, maxTimestampLength)
		if reason != "" {
			return ev, reason
		}
		ts, err = time.Parse(time.RFC3339Nano, s)
	}
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
	if c, isPlain := plain(f[fUserID]); isPlain {
		var ok bool
		if ev.UserID, ok = wire.ParseUserID(c); !ok {
			return ev, wire.InvalidField("user_id")
		}
	} else {
		s, reason := str(nil, f[fUserID], "user_id", true, len(wire.UserIDPrefix)+64)
		if reason != "" {
			if strings.HasPrefix(reason, "too_long") {
				reason = wire.InvalidField("user_id")
			}
			return ev, reason
		}
		var ok bool
		if ev.UserID, ok = wire.ParseUserID(s); !ok {
			return ev, wire.InvalidField("user_id")
		}
	}

	// session_id
	if ev.SessionID, reason = uuidMember(f[fSessionID], "session_id"); reason != "" {
		return ev, reason
	}

	// sdk
	if r := f[fSDK]; r != nil && r[0] != '{' {
		return ev, wire.InvalidField("sdk")
	}
	if ev.SDKName, reason = v.in(raw.sdk[sdkName], "sdk.name", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.SDKVersion, reason = v.in(raw.sdk[sdkVersion], "sdk.version", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}

	// env
	if r := f[fEnv]; r != nil && r[0] != '{' {
		return ev, wire.InvalidField("env")
	}
	if ev.OS, reason = v.in(raw.env[envOS], "env.os", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.Arch, reason = v.in(raw.env[envArch], "env.arch", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.CIName, reason = v.in(raw.env[envCIName], "env.ci_name", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if ev.GoVersion, reason = v.in(raw.env[envGoVersion], "env.go_version", false, wire.MaxFieldChars); reason != "" {
		return ev, reason
	}
	if r := raw.env[envCI]; r != nil {
		switch string(r) {
		case "true":
			ev.CI = true
		case "false":
		default:
			return ev, wire.InvalidField("env.ci")
		}
	}

	// metadata
	md := f[fMetadata]
	if md == nil {
		md = []byte("{}")
	}
	if md[0] != '{' {
		return ev, wire.InvalidField("metadata")
	}
	if len(md) > wire.MaxMetadataBytes {
		return ev, wire.ReasonMetadataTooLarge
	}
	if raw.metaReason != "" {
		return ev, raw.metaReason
	}
	ev.Metadata = md
	meta := &raw.meta
	name, namePath := -1, ""
	switch ev.EventType {
	case "command_executed":
		name, namePath = metaCommand, "metadata.command"
		if r := meta[metaSuccess]; r != nil {
			switch string(r) {
			case "true", "false":
				ev.Success = v.newBool(string(r) == "true")
			}
		}
		// Integers out of range make the event invalid, so that no sum
		// can be poisoned; other types stay in metadata only.
		if r := meta[metaDurationMS]; isInteger(r) {
			n, err := strconv.ParseInt(string(r), 10, 64)
			if err != nil || n < 0 || n > wire.MaxDurationMS {
				return ev, wire.InvalidField("metadata.duration_ms")
			}
			ev.DurationMS = v.newInt(n)
		}
		if r := meta[metaExitCode]; isInteger(r) {
			n, err := strconv.ParseInt(string(r), 10, 32)
			if err != nil {
				return ev, wire.InvalidField("metadata.exit_code")
			}
			ev.ExitCode = v.newCode(int32(n))
		}
		if r := meta[metaErrorKind]; r != nil {
			if s, reason := v.in(r, "metadata.error_kind", false, wire.MaxMetadataString); reason == "" {
				ev.ErrorKind = v.newKind(s)
			}
		}
		ev.Flags = v.commandFlags(meta[metaFlags], meta[metaFlagValues])
	case "feature_used":
		name, namePath = metaFeature, "metadata.feature"
	case "method_called":
		name, namePath = metaMethod, "metadata.method"
	}
	if name >= 0 {
		s, reason := v.in(meta[name], namePath, false, wire.MaxNameChars)
		if strings.HasPrefix(reason, "too_long") {
			return ev, reason
		}
		ev.Name = s // a name of the wrong type is kept in metadata only
	}
	return ev, ""
}

// isInteger reports whether a valid JSON value is an integer literal: an
// optional minus and digits, no fraction or exponent.
func isInteger(r []byte) bool {
	if len(r) > 0 && r[0] == '-' {
		r = r[1:]
	}
	if len(r) == 0 {
		return false
	}
	for _, c := range r {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// commandFlags returns the flags of a command_executed event whose
// metadata.flags and metadata.flag_values are list and values (spans of
// valid JSON, nil when absent), as the flag rollup counts them: the string
// elements of list of 1 to wire.MaxFlagChars characters, each name once, the
// first wire.MaxRollupFlags of them, in list order. A flag's value is its member
// in values when that is a string of 1 to wire.MaxFlagChars characters.
// Anything else (list not an array, other elements, other values) is left
// out of the rollup and kept in the event's metadata only.
func (v *validator) commandFlags(list, values []byte) []server.Flag {
	if len(list) < 2 || list[0] != '[' {
		return nil
	}
	var buf [wire.MaxRollupFlags]server.Flag
	fs := buf[:0]
	s := scanner{b: list, i: 1}
	if !s.expect(']') {
		for len(fs) < wire.MaxRollupFlags {
			val, err := s.value()
			if err != nil {
				return nil // cannot happen: the metadata is valid JSON
			}
			if name, ok := v.flagString(val); ok && !slices.ContainsFunc(fs, func(f server.Flag) bool { return f.Name == name }) {
				fs = append(fs, server.Flag{Name: name})
			}
			if !s.expect(',') {
				break
			}
		}
	}
	if len(fs) == 0 {
		return nil
	}
	if len(values) > 0 && values[0] == '{' {
		s := scanner{b: values}
		s.members(func(k []byte, esc bool, val []byte) error {
			for i := range fs {
				if keyIs(k, esc, fs[i].Name) {
					fs[i].Value, fs[i].HasValue = v.flagString(val)
				}
			}
			return nil
		})
	}
	if cap(v.flags)-len(v.flags) < len(fs) {
		v.flags = make([]server.Flag, 0, max(slabSize, len(fs)))
	}
	n := len(v.flags)
	v.flags = append(v.flags, fs...)
	return v.flags[n:len(v.flags):len(v.flags)]
}

// flagString returns the string of a JSON value when it is a string of 1 to
// wire.MaxFlagChars characters.
func (v *validator) flagString(val []byte) (string, bool) {
	if len(val) < 3 || val[0] != '"' || len(val) > 2+12*wire.MaxFlagChars { // a character is at most 12 bytes escaped
		return "", false
	}
	s, reason := v.in(val, "", false, wire.MaxFlagChars)
	return s, reason == "" && s != ""
}

// checkMeta validates the metadata value at s.i, at depth (the metadata
// object is depth 1): nesting, string lengths and numbers that
// PostgreSQL's jsonb accepts. The text must be valid JSON without NUL
// escapes or lone surrogates.
func checkMeta(s *scanner, depth int) string {
	switch c := s.peek(); {
	case c == '{' || c == '[':
		if depth > wire.MaxMetadataDepth {
			return wire.ReasonMetadataTooDeep
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
					return wire.InvalidField("metadata")
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
			return wire.InvalidField("metadata")
		}
	case c == '"':
		raw, esc, err := s.str()
		if err != nil {
			return wire.InvalidField("metadata")
		}
		return checkMetaString(raw, esc)
	case c == '-' || isDigit(c):
		n, err := s.number()
		if err != nil {
			return wire.InvalidField("metadata")
		}
		return checkNumber(n)
	default:
		if _, err := s.value(); err != nil {
			return wire.InvalidField("metadata")
		}
		return ""
	}
}

func checkMetaString(raw []byte, esc bool) string {
	if len(raw) <= wire.MaxMetadataString {
		return ""
	}
	if utf8.RuneCountInString(unescape(raw, esc)) > wire.MaxMetadataString {
		return wire.TooLong("metadata")
	}
	return ""
}

// checkNumber accepts integers (the metadata size bounds them) and other
// numbers within float64's range with an exponent PostgreSQL's numeric
// accepts.
func checkNumber(n []byte) string {
	if !bytes.ContainsAny(n, ".eE") {
		return ""
	}
	if len(n) > 400 {
		return wire.InvalidField("metadata")
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return wire.InvalidField("metadata")
	}
	if i := bytes.IndexAny(n, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(string(n[i+1:]), "+"))
		if err != nil || e > 300 || e < -300 {
			return wire.InvalidField("metadata")
		}
	}
	return ""
}

// uuidMember reads the UUID in member name's raw value; reason says why
// there is none.
func uuidMember(raw []byte, name string) (id [16]byte, reason string) {
	var ok bool
	if c, isPlain := plain(raw); isPlain {
		// Without escapes the content is the string: no NUL, and any
		// length but 36 is invalid.
		id, ok = wire.ParseUUID(c)
	} else {
		s, reason := str(nil, raw, name, true, 36)
		if reason != "" {
			if strings.HasPrefix(reason, "too_long") {
				reason = wire.InvalidField(name)
			}
			return id, reason
		}
		id, ok = wire.ParseUUID(s)
	}
	if !ok {
		return id, wire.InvalidField(name)
	}
	return id, ""
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
