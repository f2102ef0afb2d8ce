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
	return startServeAddr(t, getenv, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
}

// startServeAddr runs "serve" with args, which say where to listen or
// leave it to the environment, and waits for its address.
func startServeAddr(t *testing.T, getenv func(string) string, args ...string) *serving {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	args = append([]string{"serve", "--addr-file", addrFile}, args...)
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

// askQuery asks the query API of the tk-server at base (http://host:port)
// a question (a JSON body) with the read key, and returns the status and
// the decoded answer's results.
func askQuery(t *testing.T, base, readKey, question string) (int, json.RawMessage) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v2/query", strings.NewReader(question))
	req.Header.Set("Authorization", "Bearer "+readKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct{ Results json.RawMessage }
	json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a.Results
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

// testProject is what `tk-server project create --json` prints.
type testProject struct {
	ProjectID int64  `json:"project_id"`
	WriteKey  string `json:"write_key"`
	ReadKey   string `json:"read_key"`
}

// createProject runs `tk-server project create name --json` in environment ge.
func createProject(t *testing.T, ge func(string) string, name string) testProject {
	t.Helper()
	var p testProject
	if err := json.Unmarshal([]byte(runCmd(t, ge, "project", "create", name, "--json")), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The commands as an operator runs them: migrate, create a project, serve,
// send events, manage keys, stop.
func TestCommands(t *testing.T) {
	dbURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn")
	runCmd(t, ge, "migrate")
	p := createProject(t, ge, "demo")
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
	// The container health check: the server answers; a closed port does not.
	runCmd(t, ge, "healthcheck", "--addr", s.addr)
	if _, stderr, err := runOut(ge, "healthcheck", "--addr", "127.0.0.1:1"); err == nil || !strings.Contains(stderr, "unhealthy") {
		t.Errorf("healthcheck of a closed port: %v %q", err, stderr)
	}
	resp, body, err := post(base, p.WriteKey, newEvents(10))
	if err != nil || resp.StatusCode != 200 || body["accepted"] != 10.0 {
		t.Fatalf("ingest: %v %v %v", resp, body, err)
	}
	// The hourly maintenance, at once: today's rollups are not compacted.
	if out := runCmd(t, ge, "maintain"); out != "rollups of 0 days compacted\nperiod rollups of 0 days built\nprojects with retention counted ahead: 2\n" {
		t.Errorf("maintain: %q", out)
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

	// An admin key; a user erased from the command line (user 0 sent the
	// first event of each of the two batches stored).
	var ak struct {
		Kind string `json:"kind"`
		Key  string `json:"key"`
	}
	if err := json.Unmarshal([]byte(runCmd(t, ge, "key", "create", "--project", "demo", "--kind", "admin", "--json")), &ak); err != nil ||
		ak.Kind != "admin" || !strings.HasPrefix(ak.Key, "tk_a_") {
		t.Fatalf("key create --kind admin: %+v %v", ak, err)
	}
	out := runCmd(t, ge, "user", "delete", "--project", "demo", fmt.Sprintf("anon_%064x", 0))
	if !strings.HasPrefix(out, "erased: 2 events, ") {
		t.Errorf("user delete: %q", out)
	}
	if n := countEvents(t, dbURL); n != 9 {
		t.Errorf("%d events after the erasure, want 9", n)
	}
	if _, stderr, err := runOut(ge, "user", "delete", "--project", "demo", "anon_x"); err == nil || !strings.Contains(stderr, "bad user id") {
		t.Errorf("user delete with a bad id: %v %q", err, stderr)
	}

	// A project's own storage window.
	if out := runCmd(t, ge, "project", "retention", "demo", "--days", "30"); !strings.Contains(out, "for 30 days") {
		t.Errorf("project retention: %q", out)
	}
	if out := runCmd(t, ge, "project", "list"); !regexp.MustCompile(`demo\s+\S+\s+30 days`).MatchString(out) {
		t.Errorf("project list after setting the retention:\n%s", out)
	}

	// Deleting a project needs --yes; then its events and keys are gone.
	if _, stderr, err := runOut(ge, "project", "delete", "demo"); err == nil || !strings.Contains(stderr, "add --yes") {
		t.Errorf("project delete without --yes: %v %q", err, stderr)
	}
	if n := countEvents(t, dbURL); n != 9 {
		t.Fatalf("project delete without --yes deleted events: %d left", n)
	}
	if out := runCmd(t, ge, "project", "delete", "demo", "--yes"); !strings.HasPrefix(out, fmt.Sprintf("project %d deleted: 9 events, 5 keys and ", p.ProjectID)) {
		t.Errorf("project delete: %q", out)
	}
	if out := runCmd(t, ge, "project", "list"); strings.Contains(out, "demo") || !strings.Contains(out, "second") {
		t.Errorf("project list after deleting demo:\n%s", out)
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

// runOut runs the program and returns its error, stdout and stderr.
func runOut(getenv func(string) string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(context.Background(), args, getenv, &o, &e)
	return o.String(), e.String(), err
}

// Help goes to stdout and shows every flag with two dashes and its
// environment variable.
func TestHelpDocumentsFlagsAndEnv(t *testing.T) {
	out, errOut, err := runOut(env(), "serve", "--help")
	if err != nil || errOut != "" {
		t.Fatalf("serve --help: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"--database-url string", "[TK_DATABASE_URL]",
		"--addr string", `[TK_ADDR] (default "127.0.0.1:8080")`,
		"--retention-days int", "[TK_RETENTION_DAYS] (default 395)",
		"--no-migrate", "[TK_NO_MIGRATE]",
		"--rate-limit float", "[TK_RATE_LIMIT] (default 200)",
		"--shutdown-timeout duration", "[TK_SHUTDOWN_TIMEOUT] (default 30s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^\s+-[a-z]{2,}`).MatchString(out) {
		t.Errorf("serve --help shows a flag with one dash:\n%s", out)
	}
	// The variable sets the default that help shows.
	if out, _, _ := runOut(env("TK_ADDR", ":9999"), "serve", "--help"); !strings.Contains(out, `[TK_ADDR] (default ":9999")`) {
		t.Errorf("serve --help with TK_ADDR=:9999:\n%s", out)
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "key"}, {"key", "create", "--help"}} {
		if out, errOut, err := runOut(env(), args...); err != nil || out == "" || errOut != "" {
			t.Errorf("tk-server %s: %v, %d bytes on stdout, stderr %q", strings.Join(args, " "), err, len(out), errOut)
		}
	}
	for _, args := range [][]string{{"help"}, {"key", "--help"}, {"project", "--help"}} {
		out, _, _ := runOut(env(), args...)
		for _, cmd := range map[string][]string{
			"help":    {"serve", "migrate", "maintain", "project", "key", "completion"},
			"key":     {"create", "list", "revoke"},
			"project": {"create", "list"},
		}[args[0]] {
			if !regexp.MustCompile(`(?m)^  ` + cmd + ` `).MatchString(out) {
				t.Errorf("tk-server %s lacks the command %s:\n%s", strings.Join(args, " "), cmd, out)
			}
		}
	}
	if _, _, err := runOut(env(), "serve"); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "TK_DATABASE_URL") {
		t.Fatalf("serve without database: %v", err)
	}
}

// A bad command line exits 2 with the error and a hint on stderr, and
// nothing on stdout.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Available Commands:"},
		{[]string{"nonsense"}, `unknown command "nonsense" for "tk-server"`},
		{[]string{"serve", "--bogus"}, "unknown flag: --bogus\nRun 'tk-server serve --help' for usage."},
		{[]string{"serve", "-addr", ":1"}, "--addr"},
		{[]string{"serve", "--rate-limit", "fast"}, `invalid argument "fast" for "--rate-limit"`},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"project"}, "Available Commands:"},
		{[]string{"project", "craete"}, "Did you mean this?\n\tcreate"},
		{[]string{"project", "create"}, "missing NAME\nRun 'tk-server project create --help' for usage."},
		{[]string{"project", "create", "a", "b"}, `unexpected argument "b"`},
		{[]string{"key"}, "Available Commands:"},
		{[]string{"key", "create", "--kind", "read"}, "missing --project"},
		{[]string{"key", "revoke"}, "missing KEY_ID"},
		{[]string{"completion", "tcsh"}, "tcsh"},
	} {
		out, errOut, err := runOut(env("TK_DATABASE_URL", "postgres://127.0.0.1:1/none"), tc.args...)
		if err == nil || exitCode(err) != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("tk-server %s: %v (exit %d), stdout %q, stderr:\n%s\nwant exit 2 and %q on stderr",
				strings.Join(tc.args, " "), err, exitCode(err), out, errOut, tc.want)
		}
	}
}

// A variable whose value does not parse fails the command (exit 1) and
// is named, as a flag would be.
func TestBadEnvironmentVariable(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"serve", "--rate-limit", "5"}} {
		out, errOut, err := runOut(env("TK_RATE_LIMIT", "abc"), args...)
		if err == nil || exitCode(err) != 1 || out != "" || !strings.Contains(errOut, "TK_RATE_LIMIT") ||
			!strings.Contains(errOut, `"abc"`) {
			t.Errorf("tk-server %s with TK_RATE_LIMIT=abc: %v (exit %d)\n%s", strings.Join(args, " "), err, exitCode(err), errOut)
		}
	}
	for _, kv := range [][2]string{{"TK_RETENTION_DAYS", "a year"}, {"TK_NO_MIGRATE", "perhaps"}, {"TK_IDLE_TIMEOUT", "30"}} {
		if _, _, err := runOut(env(kv[0], kv[1]), "serve"); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("serve with %s=%s: %v", kv[0], kv[1], err)
		}
	}
	// Help still works, with the default the variable could not change.
	if out, _, err := runOut(env("TK_RATE_LIMIT", "abc"), "serve", "--help"); err != nil ||
		!strings.Contains(out, "[TK_RATE_LIMIT] (default 200)") {
		t.Errorf("serve --help with TK_RATE_LIMIT=abc: %v\n%s", err, out)
	}
}

