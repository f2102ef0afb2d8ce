package sender

import (
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "99999999999999999999", "Wed, 25 Nov 2026 12:10:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", " 5 ", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v without ok", v, d)
		}
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, negative", v, d)
		}
	})
}

func FuzzDecodeResponseAndState(f *testing.F) {
	f.Add([]byte(`{"next_attempt":"2026-11-25T12:00:00Z","backoff_s":120,"unreported":3}`), "019a4c3e-7b1d-7c2e-9a51-3f0e5d6c7b8a")
	f.Add([]byte(`{"backoff_s":-5}`), "zzzzzzzz-zzzz-7zzz-zzzz-zzzzzzzzzzzz")
	f.Add([]byte(`{"timestamp":"2026-11-25T21:40:51.123Z"}`), "x")
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		st := decodeState(data)
		_ = st.Backoff()
		_ = st.AuthBlocked("k", time.Now())
		RecordTime(store.Record{ID: id, Data: data})
	})
}
