package wire

import "time"

// ParseUUID parses the canonical form of a UUID, lower-case hex in groups
// of 8-4-4-4-12, the only form the protocol accepts.
func ParseUUID[T string | []byte](s T) (id [16]byte, ok bool) {
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

// FormatUUID returns the canonical form of id: lower-case hex in groups of
// 8-4-4-4-12.
func FormatUUID(id [16]byte) string {
	const digits = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = digits[c>>4], digits[c&0x0f]
		j += 2
	}
	return string(b[:])
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

// IsUUIDv7 reports whether id is a version 7 UUID of the RFC 9562 variant,
// the form of every event_id.
func IsUUIDv7(id [16]byte) bool {
	return id[6]>>4 == 7 && id[8]>>6 == 0b10
}

// UUIDv7Millis returns the Unix time in milliseconds that a UUIDv7
// carries in its first 48 bits.
func UUIDv7Millis(id [16]byte) int64 {
	var ms int64
	for _, b := range id[:6] {
		ms = ms<<8 | int64(b)
	}
	return ms
}

// UUIDv7Time returns the time a UUIDv7 carries, in UTC.
func UUIDv7Time(id [16]byte) time.Time {
	return time.UnixMilli(UUIDv7Millis(id)).UTC()
}

// EventIDTime returns the time an event_id carries, and false when s is
// not a UUIDv7 in canonical form.
func EventIDTime(s string) (time.Time, bool) {
	id, ok := ParseUUID(s)
	if !ok || !IsUUIDv7(id) {
		return time.Time{}, false
	}
	return UUIDv7Time(id), true
}

// UserIDPrefix starts every anonymous user ID: "anon_" and 64 lower-case
// hex digits, a keyed hash that the SDK derives on the machine.
const UserIDPrefix = "anon_"

// ParseUserID decodes an anonymous user ID into its 32 bytes.
func ParseUserID[T string | []byte](s T) (id [32]byte, ok bool) {
	if len(s) != len(UserIDPrefix)+64 || string(s[:len(UserIDPrefix)]) != UserIDPrefix {
		return id, false
	}
	s = s[len(UserIDPrefix):]
	for i := range id {
		hi, ok1 := lowerHex(s[2*i])
		lo, ok2 := lowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}
