package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// with returns a valid event changed by f.
func with(f func(ev map[string]any)) map[string]any {
	ev := event()
	f(ev)
	return ev
}

func meta(ev map[string]any) map[string]any { return ev["metadata"].(map[string]any) }

// rawEvent splices raw JSON text in place of the value of one field of a
// valid event, for inputs that encoding/json cannot produce.
func rawEvent(field, raw string) string {
	ev := event()
	ev[field] = "@@RAW@@"
	b, _ := json.Marshal(ev)
	return strings.Replace(string(b), `"@@RAW@@"`, raw, 1)
}

func rawBatch(events ...string) []byte {
	return []byte(`{"events":[` + strings.Join(events, ",") + `]}`)
}

func nested(depth int) any {
	var v any = "leaf"
	for i := 0; i < depth; i++ {
		v = map[string]any{"a": v}
	}
	return v
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestBadInput sends malformed and hostile requests. Each gets the documented
// status (and, for a bad event in a valid batch, a 200 naming it with its
// reason); the server stays healthy; nothing from a rejected event is stored.
func TestBadInput(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	revoked := newEnv(t, httpapi.Config{})
	if err := revoked.db.RevokeKey(context.Background(), revoked.writeID); err != nil {
		t.Fatal(err)
	}
	unknownKey, _, _ := server.NewKey(server.KeyWrite)
	tooMany := make([]string, 10000)
	for i := range tooMany {
		tooMany[i] = "{}"
	}
	// 9 MiB of zeros inside a valid JSON string, about 9 KiB gzipped.
	bomb := gzipped([]byte(`{"events":[{"event_id":"` + strings.Repeat("0", 9<<20) + `"}]}`))
	huge := []byte(`{"events":[{"service_name":"` + strings.Repeat("x", 10<<20) + `"}]}`)
	old := time.Now().AddDate(-2, 0, 0).UTC().Format("2006-01-02T15:04:05.000Z")
	soon := time.Now().Add(2 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")

	type tc struct {
		name    string
		body    []byte
		headers []string
		status  int
		reason  string // for 200: the reason of the single rejected event
	}
	cases := []tc{
		// Not a batch: 400.
		{name: "bad JSON", body: []byte(`{"events": [`), status: 400},
		{name: "empty body", body: nil, status: 400},
		{name: "array body", body: []byte(`[{"event_id":"x"}]`), status: 400},
		{name: "string body", body: []byte(`"events"`), status: 400},
		{name: "no events", body: []byte(`{"dropped": 1}`), status: 400},
		{name: "events null", body: []byte(`{"events": null}`), status: 400},
		{name: "events empty", body: []byte(`{"events": []}`), status: 400},
		{name: "events not array", body: []byte(`{"events": {"0": {}}}`), status: 400},
		{name: "trailing garbage", body: append(batch(event()), []byte(` {"x":1}`)...), status: 400},
		{name: "raw NUL byte", body: []byte("{\"events\":[{\"event_id\":\"a\x00b\"}]}"), status: 400},
		{name: "dropped negative", body: []byte(`{"events":[{}],"dropped":-1}`), status: 400},
		{name: "dropped string", body: []byte(`{"events":[{}],"dropped":"5"}`), status: 400},
		{name: "dropped fraction", body: []byte(`{"events":[{}],"dropped":1.5}`), status: 400},
		{name: "deep nesting body", body: []byte(`{"events":[` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `]}`), status: 400},
		{name: "corrupt gzip", body: []byte("not gzip at all"), headers: []string{"Content-Encoding", "gzip"}, status: 400},
		// Limits: 413.
		{name: "10 MB body", body: huge, status: 413},
		{name: "10,000 events", body: rawBatch(tooMany...), status: 413},
		{name: "1,001 events", body: rawBatch(tooMany[:wire.MaxEvents+1]...), status: 413},
		{name: "gzip bomb", body: bomb, headers: []string{"Content-Encoding", "gzip"}, status: 413},
		// Media: 415.
		{name: "text/plain", body: batch(event()), headers: []string{"Content-Type", "text/plain"}, status: 415},
		{name: "no content type", body: batch(event()), headers: []string{"Content-Type", ""}, status: 415},
		{name: "form content type", body: batch(event()), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415},
		{name: "brotli encoding", body: batch(event()), headers: []string{"Content-Encoding", "br"}, status: 415},
		// Keys: 401 and 403.
		{name: "missing key", body: batch(event()), headers: []string{"Authorization", ""}, status: 401},
		{name: "unknown key", body: batch(event()), headers: []string{"Authorization", "Bearer " + unknownKey}, status: 401},
		{name: "garbage key", body: batch(event()), headers: []string{"Authorization", "Bearer ' OR 1=1 --"}, status: 401},
		{name: "basic auth", body: batch(event()), headers: []string{"Authorization", "Basic dGtfdzp4"}, status: 401},
		{name: "revoked key", body: batch(event()), headers: []string{"Authorization", "Bearer " + revoked.writeKey}, status: 403},
		{name: "read key", body: batch(event()), headers: []string{"Authorization", "Bearer " + e.readKey}, status: 403},
		// Bad events in a valid batch: 200, rejected with a reason.
		{name: "event not an object", body: rawBatch(`42`), status: 200, reason: "invalid_event"},
		{name: "missing event_id", body: batch(with(func(ev map[string]any) { delete(ev, "event_id") })), status: 200, reason: "missing_field:event_id"},
		{name: "event_id not a UUID", body: batch(with(func(ev map[string]any) { ev["event_id"] = "'; DROP TABLE events; --" })), status: 200, reason: "invalid_field:event_id"},
		{name: "event_id UUIDv4", body: batch(with(func(ev map[string]any) { ev["event_id"] = "3b241101-e2bb-4255-8caf-4136c566a962" })), status: 200, reason: "invalid_field:event_id"},
		{name: "event_id upper case", body: batch(with(func(ev map[string]any) { ev["event_id"] = strings.ToUpper(ev["event_id"].(string)) })), status: 200, reason: "invalid_field:event_id"},
		{name: "event_id from the far future", body: batch(with(func(ev map[string]any) { ev["event_id"] = "7fffffff-ffff-7fff-bfff-ffffffffffff" })), status: 200, reason: "invalid_field:event_id"},
		{name: "event_id a number", body: batch(with(func(ev map[string]any) { ev["event_id"] = 12345 })), status: 200, reason: "invalid_field:event_id"},
		{name: "schema_version string", body: batch(with(func(ev map[string]any) { ev["schema_version"] = "1" })), status: 200, reason: "invalid_field:schema_version"},
		{name: "schema_version 2", body: batch(with(func(ev map[string]any) { ev["schema_version"] = 2 })), status: 200, reason: "invalid_field:schema_version"},
		{name: "huge service_name", body: batch(with(func(ev map[string]any) { ev["service_name"] = strings.Repeat("a", 500000) })), status: 200, reason: "too_long:service_name"},
		{name: "service_name with spaces", body: batch(with(func(ev map[string]any) { ev["service_name"] = "My CLI" })), status: 200, reason: "invalid_field:service_name"},
		{name: "service_version array", body: batch(with(func(ev map[string]any) { ev["service_version"] = []int{1, 2} })), status: 200, reason: "invalid_field:service_version"},
		{name: "event_type number", body: batch(with(func(ev map[string]any) { ev["event_type"] = 7 })), status: 200, reason: "invalid_field:event_type"},
		{name: "event_type SQL", body: batch(with(func(ev map[string]any) { ev["event_type"] = "x'); DELETE FROM events; --" })), status: 200, reason: "invalid_field:event_type"},
		{name: "far-future timestamp", body: batch(with(func(ev map[string]any) { ev["timestamp"] = "9999-12-31T23:59:59.999Z" })), status: 200, reason: "timestamp_in_future"},
		{name: "timestamp two hours ahead", body: batch(with(func(ev map[string]any) { ev["timestamp"] = soon })), status: 200, reason: "timestamp_in_future"},
		{name: "timestamp before retention", body: batch(with(func(ev map[string]any) { ev["timestamp"] = old })), status: 200, reason: "timestamp_too_old"},
		{name: "timestamp not RFC 3339", body: batch(with(func(ev map[string]any) { ev["timestamp"] = "yesterday" })), status: 200, reason: "invalid_field:timestamp"},
		{name: "timestamp epoch number", body: batch(with(func(ev map[string]any) { ev["timestamp"] = 1764107000 })), status: 200, reason: "invalid_field:timestamp"},
		{name: "raw machine id as user_id", body: batch(with(func(ev map[string]any) { ev["user_id"] = "4c4c4544-0042-3510-8052-b3c04f4d3732" })), status: 200, reason: "invalid_field:user_id"},
		{name: "missing session_id", body: batch(with(func(ev map[string]any) { ev["session_id"] = nil })), status: 200, reason: "missing_field:session_id"},
		{name: "sdk a string", body: batch(with(func(ev map[string]any) { ev["sdk"] = "go" })), status: 200, reason: "invalid_field:sdk"},
		{name: "env.ci a string", body: batch(with(func(ev map[string]any) { ev["env"].(map[string]any)["ci"] = "yes" })), status: 200, reason: "invalid_field:env.ci"},
		{name: "metadata an array", body: batch(with(func(ev map[string]any) { ev["metadata"] = []int{1} })), status: 200, reason: "invalid_field:metadata"},
		{name: "metadata too deep", body: batch(with(func(ev map[string]any) { meta(ev)["deep"] = nested(4) })), status: 200, reason: "metadata_too_deep"},
		{name: "metadata 1200 levels deep", body: rawBatch(rawEvent("metadata", strings.Repeat(`{"a":`, 1200)+"1"+strings.Repeat("}", 1200))), status: 200, reason: "metadata_too_deep"},
		{name: "metadata too large", body: batch(with(func(ev map[string]any) {
			for i := 0; i < 20; i++ {
				meta(ev)[fmt.Sprint("k", i)] = strings.Repeat("v", 500)
			}
		})), status: 200, reason: "metadata_too_large"},
		{name: "metadata long string", body: batch(with(func(ev map[string]any) { meta(ev)["note"] = strings.Repeat("é", 1025) })), status: 200, reason: "too_long:metadata"},
		{name: "metadata huge number", body: rawBatch(rawEvent("metadata", `{"n": 1e999999}`)), status: 200, reason: "invalid_field:metadata"},
		{name: "duration_ms past the bound", body: rawBatch(rawEvent("metadata", `{"command":"x","duration_ms":9223372036854775807}`)), status: 200, reason: "invalid_field:metadata.duration_ms"},
		{name: "duration_ms past int64", body: rawBatch(rawEvent("metadata", `{"command":"x","duration_ms":92233720368547758070}`)), status: 200, reason: "invalid_field:metadata.duration_ms"},
		{name: "duration_ms negative", body: rawBatch(rawEvent("metadata", `{"command":"x","duration_ms":-1}`)), status: 200, reason: "invalid_field:metadata.duration_ms"},
		{name: "exit_code past int32", body: rawBatch(rawEvent("metadata", `{"command":"x","exit_code":2147483648}`)), status: 200, reason: "invalid_field:metadata.exit_code"},
		{name: "long command", body: batch(with(func(ev map[string]any) { meta(ev)["command"] = strings.Repeat("c", 300) })), status: 200, reason: "too_long:metadata.command"},
		{name: "NUL in service_version", body: batch(with(func(ev map[string]any) { ev["service_version"] = "1.0\x00evil" })), status: 200, reason: "nul_byte"},
		{name: "NUL in metadata key", body: batch(with(func(ev map[string]any) { meta(ev)["a\x00"] = 1 })), status: 200, reason: "nul_byte"},
		{name: "invalid UTF-8", body: rawBatch(rawEvent("service_version", "\"1.0\xff\xfe\"")), status: 200, reason: "invalid_utf8"},
		{name: "lone surrogate", body: rawBatch(rawEvent("metadata", `{"s": "\ud800x"}`)), status: 200, reason: "invalid_utf8"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(c.body, c.headers...)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %.300s", r.Status, c.status, r.Body)
			}
			if c.status != 200 {
				if r.Error == "" {
					t.Fatalf("no error message: %.300s", r.Body)
				}
				return
			}
			if r.Accepted != 0 || len(r.Rejected) != 1 || r.Rejected[0].Index != 0 || r.Rejected[0].Reason != c.reason {
				t.Fatalf("got accepted=%d rejected=%+v, want reason %q", r.Accepted, r.Rejected, c.reason)
			}
		})
	}
	if code, _ := e.get("/healthz"); code != 200 {
		t.Fatalf("healthz after bad input: %d", code)
	}
	if code, _ := e.get("/readyz"); code != 200 {
		t.Fatalf("readyz after bad input: %d", code)
	}
	for _, p := range []*env{e, revoked} {
		if n := p.storedEvents(); n != 0 {
			t.Fatalf("project %d: %d events stored from bad input", p.projectID, n)
		}
		if n := p.rolledUpEvents(); n != 0 {
			t.Fatalf("project %d: %d events in rollups from bad input", p.projectID, n)
		}
	}
	// The server still ingests.
	if r := e.post(batch(event())); r.Status != 200 || r.Accepted != 1 {
		t.Fatalf("valid batch after bad input: %d %s", r.Status, r.Body)
	}
}

