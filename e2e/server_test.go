package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// bins holds the binaries built once for the package.
var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tk-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/telemetry-kit/telemetry-kit/cmd/tk-server",
		"github.com/telemetry-kit/telemetry-kit/examples/cobra-cli",
		"github.com/telemetry-kit/telemetry-kit/examples/urfave-cli")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building binaries: %v\n%s", err, out)
		os.Exit(1)
	}
	bins = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a tk-server process on a fresh database with one project.
type server struct {
	endpoint, writeKey, dbURL string
	env                       []string
	// stop stops the process (SIGTERM, then waits for it to exit).
	stop func()
}

func startServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	dbURL, drop, err := pgtest.CreateDatabase(ctx, pgtest.ServerURL(), "e2e")
	if err != nil {
		t.Fatalf("PostgreSQL is needed (make test provides one): %v", err)
	}
	t.Cleanup(func() { drop() })
	env := append(os.Environ(), "TK_DATABASE_URL="+dbURL)
	tk := filepath.Join(bins, "tk-server")

	out, err := command(env, tk, "project", "create", "e2e", "--json").Output()
	if err != nil {
		t.Fatalf("project create: %v", err)
	}
	var keys struct {
		WriteKey string `json:"write_key"`
	}
	if err := json.Unmarshal(out, &keys); err != nil || keys.WriteKey == "" {
		t.Fatalf("project create --json printed %q: %v", out, err)
	}
	s := &server{writeKey: keys.WriteKey, dbURL: dbURL, env: env}
	s.serve(t, "127.0.0.1:0")
	return s
}

// serve starts tk-server serve on addr (port 0: any) and sets s.endpoint
// and s.stop; the process is stopped when the test ends, if not before.
func (s *server) serve(t *testing.T, addr string) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	srv := command(s.env, filepath.Join(bins, "tk-server"), "serve", "--addr", addr, "--addr-file", addrFile)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "server.log"))
	srv.Stderr = logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			srv.Process.Signal(syscall.SIGTERM)
			srv.Wait()
		})
	}
	t.Cleanup(s.stop)
	var got []byte
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("tk-server did not start listening")
		}
		got, _ = os.ReadFile(addrFile)
	}
	s.endpoint = "http://" + strings.TrimSpace(string(got))
}

func command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	return cmd
}

// user is one person running cobra-cli on their own machine.
type user struct {
	env  []string
	bin  string
	home string
}

func newUser(t *testing.T, srv *server) user {
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CI" || k == "DO_NOT_TRACK" || strings.HasPrefix(k, "XDG_") || k == "HOME" || strings.HasPrefix(k, "COBRA_CLI_") {
			continue
		}
		env = append(env, kv)
	}
	// A user who turned telemetry on with the tool's variable: the runs
	// here have no terminal to show the opt-out notice on, and without a
	// notice seen or an explicit yes nothing would leave the machine.
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "TK_ENDPOINT="+srv.endpoint, "TK_API_KEY="+srv.writeKey,
		"COBRA_CLI_TELEMETRY=1")
	return user{env: env, bin: filepath.Join(bins, "cobra-cli"), home: home}
}

func (u user) run(args ...string) error { return command(u.env, u.bin, args...).Run() }

