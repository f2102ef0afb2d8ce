package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// rollupMismatches compares daily_event_counts with the stored events of
// the project, both summed in SQL as numeric, per day and dimension, and
// returns the rows that differ.
func (e *env) rollupMismatches(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Pool().Query(context.Background(), `
		WITH r AS (
		    SELECT day, service_name, service_version, event_type, name, success,
		           sum(events::numeric) AS events, sum(duration_ms_sum::numeric) AS dur, sum(duration_count::numeric) AS n
		    FROM daily_event_counts WHERE project_id = $1 GROUP BY 1, 2, 3, 4, 5, 6
		), s AS (
		    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, service_name, service_version, event_type, name, success,
		           count(*)::numeric AS events, coalesce(sum(duration_ms::numeric), 0) AS dur, count(duration_ms)::numeric AS n
		    FROM events WHERE project_id = $1 GROUP BY 1, 2, 3, 4, 5, 6
		)
		SELECT format('%s %s %s %s %s %s: rollup %s/%s/%s, events %s/%s/%s', coalesce(r.day, s.day),
		              coalesce(r.service_name, s.service_name), coalesce(r.service_version, s.service_version),
		              coalesce(r.event_type, s.event_type), coalesce(r.name, s.name), coalesce(r.success, s.success),
		              r.events, r.dur, r.n, s.events, s.dur, s.n)
		FROM r FULL JOIN s ON r.day = s.day AND r.service_name = s.service_name AND r.service_version = s.service_version
		     AND r.event_type = s.event_type AND r.name = s.name AND r.success IS NOT DISTINCT FROM s.success
		WHERE r.events IS DISTINCT FROM s.events OR r.dur IS DISTINCT FROM s.dur OR r.n IS DISTINCT FROM s.n`, e.projectID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Issue: counters that a client could make overflow corrupted the rollups
// and then made every later event of the same day and dimensions
// unstorable. Out-of-range numbers are refused, and sums saturate.
func TestCounterOverflowCannotPoisonRollups(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	withDuration := func(d string) string {
		return rawEvent("metadata", `{"command":"build","success":true,"duration_ms":`+d+`}`)
	}
	// Two events whose sum wraps an int64, in one batch.
	r := e.post(rawBatch(withDuration("4611686018427387904"), withDuration("4611686018427387904")))
	if r.Status != 200 || r.Accepted != 0 || len(r.Rejected) != 2 {
		t.Fatalf("two huge durations: %d %s", r.Status, r.Body)
	}
	for _, rj := range r.Rejected {
		if rj.Reason != "invalid_field:metadata.duration_ms" {
			t.Fatalf("reason %q", rj.Reason)
		}
	}
	// Many requests with the largest int64, one event each.
	for i := 0; i < 40; i++ {
		if r := e.post(rawBatch(withDuration(strconv.FormatInt(math.MaxInt64, 10)))); r.Status != 200 || r.Accepted != 0 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The largest duration accepted, many times in one batch: the sum of
	// one batch cannot overflow either.
	var evs []string
	for i := 0; i < wire.MaxEvents; i++ {
		evs = append(evs, withDuration(strconv.FormatInt(wire.MaxDurationMS, 10)))
	}
	if r := e.post(rawBatch(evs...)); r.Status != 200 || r.Accepted != wire.MaxEvents {
		t.Fatalf("largest durations: %d %.300s", r.Status, r.Body)
	}

	// A rollup row whose sums are near the top (as years of a busy tool
	// could make them), and a data-loss counter near the top.
	ctx := context.Background()
	// In every shard, so that the next transaction meets it whatever its
	// connection.
	if _, err := e.db.Pool().Exec(ctx, `
		INSERT INTO daily_event_counts AS c (project_id, day, service_name, service_version, event_type, name, os, arch,
		                                     ci, go_version, success, error_kind, shard, events, duration_ms_sum,
		                                     duration_count)
		SELECT project_id, day, service_name, service_version, event_type, name, os, arch, ci, go_version, success,
		       error_kind, s, 0, 9223372036854775000, 0
		FROM (SELECT DISTINCT project_id, day, service_name, service_version, event_type, name, os, arch, ci,
		                      go_version, success, error_kind
		      FROM daily_event_counts WHERE project_id = $1) k, generate_series(0, 16) s
		ON CONFLICT (project_id, day, service_name, service_version, event_type, name, os, arch, ci, go_version,
		             success, error_kind, shard)
		DO UPDATE SET duration_ms_sum = excluded.duration_ms_sum`, e.projectID); err != nil {
		t.Fatal(err)
	}
	// The same in the platform rollup.
	if _, err := e.db.Pool().Exec(ctx, `
		INSERT INTO daily_platform_counts AS c (project_id, day, service_name, service_version, os, arch, ci, go_version,
		                                        shard, events, successes, outcomes, duration_ms_sum, duration_count,
		                                        users)
		SELECT project_id, day, service_name, service_version, os, arch, ci, go_version, s, 0, 0, 0,
		       9223372036854775000, 0, hll_empty()
		FROM (SELECT DISTINCT project_id, day, service_name, service_version, os, arch, ci, go_version
		      FROM daily_platform_counts WHERE project_id = $1) k, generate_series(0, 16) s
		ON CONFLICT (project_id, day, service_name, service_version, os, arch, ci, go_version, shard)
		DO UPDATE SET duration_ms_sum = excluded.duration_ms_sum`, e.projectID); err != nil {
		t.Fatal(err)
	}
	body := fmt.Appendf(nil, `{"events":[%s],"dropped":%d}`, withDuration("1000"), wire.MaxDropped)
	if r := e.post(body); r.Status != 200 || r.Accepted != 1 {
		t.Fatalf("first dropped report: %d %s", r.Status, r.Body)
	}
	if _, err := e.db.Pool().Exec(ctx, `UPDATE daily_data_loss SET dropped = 9223372036854775000
		WHERE project_id = $1`, e.projectID); err != nil {
		t.Fatal(err)
	}
	// Valid events of the same day and dimensions are still stored, on
	// both ingest paths (new events; new events with a known one).
	valid := []string{withDuration("1000"), withDuration("2000")}
	body = fmt.Appendf(nil, `{"events":[%s],"dropped":%d}`, valid[0], wire.MaxDropped)
	if r := e.post(body); r.Status != 200 || r.Accepted != 1 {
		t.Fatalf("valid event after the poisoning: %d %s", r.Status, r.Body)
	}
	if r := e.post(rawBatch(valid...)); r.Status != 200 || r.Accepted != 1 || r.Duplicates != 1 {
		t.Fatalf("valid event with a known one: %d %s", r.Status, r.Body)
	}
	if got := e.count(`SELECT max(duration_ms_sum) FROM daily_event_counts WHERE project_id = $1 AND events > 0
		AND duration_ms_sum > 9223372036854775000`); got != math.MaxInt64 {
		t.Fatalf("saturated sum %d, want %d", got, int64(math.MaxInt64))
	}
	if got := e.count(`SELECT max(duration_ms_sum) FROM daily_platform_counts WHERE project_id = $1 AND events > 0
		AND duration_ms_sum > 9223372036854775000`); got != math.MaxInt64 {
		t.Fatalf("saturated platform sum %d, want %d", got, int64(math.MaxInt64))
	}
	if got := e.count(`SELECT dropped FROM daily_data_loss WHERE project_id = $1`); got != math.MaxInt64 {
		t.Fatalf("saturated data loss %d", got)
	}
	want := int64(wire.MaxEvents + 3)
	if n, m := e.storedEvents(), e.rolledUpEvents(); n != want || m != want {
		t.Fatalf("%d events stored, %d in rollups, want %d", n, m, want)
	}
}

// The rollups equal the stored events, summed as numeric, after valid
// traffic with the largest durations accepted.
func TestRollupSumsMatchEvents(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	var evs []string
	for i := 0; i < 300; i++ {
		d := []int64{0, 1, 12, wire.MaxDurationMS}[i%4]
		evs = append(evs, rawEvent("metadata", fmt.Sprintf(`{"command":"c%d","success":%v,"duration_ms":%d}`, i%3, i%2 == 0, d)))
	}
	if r := e.post(rawBatch(evs...)); r.Status != 200 || r.Accepted != len(evs) {
		t.Fatalf("%d %.300s", r.Status, r.Body)
	}
	// Known and new events together take the statement path.
	evs = append(evs[:100:100], rawEvent("metadata", `{"command":"c0","success":true,"duration_ms":7}`))
	if r := e.post(rawBatch(evs...)); r.Status != 200 || r.Accepted != 1 || r.Duplicates != 100 {
		t.Fatalf("%d %.300s", r.Status, r.Body)
	}
	if bad := e.rollupMismatches(t); len(bad) > 0 {
		t.Fatalf("rollups differ from the events:\n%v", bad)
	}
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address local (any of 127.0.0.0/8), as a distinct client.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, MaxIdleConnsPerHost: 16,
	}}
}

// postWith sends body to url's /v1/events with key from client and
// returns the status (0 on a network error) and the Retry-After seconds.
func postWith(t *testing.T, client *http.Client, url, key string, body []byte) (int, int) {
	req, err := http.NewRequest("POST", url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, ra
}

// flood sends requests with made-up, well-formed keys from four
// goroutines until stop is closed (or 30 s pass), and returns the number
// of answers by status once they ended.
func flood(t *testing.T, client *http.Client, url string, stop <-chan struct{}) func() map[int]int {
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	body := batch(event())
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				made, _, _ := server.NewKey(server.KeyWrite)
				code, _ := postWith(t, client, url, made, body)
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}
		}()
	}
	return func() map[int]int {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(statuses)
	}
}

