package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// env returns a getenv that sees only vars.
func env(vars ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	return func(k string) string { return m[k] }
}

// runCmd runs the program to completion and returns its stdout.
func runCmd(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("tk-server %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// serving is a tk-server serve running in the test process.
type serving struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs "serve --addr 127.0.0.1:0" and waits for its address.
func startServe(t *testing.T, getenv func(string) string, args ...string) *serving {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile}, args...)
	go func() { s.done <- run(ctx, args, getenv, io.Discard, s.stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil {
			s.addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited: %v\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels serve (as SIGTERM does) and waits for it to return.
func (s *serving) stop(t *testing.T) error {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
		return nil
	}
}

func newEvents(n int) []map[string]any {
	evs := make([]map[string]any, n)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	// Commands as the SDK records them: most runs set no flag or one, some
	// set two, one of which has its value collected.
	flagSets := [][]string{{}, {"watch"}, {}, {"output", "verbose"}, {"force"}}
	for i := range evs {
		flags := flagSets[i%len(flagSets)]
		md := map[string]any{"command": "deploy", "flags": flags, "args_count": i % 3, "success": true,
			"error_kind": "", "duration_ms": i % 100, "exit_code": 0}
		if i%5 == 0 {
			md["success"], md["error_kind"], md["exit_code"] = false, "exit_error", 1
		}
		if slices.Contains(flags, "output") {
			md["flag_values"] = map[string]string{"output": []string{"json", "yaml", "table"}[i%3]}
		}
		evs[i] = map[string]any{
			"event_id": uuid.Must(uuid.NewV7()).String(), "schema_version": 1,
			"service_name": "demo-cli", "service_version": "0.3.0", "event_type": "command_executed",
			"timestamp": now, "user_id": fmt.Sprintf("anon_%064x", i%17),
			"session_id": uuid.Must(uuid.NewV7()).String(),
			"sdk":        map[string]any{"name": "telemetry-kit-go", "version": "0.1.0"},
			"env":        map[string]any{"os": "linux", "arch": "amd64", "ci": false, "go_version": "go1.26.8"},
			"metadata":   md,
		}
	}
	return evs
}

func postBody(url, key string, body io.Reader) (*http.Response, map[string]any, error) {
	req, _ := http.NewRequest("POST", url+"/v1/events", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp, m, nil
}

func post(url, key string, evs []map[string]any) (*http.Response, map[string]any, error) {
	b, _ := json.Marshal(map[string]any{"events": evs})
	return postBody(url, key, bytes.NewReader(b))
}

func countEvents(t *testing.T, dbURL string) int64 {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The commands as an operator runs them: migrate, create a project, serve,
// send events, manage keys, stop.
func TestCommands(t *testing.T) {
	dbURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn")
	runCmd(t, ge, "migrate")
	var p struct {
		ProjectID int64  `json:"project_id"`
		WriteKey  string `json:"write_key"`
		ReadKey   string `json:"read_key"`
	}
	if err := json.Unmarshal([]byte(runCmd(t, ge, "project", "create", "demo", "--json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.ProjectID == 0 || !strings.HasPrefix(p.WriteKey, "tk_w_") || !strings.HasPrefix(p.ReadKey, "tk_r_") {
		t.Fatalf("project create: %+v", p)
	}
	if out := runCmd(t, ge, "project", "list"); !strings.Contains(out, "demo") {
		t.Fatalf("project list: %s", out)
	}
	text := runCmd(t, ge, "project", "create", "second")
	if !regexp.MustCompile(`(?m)^project_id: +\d+\nname: +second\nwrite_key: +tk_w_\S{43}\nread_key: +tk_r_\S{43}\n$`).MatchString(text) {
		t.Fatalf("project create, as text:\n%s", text)
	}
	var list []struct {
		ProjectID int64  `json:"project_id"`
		Name      string `json:"name"`
	}
	if err := json.Unmarshal([]byte(runCmd(t, ge, "project", "list", "--json")), &list); err != nil ||
		len(list) != 2 || list[0].Name != "demo" || list[0].ProjectID != p.ProjectID || list[1].Name != "second" {
		t.Fatalf("project list --json: %+v %v", list, err)
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"project", "create", "demo"}, ge, io.Discard, &stderr); err == nil {
		t.Fatal("a second project named demo was created")
	}

	s := startServe(t, ge, "--rate-limit", "-1")
	base := "http://" + s.addr
	resp, body, err := post(base, p.WriteKey, newEvents(10))
	if err != nil || resp.StatusCode != 200 || body["accepted"] != 10.0 {
		t.Fatalf("ingest: %v %v %v", resp, body, err)
	}

	var k struct {
		KeyID int64  `json:"key_id"`
		Key   string `json:"key"`
	}
	if err := json.Unmarshal([]byte(runCmd(t, ge, "key", "create", "--project", "demo", "--json")), &k); err != nil {
		t.Fatal(err)
	}
	if resp, _, _ := post(base, k.Key, newEvents(1)); resp.StatusCode != 200 {
		t.Fatalf("new key: %d", resp.StatusCode)
	}
	var rk struct {
		Kind string `json:"kind"`
		Key  string `json:"key"`
	}
	if err := json.Unmarshal([]byte(runCmd(t, ge, "key", "create", "--project", "demo", "--kind", "read", "--json")), &rk); err != nil ||
		rk.Kind != "read" || !strings.HasPrefix(rk.Key, "tk_r_") {
		t.Fatalf("key create --kind read: %+v %v", rk, err)
	}
	if resp, _, _ := post(base, rk.Key, newEvents(1)); resp.StatusCode != 403 {
		t.Fatalf("read key: %d, want 403", resp.StatusCode)
	}
	// A header, then the two keys of project create and the two made here.
	if out := runCmd(t, ge, "key", "list", "--project", fmt.Sprint(p.ProjectID)); strings.Count(out, "\n") != 5 {
		t.Fatalf("key list:\n%s", out)
	}
	runCmd(t, ge, "key", "revoke", fmt.Sprint(k.KeyID))
	if resp, _, _ := post(base, k.Key, newEvents(1)); resp.StatusCode != 403 {
		t.Fatalf("revoked key: %d, want 403", resp.StatusCode)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if n := countEvents(t, dbURL); n != 11 {
		t.Fatalf("%d events stored, want 11", n)
	}
}

// serve logs the address it listens on, for scripts and other processes.
func TestServeLogsListenAddress(t *testing.T) {
	dbURL := pgtest.New(t)
	s := startServe(t, env("TK_DATABASE_URL", dbURL))
	want := `"msg":"listening","addr":"` + s.addr + `"`
	if !strings.Contains(s.stderr.String(), want) {
		t.Fatalf("stderr lacks %s:\n%s", want, s.stderr.String())
	}
	resp, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	// Each request is logged as a JSON line, once it has been answered.
	line := regexp.MustCompile(`\{"time":"[^"]+","level":"INFO","msg":"request","method":"GET","path":"/readyz","status":200,`)
	for deadline := time.Now().Add(5 * time.Second); !line.MatchString(s.stderr.String()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no request line for GET /readyz:\n%s", s.stderr.String())
		}
	}
}

// With --metrics-addr, /metrics is served there and only there: not to
// whoever can reach the ingest address.
func TestMetricsOnOwnAddress(t *testing.T) {
	dbURL := pgtest.New(t)
	s := startServe(t, env("TK_DATABASE_URL", dbURL, "TK_METRICS_ADDR", "127.0.0.1:0"))
	m := regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", s.stderr.String())
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + m[1] + "/metrics"); code != 200 || !strings.Contains(body, "tk_events_accepted_total") {
		t.Fatalf("metrics address /metrics: %d\n%.300s", code, body)
	}
	if code, _ := get("http://" + s.addr + "/metrics"); code != 404 {
		t.Fatalf("ingest address /metrics: %d, want 404", code)
	}
	if code, _ := get("http://" + m[1] + "/readyz"); code != 404 {
		t.Fatalf("metrics address /readyz: %d, want 404", code)
	}
	if code, _ := get("http://" + s.addr + "/readyz"); code != 200 {
		t.Fatalf("ingest address /readyz: %d", code)
	}
}

func TestHelpDocumentsFlagsAndEnv(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--help"}, env(), io.Discard, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-database-url", "TK_DATABASE_URL", "-addr", "TK_ADDR", "-retention-days", "-no-migrate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	if err := run(context.Background(), []string{"nonsense"}, env(), io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := run(context.Background(), []string{"serve"}, env(), io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "TK_DATABASE_URL") {
		t.Fatalf("serve without database: %v", err)
	}
}

// inFlight posts n new events to the server at addr with key, sends half
// of the body and waits until the server is reading it. finish sends the
// rest and returns the response.
func inFlight(addr, key string, n int) (finish func() (int, map[string]any, error)) {
	b, _ := json.Marshal(map[string]any{"events": newEvents(n)})
	pr, pw := io.Pipe()
	type result struct {
		code int
		body map[string]any
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, body, err := postBody("http://"+addr, key, pr)
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		res <- result{code, body, err}
	}()
	pw.Write(b[:len(b)/2])             // returns once the client is sending the body
	time.Sleep(500 * time.Millisecond) // the server is reading the request
	return func() (int, map[string]any, error) {
		pw.Write(b[len(b)/2:])
		pw.Close()
		r := <-res
		return r.code, r.body, r.err
	}
}

// SIGTERM (here: the canceled context) lets a request in flight finish and
// commit before the server stops.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	dbURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn")
	var p struct {
		WriteKey string `json:"write_key"`
	}
	json.Unmarshal([]byte(runCmd(t, ge, "project", "create", "demo", "--json")), &p)
	s := startServe(t, ge)

	finish := inFlight(s.addr, p.WriteKey, 20)
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop(t) }()
	time.Sleep(300 * time.Millisecond) // shutdown has begun
	select {
	case err := <-stopped:
		t.Fatalf("serve stopped with a request in flight: %v", err)
	default:
	}
	if code, body, err := finish(); err != nil || code != 200 || body["accepted"] != 20.0 {
		t.Fatalf("in-flight request: %d %v %v", code, body, err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if n := countEvents(t, dbURL); n != 20 {
		t.Fatalf("%d events stored, want 20", n)
	}
}

// buildServer builds the tk-server binary into a temporary directory of tb
// and returns its path.
func buildServer(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "tk-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a tk-server binary running as its own process.
type process struct {
	cmd    *exec.Cmd
	addr   string
	exited chan error // its exit, once
	stderr *syncBuffer
}

// startProcess builds tk-server and runs "serve" on dbURL with args and
// the environment variables env (NAME=value), and waits for its address.
// It is killed when the test ends.
func startProcess(t *testing.T, dbURL string, env []string, args ...string) *process {
	t.Helper()
	return startLimited(t, 0, dbURL, env, args...)
}

// startLimited is startProcess with the process's limit on open files
// (soft and hard) set to nofile, unless 0. The limit is set by a shell
// that then execs tk-server, so the process the test signals is
// tk-server itself.
func startLimited(t *testing.T, nofile int, dbURL string, env []string, args ...string) *process {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := &process{exited: make(chan error, 1), stderr: &syncBuffer{}}
	argv := append([]string{buildServer(t), "serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile}, args...)
	if nofile > 0 {
		if runtime.GOOS == "windows" {
			t.Skip("needs a POSIX shell's ulimit")
		}
		argv = append([]string{"/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$@"`, nofile), "sh"}, argv...)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(append(os.Environ(), "TK_DATABASE_URL="+dbURL), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	p.addr = waitFile(t, addrFile)
	return p
}

// A real SIGTERM to the tk-server process lets the request it is reading
// finish and be stored, then the process exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	dbURL := pgtest.New(t)
	var p struct {
		WriteKey string `json:"write_key"`
	}
	json.Unmarshal([]byte(runCmd(t, env("TK_DATABASE_URL", dbURL), "project", "create", "demo", "--json")), &p)
	srv := startProcess(t, dbURL, []string{"TK_LOG_LEVEL=warn"})
	cmd, exited, stderr, addr := srv.cmd, srv.exited, srv.stderr, srv.addr

	finish := inFlight(addr, p.WriteKey, 20)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // shutdown has begun
	select {
	case err := <-exited:
		t.Fatalf("tk-server exited with a request in flight: %v\n%s", err, stderr.String())
	default:
	}
	if code, body, err := finish(); err != nil || code != 200 || body["accepted"] != 20.0 {
		t.Fatalf("in-flight request: %d %v %v", code, body, err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("tk-server exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tk-server did not exit after SIGTERM")
	}
	if n := countEvents(t, dbURL); n != 20 {
		t.Fatalf("%d events stored, want 20", n)
	}
}

// serve applies pending migrations on start, unless --no-migrate.
func TestServeMigrates(t *testing.T) {
	hasEvents := func(dbURL string) bool {
		conn, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var ok bool
		conn.QueryRow(context.Background(), `SELECT to_regclass('events') IS NOT NULL`).Scan(&ok)
		return ok
	}
	fresh := pgtest.New(t)
	ge := env("TK_DATABASE_URL", fresh, "TK_LOG_LEVEL", "warn")
	// On a database without the schema, --no-migrate refuses to serve and
	// says what to do.
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--no-migrate"}, ge, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "tk-server migrate") {
		t.Fatalf("serve --no-migrate on an empty database: %v", err)
	}
	if hasEvents(fresh) {
		t.Fatal("serve --no-migrate created the schema")
	}
	s := startServe(t, ge)
	if !hasEvents(fresh) {
		t.Fatal("serve did not apply the migrations")
	}
	s.stop(t)
	// Once migrated, --no-migrate serves.
	startServe(t, ge, "--no-migrate")
}

// A flag wins over its environment variable.
func TestFlagOverEnvironment(t *testing.T) {
	dbURL := pgtest.New(t)
	bad := "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	runCmd(t, env("TK_DATABASE_URL", bad), "migrate", "--database-url", dbURL)
	runCmd(t, env("TK_DATABASE_URL", dbURL), "project", "create", "flags")
	if out := runCmd(t, env("TK_DATABASE_URL", bad), "project", "list", "--database-url", dbURL); !strings.Contains(out, "flags") {
		t.Fatalf("project list with --database-url: %s", out)
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"project", "list", "--database-url", bad}, env("TK_DATABASE_URL", dbURL),
		io.Discard, &stderr); err == nil {
		t.Fatal("--database-url lost to TK_DATABASE_URL")
	}
}

// When --shutdown-timeout runs out with a request still in flight, the
// request is cut off (not acknowledged, so its client sends it again),
// and tk-server says so and exits 1, as docs/server.md states.
func TestShutdownTimeoutExitsOne(t *testing.T) {
	dbURL := pgtest.New(t)
	var p struct {
		WriteKey string `json:"write_key"`
	}
	json.Unmarshal([]byte(runCmd(t, env("TK_DATABASE_URL", dbURL), "project", "create", "demo", "--json")), &p)
	srv := startProcess(t, dbURL, []string{"TK_LOG_LEVEL=warn"}, "--shutdown-timeout", "1s")
	cmd, exited, stderr, addr := srv.cmd, srv.exited, srv.stderr, srv.addr

	finish := inFlight(addr, p.WriteKey, 20)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("tk-server did not exit after its shutdown timeout")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || time.Since(start) < time.Second {
		t.Fatalf("exit after %v: %v, want status 1 after the 1 s timeout\n%s", time.Since(start), err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "requests in flight were cut off") {
		t.Fatalf("no log line of the cut-off requests:\n%s", stderr.String())
	}
	if code, _, _ := finish(); code == 200 {
		t.Fatal("the request cut off was acknowledged")
	}
	if n := countEvents(t, dbURL); n != 0 {
		t.Fatalf("%d events stored from the request cut off", n)
	}
}