// senders lists the detached sender processes of u's tools: those whose
// environment holds both the sender marker and u's home.
func senders(u user) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if strings.Contains(string(env), "TELEMETRY_KIT_SENDER=") && strings.Contains(string(env), "HOME="+u.home+"\x00") {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

type invocation struct {
	args    []string
	command string
	flags   []string
	success bool
}

// TestCobraCLIEventsReachPostgresExactlyOnce runs the cobra example N times as
// a user would, against a tk-server started here. The detached sender
// delivers the first run's event at once (nothing was delivered from the
// queue yet), with whatever was queued meanwhile, then waits for the SDK's
// default threshold of 100 events; `telemetry flush` sends the rest. Every invocation is one row, with the
// right command, flags, outcome and a duration.
func TestCobraCLIEventsReachPostgresExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	srv := startServer(t)
	u := newUser(t, srv)
	kinds := []invocation{
		{[]string{"build", "--watch"}, "build", []string{"watch"}, true},
		{[]string{"build", "--production", "--out", "/home/jane/site", "web", "api"}, "build", []string{"out", "production"}, true},
		{[]string{"serve", "--port", "9000"}, "serve", []string{"port"}, true},
		{[]string{"config", "set", "region", "eu-west-1"}, "config set", []string{}, true},
		{[]string{"deploy", "--target", "fail"}, "deploy", []string{"target"}, false},
		{[]string{"deploy"}, "deploy", []string{}, false},
		{[]string{"version"}, "version", []string{}, true},
		{[]string{"biuld"}, "", []string{}, false},
	}
	const n = 120
	var want []invocation
	for i := range n {
		inv := kinds[i%len(kinds)]
		err := u.run(inv.args...)
		if (err == nil) != inv.success {
			t.Fatalf("cobra-cli %v: err = %v, want success %v", inv.args, err, inv.success)
		}
		want = append(want, inv)
	}

	// The sender started when the threshold was reached must finish on its
	// own; none may be left behind.
	deadline := time.Now().Add(40 * time.Second)
	for len(senders(u)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sender processes still running: %v", senders(u))
		}
		time.Sleep(100 * time.Millisecond)
	}
	delivered := len(readRows(t, srv.dbURL))
	if delivered < 1 {
		t.Errorf("the detached senders delivered %d of %d events, want at least the first run's at once", delivered, n)
	}
	out, err := command(u.env, u.bin, "telemetry", "flush").CombinedOutput()
	if err != nil {
		t.Fatalf("telemetry flush: %v\n%s", err, out)
	}

	rows := readRows(t, srv.dbURL)
	if len(rows) != n {
		t.Fatalf("%d rows in events, want %d (one per invocation)", len(rows), n)
	}
	type key struct {
		command, flags string
		success        bool
	}
	count := func(k key, m map[key]int) { m[k]++ }
	got, exp := map[key]int{}, map[key]int{}
	for _, r := range rows {
		count(key{r.command, strings.Join(r.flags, ","), r.success}, got)
		if r.durationMS < 0 || r.durationMS > 60_000 {
			t.Errorf("duration_ms %d out of range", r.durationMS)
		}
		if !r.success && r.errorKind == "" {
			t.Errorf("failed %q without an error kind", r.command)
		}
		if strings.Contains(r.raw, "jane") || strings.Contains(r.raw, "eu-west-1") {
			t.Errorf("a flag value or argument was stored: %s", r.raw)
		}
	}
	for _, w := range want {
		f := slices.Clone(w.flags)
		slices.Sort(f)
		count(key{w.command, strings.Join(f, ","), w.success}, exp)
	}
	for k, v := range exp {
		if got[k] != v {
			t.Errorf("%+v: %d rows, want %d", k, got[k], v)
		}
	}
	if len(got) != len(exp) {
		t.Errorf("rows of unexpected kinds: got %v, want %v", got, exp)
	}

	// The flag rollup a dashboard reads: runs per command and flag. The
	// example collects the value of --target only.
	wantFlags := map[string]int{}
	for _, w := range want {
		for _, f := range w.flags {
			v := ""
			if f == "target" {
				v = "fail"
			}
			wantFlags[w.command+" --"+f+"="+v]++
		}
	}
	gotFlags := map[string]int{}
	for _, r := range queryRows(t, srv.dbURL, `SELECT command || ' --' || flag || '=' || coalesce(value, ''), sum(events)::int
		FROM daily_flag_counts GROUP BY 1`) {
		gotFlags[r.key] = r.n
	}
	if !maps.Equal(gotFlags, wantFlags) {
		t.Errorf("flag rollup\n got %v\nwant %v", gotFlags, wantFlags)
	}
}

// connect opens a connection to dbURL for the rest of the test, and a
// context that bounds its use.
func connect(t *testing.T, dbURL string) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return ctx, conn
}

type keyCount struct {
	key string
	n   int
}

// queryRows runs sql, which returns a text and an integer per row.
func queryRows(t *testing.T, dbURL, sql string) []keyCount {
	t.Helper()
	ctx, conn := connect(t, dbURL)
	rs, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (keyCount, error) {
		var kc keyCount
		return kc, r.Scan(&kc.key, &kc.n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type row struct {
	command, errorKind, raw string
	flags                   []string
	success                 bool
	durationMS              int64
}

func readRows(t *testing.T, dbURL string) []row {
	t.Helper()
	ctx, conn := connect(t, dbURL)
	// Every row of events, whatever its type; the command, outcome,
	// duration and error kind come from their columns, the flags from
	// metadata, which must agree with the columns.
	rs, err := conn.Query(ctx, `SELECT event_type, name, success, duration_ms, error_kind, metadata::text FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for rs.Next() {
		var eventType, name, raw string
		var success *bool
		var durationMS *int64
		var errorKind *string
		if err := rs.Scan(&eventType, &name, &success, &durationMS, &errorKind, &raw); err != nil {
			t.Fatal(err)
		}
		if eventType != "command_executed" || success == nil || durationMS == nil {
			t.Fatalf("row %s: event_type %q, success %v, duration_ms %v; want a command_executed event with both",
				raw, eventType, success, durationMS)
		}
		var md struct {
			Command    string   `json:"command"`
			Flags      []string `json:"flags"`
			Success    bool     `json:"success"`
			DurationMS int64    `json:"duration_ms"`
		}
		if err := json.Unmarshal([]byte(raw), &md); err != nil {
			t.Fatalf("metadata %s: %v", raw, err)
		}
		if md.Command != name || md.Success != *success || md.DurationMS != *durationMS {
			t.Fatalf("row %s: columns name %q, success %v, duration_ms %d disagree with metadata", raw, name, *success, *durationMS)
		}
		r := row{command: name, raw: raw, flags: md.Flags, success: *success, durationMS: *durationMS}
		if errorKind != nil {
			r.errorKind = *errorKind
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
