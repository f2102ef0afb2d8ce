package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server used when TK_TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the URL of the test server.
func ServerURL() string {
	if u := os.Getenv("TK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// withDatabase returns serverURL with its database name replaced.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("pgtest: bad database URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// CreateDatabase creates a database named after prefix plus random
// characters on the server at serverURL, and returns its URL and a function
// that drops it.
func CreateDatabase(ctx context.Context, serverURL, prefix string) (string, func() error, error) {
	conn, err := connect(ctx, serverURL)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	p := unsafeChars.ReplaceAllString(strings.ToLower(prefix), "_")
	if len(p) > 40 {
		p = p[:40]
	}
	name := "tk_" + p + "_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		return "", nil, err
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := connect(ctx, serverURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	}
	return dbURL, drop, nil
}

func connect(ctx context.Context, serverURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return nil, fmt.Errorf("pgtest: bad database URL: %w", err)
	}
	cfg.ConnectTimeout = 5 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgtest: PostgreSQL at %s is not reachable (run scripts/ensure-postgres.sh and set TK_TEST_DATABASE_URL): %w",
			redact(serverURL), err)
	}
	return conn, nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// New creates a fresh database for one test on the test server, drops it
// when the test ends, and returns its URL. It fails the test when the
// server cannot be reached.
func New(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := CreateDatabase(ctx, ServerURL(), tb.Name())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Logf("pgtest: drop database: %v", err)
		}
	})
	return u
}

// Main runs a package's tests with one fresh database for the package,
// whose URL it stores in *dbURL, and drops it afterwards. Use it from
// TestMain: os.Exit(pgtest.Main(m, "server", &dbURL)).
func Main(m *testing.M, prefix string, dbURL *string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	u, drop, err := CreateDatabase(ctx, ServerURL(), prefix)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dbURL = u
	code := m.Run()
	if err := drop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: drop database:", err)
	}
	return code
}