// firstTry sends one new event with key from client, as the SDK does: on
// a 429 it waits the Retry-After (at most three times). It returns the
// status of the first try and the time until the event was stored.
func firstTry(t *testing.T, client *http.Client, url, key string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	first := 0
	for try := 0; try < 3; try++ {
		code, wait := postWith(t, client, url, key, batch(event()))
		if code == 0 {
			t.Fatal("network error")
		}
		if first == 0 {
			first = code
		}
		if code != 429 {
			break
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
	return first, time.Since(start)
}

// keysInMemory reads tk_write_keys_in_memory from the server's /metrics.
func keysInMemory(t *testing.T, url string) int {
	t.Helper()
	return int(metric(t, url, "tk_write_keys_in_memory"))
}

// waitKeys waits (at most 5 s) until the server holds more than n keys in
// memory.
func waitKeys(t *testing.T, url string, n int) {
	t.Helper()
	for start := time.Now(); keysInMemory(t, url) <= n; {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the server holds %d keys in memory, want more than %d", keysInMemory(t, url), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onlyStore hides every method of a store but those of server.Store, as a
// store that cannot list its keys.
type onlyStore struct{ server.Store }

// Issue: a flood of made-up keys took the whole lookup budget, and a valid
// key not yet known (as every key is after a start) got 429 for as long as
// it lasted. Valid write keys are now all in memory, listed at start and
// again when one is created; and each client address has its own share of
// the lookup budget.
func TestKeyFloodCannotLockOutValidKeys(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{DB: testStore(t)}
	valid := &http.Client{Timeout: 10 * time.Second}
	// A small budget: ten lookups a second in all, one per client.
	cfg := httpapi.Config{Store: store, RateLimit: -1, KeyLookupRate: 10}
	check := func(t *testing.T, e *env, what string, first int, wait time.Duration, statuses map[int]int) {
		t.Helper()
		t.Logf("%s, during a flood of made-up keys answered %v: first try %d, stored after %v", what, statuses, first, wait)
		if first != 200 {
			t.Fatalf("%s: the valid key's first request got %d", what, first)
		}
		if statuses[200] != 0 || statuses[429] == 0 {
			t.Fatalf("made-up keys got %v", statuses)
		}
		if n, m := e.storedEvents(), e.rolledUpEvents(); n != 1 || m != 1 {
			t.Fatalf("%d events stored, %d in rollups, want 1 and 1", n, m)
		}
	}

	t.Run("restart", func(t *testing.T) {
		// The project exists before the server starts, as every project
		// does after a restart; the flood comes from the valid client's
		// own address, so that only the listing can let the key in.
		e := newEnv(t, httpapi.Config{})
		srv := startServer(t, cfg)
		stop := make(chan struct{})
		results := flood(t, valid, srv.URL, stop)
		time.Sleep(200 * time.Millisecond) // the flood has taken the budget
		waitKeys(t, srv.URL, 0)
		before := store.lookups.Load()
		first, wait := firstTry(t, valid, srv.URL, e.writeKey)
		close(stop)
		check(t, e, "a valid key after a start", first, wait, results())
		t.Logf("lookups meanwhile: %d", store.lookups.Load()-before)
	})

	t.Run("key created during the flood", func(t *testing.T) {
		e := newEnv(t, httpapi.Config{})
		srv := startServer(t, cfg)
		stop := make(chan struct{})
		results := flood(t, valid, srv.URL, stop)
		time.Sleep(200 * time.Millisecond) // the flood has taken the budget
		waitKeys(t, srv.URL, 0)
		n := keysInMemory(t, srv.URL)
		ks, k, _ := server.NewKey(server.KeyWrite)
		k.ProjectID = e.projectID
		created := time.Now()
		if _, err := e.db.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		waitKeys(t, srv.URL, n)
		t.Logf("the new key was in memory %v after its creation", time.Since(created))
		first, wait := firstTry(t, valid, srv.URL, ks)
		close(stop)
		check(t, e, "a key created during the flood", first, wait, results())
	})

	t.Run("per-client budget", func(t *testing.T) {
		// A store that cannot list its keys: every key is looked up, and
		// the flood, from another address, cannot take the valid
		// client's share.
		e := newEnv(t, httpapi.Config{})
		c := cfg
		c.Store = onlyStore{store}
		srv := startServer(t, c)
		stop := make(chan struct{})
		results := flood(t, clientFrom("127.0.0.2"), srv.URL, stop)
		time.Sleep(500 * time.Millisecond)
		first, wait := firstTry(t, valid, srv.URL, e.writeKey)
		close(stop)
		check(t, e, "a valid key looked up", first, wait, results())
	})
}

// metric reads one unlabelled metric from the server's /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Issue: a 1 MB gzip body cost about 22 MB however it ended, and many at
// once took the server's memory into gigabytes. Bodies are held within
// one budget: a body it cannot hold now gets 503 with Retry-After, and
// ordinary bodies are still served.
func TestBodyMemoryBudget(t *testing.T) {
	e := newEnv(t, httpapi.Config{DecodeMemory: 2 << 20})
	evs := make([]map[string]any, 400)
	for i := range evs {
		evs[i] = with(func(ev map[string]any) {
			for k := range 7 {
				meta(ev)["pad"+strconv.Itoa(k)] = strings.Repeat("p", 1000)
			}
		})
	}
	big := gzipped(batch(evs...)) // about 3 MiB decompressed
	r := e.post(big, "Content-Encoding", "gzip")
	if r.Status != 503 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("a body over the budget: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if r := e.post(gzipped(batch(event())), "Content-Encoding", "gzip"); r.Status != 200 || r.Accepted != 1 {
		t.Fatalf("a small body: %d %s", r.Status, r.Body)
	}
	if n := e.storedEvents(); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
	if got := metric(t, e.srv.URL, "tk_requests_busy_total"); got != 1 {
		t.Fatalf("tk_requests_busy_total %v, want 1", got)
	}
	if got := metric(t, e.srv.URL, "tk_body_memory_bytes"); got != 0 {
		t.Fatalf("tk_body_memory_bytes %v after the requests, want 0", got)
	}
	// With the default budget the same body is stored.
	e2 := newEnv(t, httpapi.Config{})
	if r := e2.post(big, "Content-Encoding", "gzip"); r.Status != 200 || r.Accepted != len(evs) {
		t.Fatalf("default budget: %d %.200s", r.Status, r.Body)
	}
}

// rollupBytes returns the size on disk of the rollup tables, indexes
// included.
func (e *env) rollupBytes() int64 {
	return e.count(`SELECT sum(pg_total_relation_size(t))::bigint + 0 * $1 FROM unnest(ARRAY['daily_event_counts',
		'daily_flag_counts', 'daily_users', 'daily_data_loss', 'daily_folds', 'rollup_values', 'rollup_value_counts',
		'rollup_additions', 'weekly_users', 'daily_platform_counts']::regclass[]) AS t`)
}

// Issue: ten requests of 250 events, each with a random version and 32
// random flags, added 80,000 rows (48 MB) to the flag rollup, and rollups
// were never pruned. Values past the caps are counted under "(other)",
// and what a write key can add to the rollups in a day is bounded
// whatever it sends.
func TestRollupAmplificationIsBounded(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	random := func() string { return strconv.FormatUint(rand.Uint64(), 36) }
	hostile := func(days int) []byte {
		evs := make([]map[string]any, 250)
		for i := range evs {
			evs[i] = with(func(ev map[string]any) {
				ev["service_version"] = random()
				if days > 0 {
					ts := time.Now().UTC().AddDate(0, 0, -rand.IntN(days)).Add(-time.Hour)
					id := uuid.Must(uuid.NewV7())
					ms := ts.UnixMilli()
					for j := 5; j >= 0; j-- {
						id[j] = byte(ms)
						ms >>= 8
					}
					ev["event_id"] = id.String()
					ev["timestamp"] = ts.Format("2006-01-02T15:04:05.000Z")
				}
				flags := make([]string, 32)
				values := map[string]any{}
				for j := range flags {
					flags[j] = random()
					values[flags[j]] = random()
				}
				meta(ev)["command"] = random()
				meta(ev)["flags"] = flags
				meta(ev)["flag_values"] = values
			})
		}
		return batch(evs...)
	}
	before := e.rollupBytes()
	// The attack, then one four times as large over 30 days.
	for i := 0; i < 10; i++ {
		if r := e.post(hostile(0)); r.Status != 200 || r.Accepted != 250 {
			t.Fatalf("request %d: %d %.200s", i, r.Status, r.Body)
		}
	}
	flagRows := e.count(`SELECT count(*) FROM daily_flag_counts WHERE project_id = $1`)
	t.Logf("the issue's attack: %d flag rollup rows, rollups grew by %.1f MB", flagRows, float64(e.rollupBytes()-before)/1e6)
	for i := 0; i < 40; i++ {
		if r := e.post(hostile(30)); r.Status != 200 || r.Accepted != 250 {
			t.Fatalf("request %d: %d %.200s", i, r.Status, r.Body)
		}
	}
	grown := e.rollupBytes() - before
	var added, rows, keys int64
	if err := e.db.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM rollup_values WHERE project_id = $1 AND added = (now() AT TIME ZONE 'UTC')::date),
		(SELECT count(*) FROM daily_event_counts WHERE project_id = $1) + (SELECT count(*) FROM daily_flag_counts WHERE project_id = $1),
		(SELECT count(DISTINCT (day, service_name, service_version, event_type, name, success)) FROM daily_event_counts WHERE project_id = $1)
		+ (SELECT count(DISTINCT (day, service_name, service_version, command, flag, value)) FROM daily_flag_counts WHERE project_id = $1)`,
		e.projectID).Scan(&added, &rows, &keys); err != nil {
		t.Fatal(err)
	}
	events := e.storedEvents()
	t.Logf("after %d hostile events: %d values and rows added today, %d rollup rows (%d without shards), rollups grew by %.1f MB",
		events, added, rows, keys, float64(grown)/1e6)
	if flagRows > 5100 {
		t.Errorf("the issue's attack added %d flag rollup rows", flagRows)
	}
	if added > 25000 {
		t.Errorf("%d values and rows added today, over the cap of 25,000", added)
	}
	// Every row but the (other) ones was admitted today.
	if keys > added+31*4 {
		t.Errorf("%d rollup rows without shards, %d admitted", keys, added)
	}
	// Every event and flag is still counted.
	if n := e.rolledUpEvents(); n != events {
		t.Errorf("%d events counted, %d stored", n, events)
	}
	if n := e.count(`SELECT sum(events)::bigint FROM daily_flag_counts WHERE project_id = $1`); n != 32*events {
		t.Errorf("%d flags counted, want %d", n, 32*events)
	}
	if folded := metric(t, e.srv.URL, `tk_rollup_folded_total{dimension="flag"}`); folded == 0 {
		t.Error("tk_rollup_folded_total shows no folded flag")
	}
	if n := e.count(`SELECT coalesce(sum(events), 0)::bigint FROM daily_folds WHERE project_id = $1 AND dimension = 'flag'`); n == 0 {
		t.Error("daily_folds shows no folded flag")
	}
}

// logLines parses JSON log lines.
func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// syncBuf is a bytes.Buffer safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Every refused request is logged, at WARN, with its reason and, once the
// key is known, its project; a failure of the server at ERROR with its
// project; never a key or a body. A 401 says how to authenticate.
func TestRefusalsLoggedAndExplained(t *testing.T) {
	var logs syncBuf
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, httpapi.Config{Logger: log, DecodeMemory: 1 << 20, RequestTimeout: 2 * time.Second})
	revoked := newEnv(t, httpapi.Config{})
	if err := e.db.RevokeKey(context.Background(), revoked.writeID); err != nil {
		t.Fatal(err)
	}
	unknown, _, _ := server.NewKey(server.KeyWrite)
	secret := "body-secret-" + random36()
	big := make([]map[string]any, 200)
	for i := range big {
		big[i] = with(func(ev map[string]any) {
			for k := range 7 {
				meta(ev)["pad"+strconv.Itoa(k)] = strings.Repeat("p", 1000)
			}
		})
	}
	cases := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		reason  string
		project bool
		auth    string
	}{
		{"missing key", batch(event()), []string{"Authorization", ""}, 401, "missing write key", false, `Bearer realm="telemetry-kit"`},
		{"unknown key", batch(event()), []string{"Authorization", "Bearer " + unknown}, 401, "unknown key", false, `Bearer realm="telemetry-kit", error="invalid_token"`},
		{"revoked key", batch(event()), []string{"Authorization", "Bearer " + revoked.writeKey}, 403, "the key is revoked", true, ""},
		{"bad JSON", []byte(`{"events":[` + secret), nil, 400, "not valid JSON", true, ""},
		{"too many events", rawBatch(strings.Split(strings.Repeat("{},", 1001)+"{}", ",")...), nil, 413, "events, at most", true, ""},
		{"busy", gzipped(batch(big...)), []string{"Content-Encoding", "gzip"}, 503, "busy", true, ""},
	}
	for _, c := range cases {
		r := e.post(c.body, c.headers...)
		if r.Status != c.status || r.Header.Get("WWW-Authenticate") != c.auth {
			t.Fatalf("%s: %d WWW-Authenticate %q", c.name, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	// A failure of the database while storing.
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, _ := locker.Begin(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE events IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	r := e.post(batch(event()))
	tx.Rollback(ctx)
	if r.Status != 503 {
		t.Fatalf("store failure: %d %s", r.Status, r.Body)
	}

	lines := logLines(t, logs.Bytes())
	var requests []map[string]any
	failed := 0
	for _, l := range lines {
		if l["msg"] == "request" {
			requests = append(requests, l)
		}
		if l["msg"] == "request failed" {
			failed++
			if l["level"] != "ERROR" || l["project"] != float64(e.projectID) {
				t.Errorf("failure logged as %v", l)
			}
		}
	}
	if len(requests) != len(cases)+1 || failed != 1 {
		t.Fatalf("%d request lines and %d failures for %d requests:\n%s", len(requests), failed, len(cases)+1, logs.Bytes())
	}
	for i, c := range cases {
		l := requests[i]
		reason, _ := l["reason"].(string)
		if l["level"] != "WARN" || l["status"] != float64(c.status) || !strings.Contains(reason, c.reason) {
			t.Errorf("%s logged as %v", c.name, l)
		}
		if p, ok := l["project"]; c.project != ok || ok && p != float64(e.projectID) && p != float64(revoked.projectID) {
			t.Errorf("%s: project %v", c.name, l["project"])
		}
	}
	if l := requests[len(cases)]; l["level"] != "ERROR" || l["project"] != float64(e.projectID) {
		t.Errorf("the store failure's request logged as %v", l)
	}
	for _, leak := range []string{e.writeKey, unknown, revoked.writeKey, secret, e.writeKey[5:20]} {
		if bytes.Contains(logs.Bytes(), []byte(leak)) {
			t.Errorf("the log holds %q", leak)
		}
	}
}

func random36() string { return strconv.FormatUint(rand.Uint64(), 36) }
