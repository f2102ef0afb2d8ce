package e2e

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// anonID is the anonymous ID u's cobra-cli sends, from `telemetry status`.
func anonID(t *testing.T, u user) string {
	t.Helper()
	out, err := command(u.env, u.bin, "telemetry", "status", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		UserID         string     `json:"user_id"`
		ErasurePending *time.Time `json:"erasure_pending"`
	}
	if err := json.Unmarshal(out, &st); err != nil || !strings.HasPrefix(st.UserID, "anon_") {
		t.Fatalf("status --json: %s %v", out, err)
	}
	return st.UserID
}

// erasurePending reports whether u's `telemetry status` shows an erasure
// the server has not confirmed.
func erasurePending(t *testing.T, u user) bool {
	t.Helper()
	out, err := command(u.env, u.bin, "telemetry", "status").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(out), "Erasure pending")
}

// countedEvents is the sum of the daily event counts, which hold no user.
func countedEvents(t *testing.T, dbURL string) int64 {
	t.Helper()
	ctx, conn := connect(t, dbURL)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(events), 0) FROM daily_event_counts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rowsOf counts the rows of an anonymous ID in every table that has a
// user_id column, and all events.
func rowsOf(t *testing.T, dbURL, anon string) (mine, all int) {
	t.Helper()
	id, err := hex.DecodeString(strings.TrimPrefix(anon, "anon_"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, conn := connect(t, dbURL)
	rows, err := conn.Query(ctx, `SELECT c.table_name FROM information_schema.columns c
		JOIN pg_class r ON r.relname = c.table_name AND NOT r.relispartition
		WHERE c.table_schema = 'public' AND c.column_name = 'user_id'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 4 {
		t.Fatalf("tables with user ids: %v %v", tables, err)
	}
	for _, table := range tables {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()+` WHERE user_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		mine += n
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&all); err != nil {
		t.Fatal(err)
	}
	return mine, all
}

// A person runs an instrumented tool, then `telemetry delete`: nothing of
// their anonymous ID is left on the server, another person's data is
// intact, and events recorded before the deletion that reach the server
// afterwards (from a second queue on the same machine) are discarded.
// Another person deletes while the server is down: the request waits,
// `status` says so, and a run of the tool delivers it once the server is
// back.
func TestTelemetryDeleteErasesOnTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	srv := startServer(t)
	// Jane runs cobra-cli; Joe urfave-cli, another tool of the same
	// project (on this one machine, another tool is what gives another
	// anonymous ID).
	jane, joe := newUser(t, srv), newUser(t, srv)
	joe.bin = filepath.Join(bins, "urfave-cli")
	// Both said yes with `telemetry enable` rather than with the tool's
	// variable, which would outrank their later choices.
	for _, u := range []*user{&jane, &joe} {
		var env []string
		for _, kv := range u.env {
			if kv != "COBRA_CLI_TELEMETRY=1" {
				env = append(env, kv)
			}
		}
		u.env = env
		if out, err := command(u.env, u.bin, "telemetry", "enable").CombinedOutput(); err != nil {
			t.Fatalf("enable: %v %s", err, out)
		}
	}
	for _, u := range []user{jane, joe} {
		for _, args := range [][]string{{"build", "--watch"}, {"serve"}, {"version"}} {
			if err := u.run(args...); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := command(u.env, u.bin, "telemetry", "flush").CombinedOutput(); err != nil {
			t.Fatalf("flush: %v %s", err, out)
		}
	}
	// Jane also ran the tool twice with a second queue: the first run's
	// event is sent at once by the detached sender, the second waits in
	// the queue.
	second := jane
	second.env = append(append([]string{}, jane.env...), "XDG_CACHE_HOME="+filepath.Join(jane.home, "other-cache"))
	for _, args := range [][]string{{"build"}, {"serve"}} {
		if err := second.run(args...); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); len(senders(jane)) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the detached sender did not end")
			}
		}
	}
	janeID, joeID := anonID(t, jane), anonID(t, joe)
	if janeID == joeID {
		t.Fatal("two machines share an anonymous ID")
	}
	if mine, all := rowsOf(t, srv.dbURL, janeID); mine < 4 || all != 7 {
		t.Fatalf("before the deletion: %d rows of Jane, %d events", mine, all)
	}

	counted := countedEvents(t, srv.dbURL)
	out, err := command(jane.env, jane.bin, "telemetry", "delete").CombinedOutput()
	if err != nil {
		t.Fatalf("telemetry delete: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "The server erased 4 events and ") || !strings.Contains(string(out), janeID) {
		t.Errorf("telemetry delete said:\n%s", out)
	}
	if mine, all := rowsOf(t, srv.dbURL, janeID); mine != 0 || all != 3 {
		t.Errorf("after the deletion: %d rows of Jane, %d events (Joe's 3 must stay)", mine, all)
	}
	if mine, _ := rowsOf(t, srv.dbURL, joeID); mine < 3 {
		t.Errorf("Joe's rows: %d", mine)
	}
	if c := countedEvents(t, srv.dbURL); c != counted {
		t.Errorf("the counts without users changed: %d events counted, were %d", c, counted)
	}
	// Telemetry is off: a run records nothing.
	if err := jane.run("serve"); err != nil {
		t.Fatal(err)
	}
	if out, _ := command(jane.env, jane.bin, "telemetry", "status").Output(); !strings.Contains(string(out), "Telemetry is off") {
		t.Errorf("status after delete:\n%s", out)
	}
	// Jane turns it on again and her second queue sends what it recorded
	// before the deletion: discarded. A run after that is kept.
	time.Sleep(10 * time.Millisecond)
	if out, err := command(jane.env, jane.bin, "telemetry", "enable").CombinedOutput(); err != nil {
		t.Fatalf("enable: %v %s", err, out)
	}
	if out, err := command(second.env, second.bin, "telemetry", "flush").CombinedOutput(); err != nil {
		t.Fatalf("flush of the second queue: %v %s", err, out)
	}
	if mine, all := rowsOf(t, srv.dbURL, janeID); mine != 0 || all != 3 {
		t.Errorf("after the second queue's events recorded before the deletion: %d rows of Jane, %d events", mine, all)
	}
	if err := jane.run("version"); err != nil {
		t.Fatal(err)
	}
	if out, err := command(jane.env, jane.bin, "telemetry", "flush").CombinedOutput(); err != nil {
		t.Fatalf("flush: %v %s", err, out)
	}
	if _, all := rowsOf(t, srv.dbURL, janeID); all != 4 {
		t.Errorf("a run after the deletion and enable: %d events, want 4", all)
	}

	// Joe deletes while the server is down.
	srv.stop()
	out, err = command(joe.env, joe.bin, "telemetry", "delete").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "could not be reached") {
		t.Fatalf("offline delete: %v\n%s", err, out)
	}
	if !erasurePending(t, joe) {
		t.Fatal("status does not show the pending erasure")
	}
	if mine, _ := rowsOf(t, srv.dbURL, joeID); mine < 3 {
		t.Fatalf("Joe's rows went before the request was delivered: %d", mine)
	}
	// The server comes back at the same address: a run of the tool starts
	// the detached sender, which delivers it (once the retry that the
	// failed attempts scheduled is due, 5 seconds after the last).
	srv.serve(t, strings.TrimPrefix(srv.endpoint, "http://"))
	deadline := time.Now().Add(30 * time.Second)
	for erasurePending(t, joe) {
		if err := joe.run("version"); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(joe.home, ".cache", "urfave-cli", "queue.db.erasure"))
			t.Fatalf("the pending erasure was not delivered: %s", b)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if mine, all := rowsOf(t, srv.dbURL, joeID); mine != 0 || all != 1 {
		t.Errorf("after the delayed erasure: %d rows of Joe, %d events (Jane's 1 must stay)", mine, all)
	}
	if _, err := os.Stat(filepath.Join(joe.home, ".cache", "urfave-cli", "queue.db.erasure")); !os.IsNotExist(err) {
		t.Errorf("the erasure file is left: %v", err)
	}
}
