package store

import (
	"reflect"
	"testing"
)

// FuzzDecodeSum: any bytes decode without a panic, as a summary file or as
// damaged; whatever decodes encodes back to the same summary.
func FuzzDecodeSum(f *testing.F) {
	f.Add(encodeSum(&sumFile{}))
	f.Add(encodeSum(&sumFile{size: 32768, mtime: 1764126000123456789, count: 12, dropped: 3,
		jgen: []byte("0123456789abcdef"), joff: 4096, oldest: encodeRecord(Record{ID: "a", Data: []byte(`{}`)}),
		kv: map[string][]byte{"send_state": []byte(`{"next_attempt":"2026-11-26T03:00:00Z"}`), "empty": nil}}))
	f.Add([]byte("TKS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := decodeSum(b)
		if !ok {
			return
		}
		again, ok := decodeSum(encodeSum(s))
		if !ok {
			t.Fatalf("a decoded summary does not decode after encoding: %+v", s)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip: %+v, then %+v", s, again)
		}
	})
}
