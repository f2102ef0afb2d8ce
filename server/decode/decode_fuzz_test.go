package decode

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// fuzzNow is the fixed clock of the fuzz target, so that corpus entries keep
// their meaning.
var fuzzNow = time.Date(2026, 11, 25, 21, 40, 51, 123e6, time.UTC)

const fuzzEvent = `{"event_id":"019abc8b-ab73-7c2e-9a51-3f0e5d6c7b8a","schema_version":1,"service_name":"my-cli",` +
	`"service_version":"1.4.2","event_type":"command_executed","timestamp":"2026-11-25T21:40:51.123Z",` +
	`"user_id":"anon_3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a",` +
	`"session_id":"019abc8b-ab73-7000-8000-000000000001","sdk":{"name":"telemetry-kit-go","version":"0.1.0"},` +
	`"env":{"os":"linux","arch":"amd64","ci":false,"go_version":"go1.26.8"},` +
	`"metadata":{"command":"remote add","flags":["force","verbose"],"args_count":2,"success":true,"error_kind":"","duration_ms":12,"exit_code":0}}`

func TestFuzzSeedIsValid(t *testing.T) {
	b, err := Batch([]byte(`{"events":[`+fuzzEvent+`],"dropped":3}`), fuzzNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || len(b.Rejected) != 0 || b.Dropped != 3 {
		t.Fatalf("%+v", b)
	}
	ev := b.Events[0]
	if ev.Name != "remote add" || ev.Success == nil || !*ev.Success || *ev.DurationMS != 12 || *ev.ExitCode != 0 {
		t.Fatalf("%+v", ev)
	}
	if !ev.Timestamp.Equal(fuzzNow) {
		t.Fatalf("timestamp %v", ev.Timestamp)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"events":[` + fuzzEvent + `],"dropped":0}`))
	f.Add([]byte(`{"events":[` + fuzzEvent + `,` + fuzzEvent + `]}`))
	f.Add([]byte(`{"events":[` + strings.Replace(fuzzEvent, `"args_count":2`, `"n":1e999,"s":"\ud800"`, 1) + `]}`))
	f.Add([]byte(`{"events":[` + strings.Replace(fuzzEvent, `"remote add"`, `"a\u0000b"`, 1) + `]}`))
	f.Add([]byte(`{"events":[{"metadata":{"a":{"b":{"c":{"d":{}}}}}}]}`))
	f.Add([]byte(`{"events":[1,"x",null,[],{}],"dropped":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Batch(body, fuzzNow, 0)
		if err != nil {
			var e *server.Error
			if !errors.As(err, &e) || (e.Kind != server.KindBadRequest && e.Kind != server.KindTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(b.Events)+len(b.Rejected) != b.Total || b.Total == 0 || b.Total > wire.MaxEvents {
			t.Fatalf("%d valid + %d rejected != %d", len(b.Events), len(b.Rejected), b.Total)
		}
		if b.Dropped < 0 {
			t.Fatalf("dropped %d", b.Dropped)
		}
		last := -1
		for _, r := range b.Rejected {
			if r.Index <= last || r.Index >= b.Total || r.Reason == "" {
				t.Fatalf("bad rejection %+v after %d", r, last)
			}
			last = r.Index
		}
		seen := map[[16]byte]bool{}
		for _, ev := range b.Events {
			if seen[ev.EventID] {
				t.Fatalf("event id twice")
			}
			seen[ev.EventID] = true
			for _, s := range []string{ev.ServiceName, ev.ServiceVersion, ev.EventType, ev.Name, ev.SDKName,
				ev.SDKVersion, ev.OS, ev.Arch, ev.CIName, ev.GoVersion, string(ev.Metadata)} {
				if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("invalid string %q", s)
				}
			}
			if strings.Contains(string(ev.Metadata), `\u0000`) || len(ev.Metadata) > wire.MaxMetadataBytes {
				t.Fatalf("metadata %q", ev.Metadata)
			}
			var m map[string]any
			if err := json.Unmarshal(ev.Metadata, &m); err != nil {
				t.Fatalf("metadata not a JSON object: %q", ev.Metadata)
			}
			if ev.Timestamp.After(fuzzNow.Add(wire.MaxFutureSkew)) || ev.Timestamp.Before(fuzzNow.Add(-server.DefaultRetention)) {
				t.Fatalf("timestamp %v out of range", ev.Timestamp)
			}
			if utf8.RuneCountInString(ev.Name) > wire.MaxNameChars {
				t.Fatalf("name too long")
			}
		}
	})
}

func BenchmarkDecodeBatch(b *testing.B) {
	body := []byte(`{"events":[` + strings.TrimSuffix(strings.Repeat(fuzzEvent+",", 100), ",") + `]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Batch(body, fuzzNow, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatchReference decodes BenchmarkDecodeBatch's body with the
// reference decoder of the differential fuzz test, for scale: it scans the
// body with the package's scanner and reads metadata and flags with
// encoding/json. BenchmarkDecodeBatchLibs compares JSON libraries.
func BenchmarkDecodeBatchReference(b *testing.B) {
	body := []byte(`{"events":[` + strings.TrimSuffix(strings.Repeat(fuzzEvent+",", 100), ",") + `]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := refDecodeBatch(body, fuzzNow, 0); err != nil {
			b.Fatal(err)
		}
	}
}
