package httpapi_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
)

// Behind a trusted proxy, each client named by X-Forwarded-For has its own
// budget of new keys looked up; from an untrusted peer the header is
// ignored, so that nobody can shed the limit by naming another address.
func TestTrustedProxies(t *testing.T) {
	unknown := func(i int) string { return "tk_w_" + strings.Repeat(string(rune('a'+i)), 43) }
	send := func(e *env, key, forwardedFor string) int {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/events", strings.NewReader(string(batch(event()))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		want    string // statuses: client A three times, then client B once
	}{
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "401 401 429 401"},
		{"untrusted", nil, "401 401 429 429"},
	} {
		e := newEnv(t, httpapi.Config{KeyLookupRate: 10, TrustedProxies: c.trusted})
		got := fmt.Sprint(send(e, unknown(0), "203.0.113.7"), send(e, unknown(1), "203.0.113.7"),
			send(e, unknown(2), "198.51.100.1, 203.0.113.7"), send(e, unknown(3), "203.0.113.8"))
		if got != c.want {
			t.Errorf("%s proxy: %s, want %s", c.name, got, c.want)
		}
	}
}
