package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// The backup and restore of docs/self-hosting.md: pg_dump -Fc of a live
// database, pg_restore into an empty one, tk-server on the restored
// database answers the same questions with the same keys and goes on
// ingesting.
func TestBackupAndRestore(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	ctx := context.Background()
	srcURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", srcURL, "TK_LOG_LEVEL", "error")
	p := createProject(t, ge, "backed-up")
	s := startServe(t, ge, "--rate-limit", "-1")
	for i := 0; i < 5; i++ {
		if resp, _, err := post("http://"+s.addr, p.WriteKey, newEvents(40)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("ingest: %v %v", resp, err)
		}
	}
	runCmd(t, ge, "maintain")
	question := `{"metrics": ["events", "users"], "dimensions": ["command"], "date_range": "7d", "order_by": [["command", "asc"]]}`
	ask := func(addr string) string {
		status, results := askQuery(t, "http://"+addr, p.ReadKey, question)
		if status != 200 || len(results) == 0 {
			t.Fatalf("query: %d", status)
		}
		return string(results)
	}
	before := ask(s.addr)

	dump := filepath.Join(t.TempDir(), "telemetry.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--file", dump, srcURL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	dstURL, drop, err := pgtest.CreateDatabase(ctx, pgtest.ServerURL(), "restored")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "--dbname", dstURL, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	dge := env("TK_DATABASE_URL", dstURL, "TK_LOG_LEVEL", "error")
	d := startServe(t, dge, "--rate-limit", "-1", "--no-migrate")
	if after := ask(d.addr); after != before {
		t.Errorf("the restored database answers\n%s\nthe original\n%s", after, before)
	}
	if resp, body, err := post("http://"+d.addr, p.WriteKey, newEvents(10)); err != nil || resp.StatusCode != 200 || body["accepted"] != 10.0 {
		t.Fatalf("ingest into the restored database: %v %v %v", resp, body, err)
	}
}
