package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		peer, header, want string // want "" when the peer stays the client
	}{
		{"10.0.0.2:4000", "203.0.113.7", "203.0.113.7"},
		{"10.0.0.2:4000", "198.51.100.1, 203.0.113.7", "203.0.113.7"},           // the right-most untrusted hop
		{"10.0.0.2:4000", "198.51.100.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"}, // through two proxies
		{"10.0.0.2:4000", "10.0.0.3", ""},                                       // only proxies
		{"10.0.0.2:4000", "", ""},                                               // no header
		{"10.0.0.2:4000", "203.0.113.7, garbage", ""},                           // a malformed hop
		{"192.0.2.1:4000", "203.0.113.7", ""},                                   // an untrusted peer's header
		{"[::1]:4000", "2001:db8::1", "2001:db8::1"},                            // IPv6
		{"10.0.0.2:4000", "::ffff:203.0.113.7", "203.0.113.7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.header != "" {
			r.Header.Set("X-Forwarded-For", c.header)
		}
		got, ok := forwardedFor(r, trusted)
		if (c.want == "") != !ok || (ok && got.String() != c.want) {
			t.Errorf("peer %s, X-Forwarded-For %q: %v %v, want %q", c.peer, c.header, got, ok, c.want)
		}
	}
}
