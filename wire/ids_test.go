package wire

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// ParseUUID accepts exactly the canonical lower-case form, and
// ParseUserID exactly "anon_" and 64 lower-case hex digits.
func TestParseHexFields(t *testing.T) {
	canon := "019abc8b-ab73-7c2e-9a51-3f0e5d6c7b8a"
	user := "anon_" + strings.Repeat("3f2a", 16)
	for pos := 0; pos < len(canon); pos++ {
		for c := 0; c < 256; c++ {
			s := []byte(canon)
			s[pos] = byte(c)
			ref, err := uuid.ParseBytes(s)
			want := err == nil && strings.ToLower(string(s)) == string(s) && len(s) == 36 && s[8] == '-'
			got, ok := ParseUUID(s)
			if ok != want || ok && got != ref {
				t.Fatalf("%q: %v %v, want %v %v", s, got, ok, ref, want)
			}
		}
	}
	for pos := 5; pos < len(user); pos++ {
		for c := 0; c < 256; c++ {
			s := []byte(user)
			s[pos] = byte(c)
			ref, err := hex.DecodeString(string(s[5:]))
			want := err == nil && strings.ToLower(string(s)) == string(s)
			got, ok := ParseUserID(s)
			if ok != want || ok && string(got[:]) != string(ref) {
				t.Fatalf("%q: %v, want %v", s, ok, want)
			}
		}
	}
}

// FormatUUID writes what google/uuid writes, and ParseUUID reads it back.
func TestFormatUUID(t *testing.T) {
	for i := range 2000 {
		var id [16]byte
		if i > 0 {
			id = uuid.New()
		}
		if i == 1 {
			id = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		}
		s := FormatUUID(id)
		if want := uuid.UUID(id).String(); s != want {
			t.Fatalf("FormatUUID(%x) = %s, want %s", id, s, want)
		}
		if back, ok := ParseUUID(s); !ok || back != id {
			t.Fatalf("ParseUUID(%s) = %x %v, want %x", s, back, ok, id)
		}
	}
}
