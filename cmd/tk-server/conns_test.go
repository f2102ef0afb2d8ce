package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// idleHealthz opens a connection to addr, asks GET /healthz on it and
// leaves it open, idle, for the server to keep alive. Every step is
// bounded by timeout.
func idleHealthz(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: tk\r\n\r\n"); err != nil {
		return c, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return c, fmt.Errorf("status %d", resp.StatusCode)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// Idle keep-alive connections cannot lock new clients out: with the limit
// on open files at 256, 400 clients each ask /healthz and stay connected,
// and then a new client still gets /healthz and an ingest request stored
// within 5 s each, and the server never runs out of file descriptors.
func TestIdleConnectionsCannotLockOutNewClients(t *testing.T) {
	dbURL := pgtest.New(t)
	p := createProject(t, env("TK_DATABASE_URL", dbURL), "demo")
	const nofile, idle = 256, 400
	srv := startLimited(t, nofile, dbURL, []string{"TK_RATE_LIMIT=-1"}, "--metrics-addr", "127.0.0.1:0")
	addr, stderr := srv.addr, srv.stderr

	// Clients that get no answer within 2 s count as failed; after 5
	// failures the server is taken to be locked up.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	served, failed := 0, 0
	start := time.Now()
	for i := 0; i < idle && failed < 5 && time.Since(start) < 60*time.Second; i++ {
		c, err := idleHealthz(addr, 2*time.Second)
		if c != nil {
			conns = append(conns, c)
		}
		if err != nil {
			failed++
			continue
		}
		served++
	}
	t.Logf("%d of %d idle clients served in %v, %d failed", served, idle, time.Since(start).Round(time.Millisecond), failed)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	start = time.Now()
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("new client after %d idle ones: %v (after %v)\n%.2000s", served, err, time.Since(start), stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("new client: /healthz %d", resp.StatusCode)
	}
	t.Logf("new client served in %v", time.Since(start).Round(time.Microsecond))

	b, _ := json.Marshal(map[string]any{"events": newEvents(1)})
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.WriteKey)
	start = time.Now()
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("ingest after %d idle clients: %v (after %v)", served, err, time.Since(start))
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"accepted":1`) {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	t.Logf("ingest request stored in %v", time.Since(start).Round(time.Microsecond))
	if n := countEvents(t, dbURL); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
	if served != idle {
		t.Errorf("%d of %d idle clients were served", served, idle)
	}

	// The gauges show the cap derived from the limit, never exceeded.
	m := regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", stderr.String())
	}
	resp, err = client.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	open := metricValue(t, metrics, `tk_connections_open{listener="api"}`)
	maxConns := metricValue(t, metrics, `tk_connections_max{listener="api"}`)
	evicted := metricValue(t, metrics, `tk_connections_closed_total{listener="api",reason="make_room"}`)
	t.Logf("cap %v, open %v, idle connections closed to make room %v", maxConns, open, evicted)
	if maxConns <= 0 || maxConns >= nofile || open > maxConns || evicted < idle-maxConns {
		t.Errorf("cap %v, open %v, evicted %v", maxConns, open, evicted)
	}
	if strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("tk-server ran out of file descriptors:\n%.2000s", stderr.String())
	}
}

// metricValue returns the value of the sample named series (with its
// labels as Prometheus writes them) in a text exposition.
func metricValue(t *testing.T, text []byte, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	t.Errorf("no %s in the metrics", series)
	return -1
}

// A request whose headers exceed the limit gets net/http's own 431, and
// the server logs that refusal once, with the status and the client's
// address but nothing of the request.
func TestRefusalByNetHTTPIsLogged(t *testing.T) {
	dbURL := pgtest.New(t)
	s := startServe(t, env("TK_DATABASE_URL", dbURL))
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	big := strings.Repeat("h", 100<<10)
	go io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: tk\r\nX-Big: "+big+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	line := regexp.MustCompile(`\{"time":"[^"]+","level":"WARN","msg":"request refused",[^\n]*"status":431,"remote":"` +
		regexp.QuoteMeta(c.LocalAddr().String()) + `"`)
	for deadline := time.Now().Add(5 * time.Second); !line.MatchString(s.stderr.String()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no WARN line for the 431:\n%.3000s", s.stderr.String())
		}
	}
	if n := strings.Count(s.stderr.String(), `"msg":"request refused"`); n != 1 {
		t.Errorf("%d request refused lines, want 1", n)
	}
	if strings.Contains(s.stderr.String(), "hhhhhhhh") {
		t.Error("the request's header was logged")
	}
}