// At the limits: a batch of wire.MaxEvents events is stored whole, and a body
// over wire.MaxBodyBytes sent without a Content-Length (chunked) is refused
// with 413 as one that declares its length is.
func TestLimits(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	evs := make([]map[string]any, wire.MaxEvents)
	for i := range evs {
		evs[i] = event()
	}
	if r := e.post(batch(evs...)); r.Status != 200 || r.Accepted != wire.MaxEvents {
		t.Fatalf("%d events: %d accepted=%d %.300s", wire.MaxEvents, r.Status, r.Accepted, r.Body)
	}
	big := []byte(`{"events":[{"service_name":"` + strings.Repeat("x", wire.MaxBodyBytes) + `"}]}`)
	req, err := http.NewRequest("POST", e.srv.URL+"/v1/events", io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.writeKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked body of %d bytes: status %d, want 413", len(big), resp.StatusCode)
	}
	if n := e.storedEvents(); n != wire.MaxEvents {
		t.Fatalf("%d events stored, want %d", n, wire.MaxEvents)
	}
}

// Strings that look like SQL or markup are data: stored verbatim.
func TestHostileStringsStoredVerbatim(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	sqlish := `1.0'); DROP TABLE events; --`
	ev := with(func(ev map[string]any) {
		ev["service_version"] = sqlish
		meta(ev)["command"] = `"; DELETE FROM api_keys; <script>`
		meta(ev)["emoji"] = "🚀 \u2028 \\u0000"
	})
	r := e.post(batch(ev))
	if r.Status != 200 || r.Accepted != 1 {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	var version, name, emoji string
	err := e.db.Pool().QueryRow(context.Background(),
		`SELECT service_version, name, metadata->>'emoji' FROM events WHERE project_id = $1`, e.projectID).
		Scan(&version, &name, &emoji)
	if err != nil {
		t.Fatal(err)
	}
	if version != sqlish || name != `"; DELETE FROM api_keys; <script>` || emoji != "🚀 \u2028 \\u0000" {
		t.Fatalf("stored %q %q %q", version, name, emoji)
	}
}

func TestWrongMethod(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	resp, err := http.Get(e.srv.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET /v1/events: %d, want 405", resp.StatusCode)
	}
}
