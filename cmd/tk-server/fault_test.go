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

	stored, rolled := checkStoredOnce(t, dbURL, sent, accepted.Load(), duplicates.Load())
	t.Logf("events sent %d, stored %d, in rollups %d; batches acknowledged %d (%d before the stop); "+
		"503 responses %d, network errors %d; accepted %d, duplicates reported %d",
		len(sent), stored, rolled, acked.Load(), downAt, unavailable.Load(), netErrs.Load(),
		accepted.Load(), duplicates.Load())
	if stored != clients*batches*size {
		t.Fatalf("stored %d events, want %d", stored, clients*batches*size)
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

// checkStoredOnce checks the database at dbURL after clients sent the
// events sent and were told accepted and duplicates in all: every event
// sent is stored, none twice; the event and flag rollups count exactly the
// stored events; and what was acknowledged adds up. It returns the events
// stored and counted in the rollups.
func checkStoredOnce(t *testing.T, dbURL string, sent map[string]bool, accepted, duplicates int64) (stored, rolled int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var distinct, flagsRolled, flagsStored int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id),
		(SELECT coalesce(sum(events), 0) FROM daily_event_counts),
		(SELECT coalesce(sum(events), 0) FROM daily_flag_counts),
		coalesce(sum(jsonb_array_length(metadata->'flags')), 0) FROM events`).
		Scan(&stored, &distinct, &rolled, &flagsRolled, &flagsStored); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT event_id::text FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	missing := len(sent)
	for _, id := range ids {
		if sent[id] {
			missing--
		}
	}
	if missing != 0 || stored != int64(len(sent)) || distinct != stored {
		t.Fatalf("stored %d (%d distinct) of %d sent, %d missing", stored, distinct, len(sent), missing)
	}
	if rolled != stored || flagsStored == 0 || flagsRolled != flagsStored {
		t.Fatalf("rollups count %d events and %d flags; stored %d events with %d flags", rolled, flagsRolled, stored, flagsStored)
	}
	if accepted > stored || accepted+duplicates < stored {
		t.Fatalf("accepted %d + duplicates %d against %d stored", accepted, duplicates, stored)
	}
	return stored, rolled
}
