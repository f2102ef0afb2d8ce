package httpapi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// limitedServer serves, within a limiter of max connections, /healthz at
// once and /block until release is closed.
func limitedServer(t *testing.T, max int) (addr string, l *ConnLimiter, release chan struct{}) {
	t.Helper()
	l, err := NewConnLimiter(ConnLimitConfig{Max: max, PressureIdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	release = make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /block", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go l.Serve(hs, ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String(), l, release
}

// get sends GET path on a new connection and returns the status and the
// connection, left open.
func get(t *testing.T, addr, path string) (int, http.Header, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, c
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return resp.StatusCode, resp.Header, c
}

// At the cap, a new client is served after the connection idle longest is
// closed; the count never passes the cap.
func TestConnLimiterClosesIdleToMakeRoom(t *testing.T) {
	addr, l, _ := limitedServer(t, 4)
	var conns []net.Conn
	for i := 0; i < 10; i++ {
		code, _, c := get(t, addr, "/healthz")
		conns = append(conns, c)
		if code != 200 {
			t.Fatalf("client %d: %d", i, code)
		}
		if n := l.Open(); n > 4 {
			t.Fatalf("%d connections open, cap 4", n)
		}
	}
	// The first clients' connections were closed.
	conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection idle longest is still open")
	}
	for _, c := range conns {
		c.Close()
	}
}

// With every connection busy, a new one gets 503 with Retry-After at once,
// the accept loop goes on, and the refusals hold a bounded number of
// goroutines; once the busy ones finish, new clients are served.
func TestConnLimiterRefusesWhenAllBusy(t *testing.T) {
	addr, l, release := limitedServer(t, 4)
	done := make(chan int, 4)
	for range 4 {
		go func() {
			code, _, c := get(t, addr, "/block")
			c.Close()
			done <- code
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); l.Open() < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want 4 busy", l.Open())
		}
	}
	time.Sleep(100 * time.Millisecond) // the four are past their first read
	before := runtime.NumGoroutine()
	start := time.Now()
	for i := 0; i < 40; i++ {
		code, h, c := get(t, addr, "/healthz")
		c.Close()
		if code != 503 || h.Get("Retry-After") != "1" {
			t.Fatalf("refused client %d: %d Retry-After %q", i, code, h.Get("Retry-After"))
		}
		if g := runtime.NumGoroutine(); g > before+RefusingConns+4 {
			t.Fatalf("%d goroutines, %d before the refusals", g, before)
		}
	}
	t.Logf("40 refusals in %v", time.Since(start))
	close(release)
	for range 4 {
		if code := <-done; code != 200 {
			t.Fatalf("busy client: %d", code)
		}
	}
	code, _, c := get(t, addr, "/healthz")
	c.Close()
	if code != 200 {
		t.Fatalf("after the busy ones finished: %d", code)
	}
}

// The cap derived from the limit on open files leaves the reserve, and a
// cap above what the limit allows is lowered.
func TestConnCap(t *testing.T) {
	for _, c := range []struct {
		asked, reserve int
		nofile         uint64
		known          bool
		want           int
		lowered        bool
	}{
		{0, 64, 1024, true, 1024 - 64 - RefusingConns, false},
		{100, 64, 1024, true, 100, false},
		{5000, 64, 1024, true, 1024 - 64 - RefusingConns, true},
		{0, 64, 70, true, MinConnections, true},
		{0, 64, 0, false, defaultMaxConns, false},
	} {
		if n, lowered := connCap(c.asked, c.reserve, c.nofile, c.known); n != c.want || lowered != c.lowered {
			t.Errorf("connCap(%d, %d, %d, %v) = %d, %v; want %d, %v", c.asked, c.reserve, c.nofile, c.known,
				n, lowered, c.want, c.lowered)
		}
	}
	if !strings.HasPrefix(string(refusalResponse), "HTTP/1.1 503 ") {
		t.Fatal("the refusal is not a 503")
	}
}