// TK_ADDR says where serve listens, unless --addr does.
func TestAddrFromEnvironment(t *testing.T) {
	dbURL := pgtest.New(t)
	s := startServeAddr(t, env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn", "TK_ADDR", "127.0.0.1:0"))
	if !strings.HasPrefix(s.addr, "127.0.0.1:") || strings.HasSuffix(s.addr, ":8080") {
		t.Fatalf("serve with TK_ADDR=127.0.0.1:0 listens on %s", s.addr)
	}
	s.stop(t)
	s = startServeAddr(t, env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn", "TK_ADDR", "not an address"),
		"--addr", "127.0.0.1:0")
	if !strings.HasPrefix(s.addr, "127.0.0.1:") {
		t.Fatalf("serve with --addr 127.0.0.1:0 listens on %s", s.addr)
	}
	resp, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
}

// completion prints a script for each shell; the script asks tk-server
// for the values of --kind.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "complete -o default -F __start_tk-server tk-server",
		"zsh":        "#compdef tk-server",
		"fish":       "complete -c tk-server",
		"powershell": "Register-ArgumentCompleter",
	} {
		out, errOut, err := runOut(env(), "completion", shell)
		if err != nil || !strings.Contains(out, want) || errOut != "" {
			t.Errorf("completion %s: %v, stdout lacks %q (%d bytes), stderr %q", shell, err, want, len(out), errOut)
		}
	}
	if out, _, err := runOut(env(), "__complete", "key", "create", "--kind", ""); err != nil ||
		!strings.HasPrefix(out, "write\nread\n") {
		t.Errorf("completion of --kind: %v %q", err, out)
	}
}

// The process exits 2 for a bad command line, 1 for a failure, 0 for help.
func TestExitStatus(t *testing.T) {
	bin := buildServer(t)
	for _, tc := range []struct {
		env    string
		args   []string
		status int
	}{
		{"", []string{"serve", "--bogus"}, 2},
		{"", []string{"key", "revoke"}, 2},
		{"TK_RATE_LIMIT=abc", []string{"serve"}, 1},
		{"TK_DATABASE_URL=", []string{"migrate"}, 1},
		{"", []string{"serve", "--help"}, 0},
		{"", []string{"completion", "bash"}, 0},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "TK_DATABASE_URL=", tc.env)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != tc.status || (status == 0) != (stdout.Len() > 0 && stderr.Len() == 0) ||
			(status != 0 && !strings.HasPrefix(stderr.String(), "tk-server: ")) {
			t.Errorf("%s tk-server %s: exit %d, want %d\nstdout: %.200q\nstderr: %s", tc.env, strings.Join(tc.args, " "),
				status, tc.status, stdout.String(), stderr.String())
		}
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
