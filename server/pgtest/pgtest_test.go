package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateDatabaseAndDrop(t *testing.T) {
	ctx := context.Background()
	url, drop, err := CreateDatabase(ctx, ServerURL(), "pgtest/Self Test")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	conn.QueryRow(ctx, "SELECT current_database()").Scan(&name)
	conn.Close(ctx)
	if !strings.HasPrefix(name, "tk_pgtest_self_test_") {
		t.Fatalf("database %q", name)
	}
	if err := drop(); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(ctx, url); err == nil {
		t.Fatal("database still there after drop")
	}
}

func TestUnreachableServerIsExplained(t *testing.T) {
	_, _, err := CreateDatabase(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable", "x")
	if err == nil || !strings.Contains(err.Error(), "TK_TEST_DATABASE_URL") || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("error %v", err)
	}
}

// scripts/ensure-postgres.sh, which make test runs first: with no server at
// the URL it is given, it starts a throwaway cluster and prints a URL that
// answers; run again, it prints the same cluster's URL.
func TestEnsurePostgresStartsThrowawayCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	bin, err := findBin()
	if err != nil {
		noCluster(t, "pgtest: no throwaway cluster: %v", err)
	}
	dir, err := os.MkdirTemp("", "tk-ensure-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ensure := func() string {
		t.Helper()
		cmd := exec.Command("../../scripts/ensure-postgres.sh")
		cmd.Env = append(os.Environ(), "TK_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:1/test?sslmode=disable",
			"TK_PGTEST_DIR="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ensure-postgres.sh: %v\n%s", err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	url := ensure()
	t.Cleanup(func() {
		stop := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop")
		if os.Geteuid() == 0 {
			stop = exec.Command("runuser", "-u", "postgres", "--", stop.Path, "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop")
		}
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	if strings.Contains(url, "127.0.0.1:1/") {
		t.Fatalf("the unreachable URL came back: %s", url)
	}
	ctx := context.Background()
	conn, err := connect(ctx, url)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	conn.Close(ctx)
	if err != nil || one != 1 {
		t.Fatalf("SELECT 1 on %s: %d %v", url, one, err)
	}
	if again := ensure(); again != url {
		t.Fatalf("second run: %s, want the same cluster %s", again, url)
	}
}
