package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// Three tk-server replicas share one PostgreSQL under load from clients
// that spread their batches over the replicas and retry a batch on the
// next replica after an error. One replica is killed (SIGKILL) and not
// brought back; then PostgreSQL is stopped as in a crash and started
// again. Every event acknowledged is stored once, the rollups equal the
// stored events, and the clients' retries deliver the rest.
func TestReplicasSurviveKillAndDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test skipped in -short mode")
	}
	cluster := pgtest.StartCluster(t)
	ctx := context.Background()
	dbURL, _, err := pgtest.CreateDatabase(ctx, cluster.URL, "scale")
	if err != nil {
		t.Fatal(err)
	}
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "error")
	runCmd(t, ge, "migrate")
	p := createProject(t, ge, "scale")
	procEnv := []string{"TK_LOG_LEVEL=error", "TK_RETRY_AFTER=1s", "TK_RATE_LIMIT=-1", "TK_REQUEST_TIMEOUT=5s"}
	var replicas []*process
	for range 3 {
		replicas = append(replicas, startProcess(t, dbURL, procEnv))
	}
	bases := make([]string, len(replicas))
	for i, r := range replicas {
		bases[i] = "http://" + r.addr
	}

	const clients, batches, size = 6, 40, 50
	var (
		acked, retried, accepted, duplicates atomic.Int64
		served                               [3]atomic.Int64
		mu                                   sync.Mutex
		sent                                 = map[string]bool{}
	)
	deadline := time.Now().Add(120 * time.Second)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := c
			for b := 0; b < batches; b++ {
				evs := newEvents(size)
				mu.Lock()
				for _, ev := range evs {
					sent[ev["event_id"].(string)] = true
				}
				mu.Unlock()
				for {
					if time.Now().After(deadline) {
						t.Error("client gave up: deadline passed")
						return
					}
					r := next % len(bases)
					next++
					resp, body, err := post(bases[r], p.WriteKey, evs)
					if err == nil && resp.StatusCode == 200 {
						acked.Add(1)
						served[r].Add(1)
						accepted.Add(int64(body["accepted"].(float64)))
						duplicates.Add(int64(body["duplicates"].(float64)))
						break
					}
					if err == nil && resp.StatusCode != 503 {
						t.Errorf("replica %d answered %d: %v", r, resp.StatusCode, body)
					}
					// Down, or the database is: the next replica, a moment later.
					retried.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	waitAcked := func(n int64) {
		for acked.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d batches acknowledged", acked.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(clients * batches / 4)
	if err := replicas[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := acked.Load()
	waitAcked(clients * batches / 2)
	cluster.Stop()
	stoppedAt := acked.Load()
	time.Sleep(2 * time.Second)
	cluster.Start()
	wg.Wait()

	stored, rolled := checkStoredOnce(t, dbURL, sent, accepted.Load(), duplicates.Load())
	t.Logf("sent %d events in %d batches; stored %d; rollups %d; batches per replica %d/%d/%d "+
		"(replica 1 killed after %d, database stopped after %d); %d retries; accepted %d, duplicates %d",
		len(sent), clients*batches, stored, rolled, served[0].Load(), served[1].Load(), served[2].Load(),
		killedAt, stoppedAt, retried.Load(), accepted.Load(), duplicates.Load())
	if retried.Load() == 0 || served[0].Load() == 0 || served[2].Load() == 0 {
		t.Fatal("the faults were not felt, or a replica served nothing")
	}
}

// Ingest rate limits and the key-lookup budget are kept by each replica
// for itself: with N replicas behind a load balancer a key may send N
// times --rate-limit. The test shows the rule that docs/self-hosting.md
// states: a key past its burst on one replica is still served by another.
func TestRateLimitIsPerReplica(t *testing.T) {
	dbURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "error")
	p := createProject(t, ge, "limits")
	procEnv := []string{"TK_LOG_LEVEL=error", "TK_RATE_LIMIT=0.1", "TK_RATE_BURST=2"}
	a, b := startProcess(t, dbURL, procEnv), startProcess(t, dbURL, procEnv)
	status := func(addr string) int {
		resp, _, err := post("http://"+addr, p.WriteKey, newEvents(1))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	got := fmt.Sprint(status(a.addr), status(a.addr), status(a.addr), status(b.addr), status(b.addr), status(b.addr))
	if got != "200 200 429 200 200 429" {
		t.Fatalf("statuses %s, want each replica to allow the burst of 2 on its own", got)
	}
}

// With --query-database-url, the query API reads from a streaming replica
// (made here with pg_basebackup) while ingest, keys and erasures go to the
// primary: answers catch up with the replica's replay, and with the
// replica down, questions fail with 503 while ingest and erasure go on.
func TestQueriesFromAReadReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test skipped in -short mode")
	}
	primary := pgtest.StartCluster(t)
	ctx := context.Background()
	dbURL, _, err := pgtest.CreateDatabase(ctx, primary.URL, "primary")
	if err != nil {
		t.Fatal(err)
	}
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "error")
	runCmd(t, ge, "migrate")
	p := createProject(t, ge, "replicated")
	standby := primary.Standby()
	queryURL := strings.Replace(dbURL, fmt.Sprintf(":%d/", primary.Port), fmt.Sprintf(":%d/", standby.Port), 1)
	srv := startProcess(t, dbURL, []string{"TK_LOG_LEVEL=error", "TK_RATE_LIMIT=-1", "TK_QUERY_DATABASE_URL=" + queryURL,
		"TK_QUERY_TIMEOUT=2s", "TK_RETRY_AFTER=1s"})
	base := "http://" + srv.addr
	events := func() (int, float64) {
		status, results := askQuery(t, base, p.ReadKey, `{"metrics": ["events"], "date_range": "7d"}`)
		var rows []struct{ Metrics []float64 }
		if json.Unmarshal(results, &rows) != nil || len(rows) == 0 {
			return status, 0
		}
		return status, rows[0].Metrics[0]
	}
	for i := 0; i < 4; i++ {
		if resp, _, err := post(base, p.WriteKey, newEvents(25)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("ingest: %v %v", resp, err)
		}
	}
	sent := time.Now()
	for {
		status, n := events()
		if status == 200 && n == 100 {
			break
		}
		if time.Since(sent) > 30*time.Second {
			t.Fatalf("the replica's answer: %d, %v events", status, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the replica answered with all 100 events %v after the last was acknowledged", time.Since(sent).Round(time.Millisecond))
	// The questions were the replica's: without it they fail, and the
	// primary's work goes on.
	standby.Stop()
	if status, _ := events(); status != 503 {
		t.Errorf("a question with the replica down: %d, want 503", status)
	}
	if resp, _, err := post(base, p.WriteKey, newEvents(10)); err != nil || resp.StatusCode != 200 {
		t.Errorf("ingest with the replica down: %v %v", resp, err)
	}
	// An erasure goes to the primary too.
	req, _ := http.NewRequest("POST", base+"/v1/erasures", strings.NewReader(`{"user_id": "anon_`+strings.Repeat("ab", 32)+`"}`))
	req.Header.Set("Authorization", "Bearer "+p.WriteKey)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("an erasure with the replica down: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&stored); err != nil || stored != 110 {
		t.Errorf("the primary has %d events, want 110 (%v)", stored, err)
	}
}
