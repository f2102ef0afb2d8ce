package sender

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// scanState reads what the sender writes exactly as encoding/json does,
// and declines what it does not know.
func TestScanStateMatchesJSON(t *testing.T) {
	at := time.Date(2026, 12, 3, 7, 30, 0, 123456789, time.FixedZone("X", 3600))
	for _, st := range []State{
		{},
		{LastResult: "ok", Delivered: true},
		{NextAttempt: at, BackoffSeconds: 120, LastResult: "http_503"},
		{AuthBlockedUntil: at.UTC(), AuthKey: "3f2a9c", Unreported: 7, LastResult: "http_401", Delivered: true},
	} {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var want State
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, ok := scanState(b)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("scanState(%s) = %+v, %v; want %+v", b, got, ok, want)
		}
		if got := decodeState(b); !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeState(%s) = %+v", b, got)
		}
	}
	for _, odd := range []string{`{"last_result":"o\"k"}`, `{"other":1}`, `{"delivered":tru}`, `[1]`, `{"backoff_s":-1}`, `{"a":{}}`, `{"last_result":"ok"} x`} {
		if _, ok := scanState([]byte(odd)); ok {
			t.Errorf("scanState(%s) accepted it", odd)
		}
	}
	// What it declines, encoding/json still reads.
	if got := decodeState([]byte(`{"last_result":"o\"k","delivered":true}`)); got.LastResult != `o"k` || !got.Delivered {
		t.Fatalf("fallback: %+v", got)
	}
}
