package privacy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// decodeJSON is how load reads a consent.json that parseCanonical leaves
// to encoding/json.
func decodeJSON(data []byte) (record, bool) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil || dec.More() {
		return record{}, false
	}
	return r, true
}

// TestParseCanonicalWritten checks that every file write produces takes the
// fast path and reads back as encoding/json reads it.
func TestParseCanonicalWritten(t *testing.T) {
	at := time.Date(2026, 11, 25, 22, 58, 5, 533437293, time.UTC)
	for _, r := range []record{
		{},
		{NoticePolicyVersion: 1, NoticeShownAt: at},
		{Decision: decisionEnabled, DecidedAt: at, PolicyVersion: 3, Via: viaPrompt},
		{Decision: decisionDisabled, DecidedAt: at.Truncate(time.Second), PolicyVersion: 1, Via: viaCommand,
			NoticePolicyVersion: 2, NoticeShownAt: at.Add(-time.Hour)},
		{Decision: "odd é", PolicyVersion: -7, NoticePolicyVersion: 1 << 40},
	} {
		dir := t.TempDir()
		o := Options{Service: "tool", Dir: dir}
		if err := o.write(r); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, consentFile))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseCanonical(data)
		if !ok {
			t.Fatalf("written file not read by parseCanonical:\n%s", data)
		}
		want, ok := decodeJSON(data)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("parseCanonical = %+v, encoding/json = %+v (%v)", got, want, ok)
		}
	}
}

// TestParseCanonicalDeclines checks that what is not exactly write's layout
// is left to encoding/json, which still reads what it can.
func TestParseCanonicalDeclines(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		jsonOK     bool
	}{
		{"compact", `{"format":1,"notice_policy_version":1}`, true},
		{"no final newline", "{\n  \"format\": 1\n}", true},
		{"crlf", "{\r\n  \"format\": 1\r\n}\r\n", true},
		{"tab indent", "{\n\t\"format\": 1\n}\n", true},
		{"upper-case key", "{\n  \"Format\": 1\n}\n", true},
		{"unknown key", "{\n  \"format\": 1,\n  \"extra\": 2\n}\n", true},
		{"duplicate key", "{\n  \"format\": 1,\n  \"format\": 2\n}\n", true},
		{"escaped string", "{\n  \"format\": 1,\n  \"via\": \"pr\\u006fmpt\"\n}\n", true},
		{"null", "{\n  \"format\": null\n}\n", true},
		{"missing comma", "{\n  \"format\": 1\n  \"via\": \"x\"\n}\n", false},
		{"trailing comma", "{\n  \"format\": 1,\n}\n", false},
		{"leading zero", "{\n  \"format\": 01\n}\n", false},
		{"plus sign", "{\n  \"format\": +1\n}\n", false},
		{"fraction", "{\n  \"format\": 1.0\n}\n", false},
		{"string for int", "{\n  \"format\": \"1\"\n}\n", false},
		{"int for string", "{\n  \"via\": 1\n}\n", false},
		{"bad time", "{\n  \"decided_at\": \"yesterday\"\n}\n", false},
		{"overflow", "{\n  \"format\": 99999999999999999999\n}\n", false},
		{"two objects", "{\n  \"format\": 1\n}\n{\n  \"format\": 2\n}\n", false},
		{"empty object", "{\n}\n", true},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, ok := parseCanonical([]byte(tc.data)); ok {
				t.Fatalf("parseCanonical accepted %q as %+v", tc.data, r)
			}
			if _, ok := decodeJSON([]byte(tc.data)); ok != tc.jsonOK {
				t.Fatalf("encoding/json reads %q: %v, want %v", tc.data, ok, tc.jsonOK)
			}
		})
	}
}

// FuzzParseCanonical checks that whatever parseCanonical reads,
// encoding/json reads as the same record.
func FuzzParseCanonical(f *testing.F) {
	f.Add([]byte("{\n  \"format\": 1,\n  \"notice_policy_version\": 1,\n  \"notice_shown_at\": \"2026-11-25T22:58:05.533437293Z\"\n}\n"))
	f.Add([]byte("{\n  \"format\": 1,\n  \"decision\": \"enabled\",\n  \"decided_at\": \"2026-11-25T22:58:05+01:00\",\n  \"policy_version\": 2,\n  \"via\": \"command\"\n}\n"))
	f.Add([]byte("{\n  \"format\": -0,\n  \"via\": \"\xff\"\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := parseCanonical(data)
		if !ok {
			return
		}
		want, ok := decodeJSON(data)
		if !ok {
			t.Fatalf("parseCanonical read %q, encoding/json does not", data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: parseCanonical = %+v, encoding/json = %+v", data, got, want)
		}
	})
}
