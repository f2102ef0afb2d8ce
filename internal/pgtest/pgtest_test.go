package pgtest

import (
	"context"
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
