package wire_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

func TestAppendBatch(t *testing.T) {
	for _, c := range []struct {
		events  [][]byte
		dropped uint64
		want    uint64
	}{
		{nil, 0, 0},
		{[][]byte{[]byte(`{"a":1}`)}, 3, 3},
		{[][]byte{[]byte(`{"a":1}`), []byte(`{"b":[2]}`)}, wire.MaxDropped, wire.MaxDropped},
		// A queue that lost more than the server accepts reports the most
		// it may, rather than a count the server refuses forever.
		{[][]byte{[]byte(`{}`)}, math.MaxUint64, wire.MaxDropped},
	} {
		body := wire.AppendBatch([]byte("x"), c.dropped, c.events...)
		var b wire.Batch
		if err := json.Unmarshal(body[1:], &b); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if b.Dropped != c.want || len(b.Events) != len(c.events) {
			t.Fatalf("%s: dropped %d of %d events", body, b.Dropped, len(b.Events))
		}
		for i := range c.events {
			if string(b.Events[i]) != string(c.events[i]) {
				t.Fatalf("event %d: %s, want %s", i, b.Events[i], c.events[i])
			}
		}
	}
}

func TestParseResponse(t *testing.T) {
	r, err := wire.ParseResponse([]byte(`{"accepted":2,"duplicates":1,"rejected":[{"index":0,"reason":"invalid_field:user_id"}]}`))
	if err != nil || r.Accepted != 2 || r.Duplicates != 1 || len(r.Rejected) != 1 || r.Rejected[0] != (wire.Rejection{Index: 0, Reason: wire.InvalidField("user_id")}) {
		t.Fatalf("%+v, %v", r, err)
	}
	for _, bad := range []string{``, `{}`, `{"accepted":1}`, `{"duplicates":0}`, `{"error":"x"}`, `[1]`, `{"accepted":"1","duplicates":0}`} {
		if r, err := wire.ParseResponse([]byte(bad)); err == nil {
			t.Errorf("ParseResponse(%s) = %+v, want an error", bad, r)
		}
	}
}

func TestEventIDTime(t *testing.T) {
	got, ok := wire.EventIDTime("019abc8b-ab73-7c2e-9a51-3f0e5d6c7b8a")
	if want := time.UnixMilli(0x019abc8bab73).UTC(); !ok || !got.Equal(want) {
		t.Fatalf("%v %v, want %v", got, ok, want)
	}
	for _, bad := range []string{
		"019abc8b-ab73-4c2e-9a51-3f0e5d6c7b8a", // version 4
		"019abc8b-ab73-7c2e-1a51-3f0e5d6c7b8a", // not the RFC variant
		"019ABC8B-AB73-7C2E-9A51-3F0E5D6C7B8A", // not canonical
		"019abc8bab737c2e9a513f0e5d6c7b8a",
		"",
	} {
		if _, ok := wire.EventIDTime(bad); ok {
			t.Errorf("EventIDTime(%q) accepted", bad)
		}
	}
}
