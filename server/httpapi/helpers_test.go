package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

var dbURL string

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, "server", &dbURL)) }

var (
	storeOnce sync.Once
	store     *postgres.DB
	storeErr  error
	projectN  atomic.Int64
)

// testStore opens the package's database once, migrated and with its
// partitions.
func testStore(t *testing.T) *postgres.DB {
	t.Helper()
	storeOnce.Do(func() {
		ctx := context.Background()
		store, storeErr = postgres.Open(ctx, postgres.Config{URL: dbURL})
		if storeErr != nil {
			return
		}
		if storeErr = store.Migrate(ctx); storeErr != nil {
			return
		}
		_, storeErr = store.Maintain(ctx)
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	return store
}

type env struct {
	t         *testing.T
	db        *postgres.DB
	srv       *httptest.Server
	projectID int64
	writeKey  string
	readKey   string
	adminKey  string
	writeID   int64
}

// newEnv starts a real HTTP server on the package database with a new
// project. cfg.Store is filled in.
func newEnv(t *testing.T, cfg httpapi.Config) *env {
	t.Helper()
	db := testStore(t)
	if cfg.Store == nil {
		cfg.Store = db
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1
	}
	srv := startServer(t, cfg)
	wk, w, _ := server.NewKey(server.KeyWrite)
	rk, r, _ := server.NewKey(server.KeyRead)
	ak, a, _ := server.NewKey(server.KeyAdmin)
	name := fmt.Sprintf("p%d-%s", projectN.Add(1), strings.ReplaceAll(t.Name(), "/", "-"))
	p, keys, err := db.CreateProject(context.Background(), name, []server.Key{w, r, a})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, srv: srv, projectID: p.ID, writeKey: wk, readKey: rk, adminKey: ak, writeID: keys[0].ID}
}

// startServer starts a real HTTP server for cfg, with its key watch
// running as tk-server runs it, stopped when the test ends.
func startServer(t *testing.T, cfg httpapi.Config) *httptest.Server {
	t.Helper()
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.WatchKeys(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// event returns a valid command_executed event made now.
func event() map[string]any {
	id := uuid.Must(uuid.NewV7())
	sid := uuid.Must(uuid.NewV7())
	return map[string]any{
		"event_id":        id.String(),
		"schema_version":  1,
		"service_name":    "my-cli",
		"service_version": "1.4.2",
		"event_type":      "command_executed",
		"timestamp":       time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"user_id":         "anon_" + strings.Repeat("3f", 32),
		"session_id":      sid.String(),
		"sdk":             map[string]any{"name": "telemetry-kit-go", "version": "0.1.0"},
		"env":             map[string]any{"os": "linux", "arch": "amd64", "ci": false, "go_version": "go1.26.8"},
		"metadata": map[string]any{
			"command": "remote add", "flags": []string{"force"}, "args_count": 2, "success": true,
			"error_kind": "", "duration_ms": 12, "exit_code": 0,
		},
	}
}

func batch(events ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		panic(err)
	}
	return b
}

type response struct {
	Status     int
	Header     http.Header
	Body       []byte
	Accepted   int              `json:"accepted"`
	Duplicates int              `json:"duplicates"`
	Rejected   []wire.Rejection `json:"rejected"`
	Error      string           `json:"error"`
}

// post sends body to /v1/events with the write key and JSON content type,
// then applies the header overrides (an empty value deletes the header).
func (e *env) post(body []byte, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.writeKey)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{Status: resp.StatusCode, Header: resp.Header}
	r.Body, _ = io.ReadAll(resp.Body)
	if err := json.Unmarshal(r.Body, &r); err != nil {
		e.t.Fatalf("response %d is not JSON: %q", resp.StatusCode, r.Body)
	}
	return r
}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// count runs a count query with the project id as $1.
func (e *env) count(sql string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Pool().QueryRow(context.Background(), sql, e.projectID).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *env) storedEvents() int64 {
	return e.count(`SELECT count(*) FROM events WHERE project_id = $1`)
}

func (e *env) rolledUpEvents() int64 {
	return e.count(`SELECT coalesce(sum(events), 0) FROM daily_event_counts WHERE project_id = $1`)
}

// getWith sends GET path with key.
func (e *env) getWith(path, key string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
