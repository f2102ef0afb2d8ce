package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// TestFaultDatabaseRestart stops PostgreSQL (immediate shutdown, as in a
// crash) and starts it again while clients send. Every event acknowledged
// with 200 is in the database; requests made while it was down got 503 with
// Retry-After; the clients' retries deliver the rest; nothing is lost and
// nothing is stored or counted twice.
func TestFaultDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test skipped in -short mode")
	}
	cluster := pgtest.StartCluster(t)
	ctx := context.Background()
	dbURL, _, err := pgtest.CreateDatabase(ctx, cluster.URL, "fault")
	if err != nil {
		t.Fatal(err)
	}
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "error", "TK_RETRY_AFTER", "1s",
		"TK_RATE_LIMIT", "-1", "TK_REQUEST_TIMEOUT", "5s")
	p := createProject(t, ge, "fault")
	s := startServe(t, ge)
	base := "http://" + s.addr

	const clients, batches, size = 4, 60, 50
	var (
		acked, unavailable, netErrs, otherStatus, accepted, duplicates atomic.Int64
		mu                                                             sync.Mutex
		sent                                                           = map[string]bool{}
	)
	deadline := time.Now().Add(90 * time.Second)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
					resp, body, err := post(base, p.WriteKey, evs)
					if err != nil {
						netErrs.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
					if resp.StatusCode == 200 {
						acked.Add(1)
						accepted.Add(int64(body["accepted"].(float64)))
						duplicates.Add(int64(body["duplicates"].(float64)))
						break
					}
					if resp.StatusCode == 503 {
						unavailable.Add(1)
						if resp.Header.Get("Retry-After") == "" {
							t.Error("503 without Retry-After")
						}
					} else {
						otherStatus.Add(1)
						t.Errorf("status %d: %v", resp.StatusCode, body)
					}
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(15 * time.Millisecond)
			}
		}()
	}
	// Let traffic flow, then take the database away and bring it back.
	for acked.Load() < clients*batches/5 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches acknowledged before the outage", acked.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cluster.Stop()
	downAt := acked.Load()
	time.Sleep(2 * time.Second)
	cluster.Start()
	wg.Wait()

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_id::text FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	total := 0
	for rows.Next() {
		var id string
		rows.Scan(&id)
		stored[id] = true
		total++
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var rolled int64
	conn.QueryRow(ctx, `SELECT coalesce(sum(events), 0) FROM daily_event_counts`).Scan(&rolled)
	lost := 0
	for id := range sent {
		if !stored[id] {
			lost++
		}
	}
	t.Logf("events sent %d, stored %d, in rollups %d, lost %d; batches acknowledged %d (%d before the stop); "+
		"503 responses %d, network errors %d; accepted %d, duplicates reported %d",
		len(sent), total, rolled, lost, acked.Load(), downAt, unavailable.Load(), netErrs.Load(),
		accepted.Load(), duplicates.Load())
	if lost != 0 || total != clients*batches*size || len(sent) != total {
		t.Fatalf("lost %d events; stored %d of %d", lost, total, len(sent))
	}
	if rolled != int64(total) {
		t.Fatalf("rollups count %d events, want %d", rolled, total)
	}
	// The flag rollup too: each stored event's flags once.
	var flagsRolled, flagsStored int64
	conn.QueryRow(ctx, `SELECT coalesce(sum(events), 0) FROM daily_flag_counts`).Scan(&flagsRolled)
	conn.QueryRow(ctx, `SELECT coalesce(sum(jsonb_array_length(metadata->'flags')), 0) FROM events`).Scan(&flagsStored)
	if flagsStored == 0 || flagsRolled != flagsStored {
		t.Fatalf("the flag rollup counts %d flags, the stored events have %d", flagsRolled, flagsStored)
	}
	if accepted.Load()+duplicates.Load() < int64(total) || accepted.Load() > int64(total) {
		t.Fatalf("accepted %d + duplicates %d do not add up to %d", accepted.Load(), duplicates.Load(), total)
	}
	if unavailable.Load() == 0 {
		t.Fatal("the outage was not noticed: no 503")
	}
	// tk-server itself stays up: every request gets an answer.
	if netErrs.Load() != 0 {
		t.Fatalf("%d requests got no answer from tk-server", netErrs.Load())
	}
	if otherStatus.Load() != 0 {
		t.Fatalf("%d responses other than 200 and 503", otherStatus.Load())
	}
	// The watch of the keys came back with the database: a key created
	// now is in memory within seconds, long before the listing of every
	// minute would bring it.
	keysInMemory := func() float64 {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return metricValue(t, b, "tk_write_keys_in_memory")
	}
	before := keysInMemory()
	runCmd(t, ge, "key", "create", "--project", "fault")
	created := time.Now()
	for keysInMemory() <= before {
		if time.Since(created) > 40*time.Second {
			t.Fatal("a key created after the database restart is not in memory after 40 s: the key watch did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a key created after the restart was in memory %v later", time.Since(created).Round(time.Millisecond))
}
