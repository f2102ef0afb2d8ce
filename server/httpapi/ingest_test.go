package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func TestIngestStoresEventsAndRollups(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	evs := []map[string]any{event(), event(), event(), event()}
	evs[1]["metadata"].(map[string]any)["success"] = false
	evs[1]["metadata"].(map[string]any)["duration_ms"] = 30
	evs[2]["user_id"] = "anon_" + strings.Repeat("ab", 32)
	evs[3]["event_type"] = "feature_used"
	evs[3]["metadata"] = map[string]any{"feature": "export", "format": "csv"}
	body, _ := json.Marshal(map[string]any{"events": evs, "dropped": 7})

	r := e.post(body)
	if r.Status != 200 || r.Accepted != 4 || r.Duplicates != 0 || len(r.Rejected) != 0 {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	if n := e.storedEvents(); n != 4 {
		t.Fatalf("stored %d events, want 4", n)
	}
	var name string
	var success *bool
	var dur *int64
	var md []byte
	err := e.db.Pool().QueryRow(context.Background(),
		`SELECT name, success, duration_ms, metadata FROM events WHERE project_id = $1 AND event_id = $2`,
		e.projectID, evs[1]["event_id"]).Scan(&name, &success, &dur, &md)
	if err != nil {
		t.Fatal(err)
	}
	if name != "remote add" || success == nil || *success || dur == nil || *dur != 30 {
		t.Fatalf("stored name=%q success=%v duration=%v", name, success, dur)
	}
	var meta map[string]any
	if err := json.Unmarshal(md, &meta); err != nil || meta["args_count"] != 2.0 {
		t.Fatalf("metadata %s", md)
	}
	// Every column as sent.
	var (
		occurred                            time.Time
		session, user, sdk, osName, errKind string
		exit                                *int32
		ci                                  bool
	)
	err = e.db.Pool().QueryRow(context.Background(),
		`SELECT occurred_at, session_id::text, 'anon_' || encode(user_id, 'hex'), sdk_name || '/' || sdk_version,
		        os || '/' || arch || '/' || go_version, exit_code, ci, error_kind
		 FROM events WHERE project_id = $1 AND event_id = $2`, e.projectID, evs[0]["event_id"]).
		Scan(&occurred, &session, &user, &sdk, &osName, &exit, &ci, &errKind)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := time.Parse(time.RFC3339Nano, evs[0]["timestamp"].(string))
	if !occurred.Equal(ts) || session != evs[0]["session_id"] || user != evs[0]["user_id"] ||
		sdk != "telemetry-kit-go/0.1.0" || osName != "linux/amd64/go1.26.8" || exit == nil || *exit != 0 || ci || errKind != "" {
		t.Fatalf("stored %v %s %s %s %s %v %v %q", occurred, session, user, sdk, osName, exit, ci, errKind)
	}
	if got := e.count(`SELECT coalesce(sum(events), 0) FROM daily_event_counts WHERE project_id = $1 AND name = 'remote add' AND success`); got != 2 {
		t.Fatalf("successful remote add: %d, want 2", got)
	}
	if got := e.count(`SELECT coalesce(sum(duration_ms_sum), 0) FROM daily_event_counts WHERE project_id = $1 AND success = false`); got != 30 {
		t.Fatalf("duration sum %d, want 30", got)
	}
	if got := e.count(`SELECT coalesce(sum(events), 0) FROM daily_event_counts WHERE project_id = $1 AND event_type = 'feature_used' AND name = 'export' AND success IS NULL`); got != 1 {
		t.Fatalf("feature_used export: %d, want 1", got)
	}
	if got := e.count(`SELECT count(*) FROM daily_users WHERE project_id = $1`); got != 2 {
		t.Fatalf("daily users %d, want 2", got)
	}
	if got := e.count(`SELECT dropped FROM daily_data_loss WHERE project_id = $1`); got != 7 {
		t.Fatalf("data loss %d, want 7", got)
	}
	if got := e.count(`SELECT count(*) FROM daily_users WHERE project_id = $1
		AND service_version = '1.4.2' AND os = 'linux' AND arch = 'amd64' AND NOT ci`); got != 2 {
		t.Fatalf("daily users with version and platform: %d, want 2", got)
	}

	// The same request again: all duplicates, nothing counted twice, and
	// its "dropped" is taken for a replay.
	r = e.post(body)
	if r.Status != 200 || r.Accepted != 0 || r.Duplicates != 4 {
		t.Fatalf("replay: got %d %s", r.Status, r.Body)
	}
	if n, m := e.storedEvents(), e.rolledUpEvents(); n != 4 || m != 4 {
		t.Fatalf("after replay: %d stored, %d in rollups, want 4 and 4", n, m)
	}
	if got := e.count(`SELECT count(*) FROM daily_users WHERE project_id = $1`); got != 2 {
		t.Fatalf("daily users %d after replay, want 2", got)
	}
	if got := e.count(`SELECT dropped FROM daily_data_loss WHERE project_id = $1`); got != 7 {
		t.Fatalf("data loss %d after replay, want 7", got)
	}
}

func TestIngestPartialSuccess(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	good, bad, dup := event(), event(), event()
	delete(bad, "user_id")
	dup["event_id"] = good["event_id"]
	r := e.post(batch(good, bad, dup, event()))
	if r.Status != 200 || r.Accepted != 2 || r.Duplicates != 0 {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	want := []wire.Rejection{{Index: 1, Reason: "missing_field:user_id"}, {Index: 2, Reason: "duplicate_in_batch"}}
	if len(r.Rejected) != 2 || r.Rejected[0] != want[0] || r.Rejected[1] != want[1] {
		t.Fatalf("rejected %+v, want %+v", r.Rejected, want)
	}
	if n := e.storedEvents(); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
}

func TestIngestGzip(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	evs := make([]map[string]any, 50)
	for i := range evs {
		evs[i] = event()
	}
	zw.Write(batch(evs...))
	zw.Close()
	r := e.post(buf.Bytes(), "Content-Encoding", "gzip")
	if r.Status != 200 || r.Accepted != 50 {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
}

// Concurrent requests carrying the same events store each event once and
// count it once: every copy but one is reported as a duplicate.
func TestConcurrentReplaysStoreOnce(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	const clients, rounds, size = 6, 5, 100
	total := 0
	for round := 0; round < rounds; round++ {
		evs := make([]map[string]any, size)
		for i := range evs {
			evs[i] = event()
		}
		// Each client sends the same events in a different order, with
		// some of its own.
		var wg sync.WaitGroup
		results := make([]response, clients)
		start := make(chan struct{})
		for c := 0; c < clients; c++ {
			mine := append([]map[string]any(nil), evs[c:]...)
			mine = append(mine, evs[:c]...)
			mine = append(mine, event())
			body := batch(mine...)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[c] = e.post(body)
			}()
		}
		close(start)
		wg.Wait()
		accepted, dups := 0, 0
		for _, r := range results {
			if r.Status != 200 {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			accepted += r.Accepted
			dups += r.Duplicates
		}
		if accepted != size+clients || dups != (clients-1)*size {
			t.Fatalf("round %d: accepted %d duplicates %d, want %d and %d", round, accepted, dups, size+clients, (clients-1)*size)
		}
		total += size + clients
	}
	if n, m := e.storedEvents(), e.rolledUpEvents(); n != int64(total) || m != int64(total) {
		t.Fatalf("%d stored, %d in rollups, want %d", n, m, total)
	}
}

func TestRevokedKeyStopsAtOnce(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	if r := e.post(batch(event())); r.Status != 200 {
		t.Fatalf("before revoke: %d %s", r.Status, r.Body)
	}
	if err := e.db.RevokeKey(context.Background(), e.writeID); err != nil {
		t.Fatal(err)
	}
	if r := e.post(batch(event())); r.Status != 403 {
		t.Fatalf("after revoke: %d %s, want 403", r.Status, r.Body)
	}
	if n := e.storedEvents(); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
}

// The server remembers valid keys between requests, but a revocation still
// takes effect with the very next request: that request is refused and
// stores nothing, whatever its body.
func TestRevokedKeyWarmCache(t *testing.T) {
	for _, next := range []struct {
		name string
		body []byte
	}{
		{"valid events", []byte(`{"events": [` + string(mustJSON(event())) + `], "dropped": 3}`)},
		{"dropped only", []byte(`{"events": [{"event_id": "x"}], "dropped": 3}`)},
		{"invalid events only", batch(map[string]any{"event_id": "x"})},
		{"not JSON", []byte(`{"events": [`)},
	} {
		t.Run(next.name, func(t *testing.T) {
			e := newEnv(t, httpapi.Config{})
			for i := 0; i < 2; i++ {
				if r := e.post(batch(event())); r.Status != 200 || r.Accepted != 1 {
					t.Fatalf("before revoke: %d %s", r.Status, r.Body)
				}
			}
			if err := e.db.RevokeKey(context.Background(), e.writeID); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if r := e.post(next.body); r.Status != 403 {
					t.Fatalf("request %d after revoke: %d %s, want 403", i+1, r.Status, r.Body)
				}
			}
			if n, m := e.storedEvents(), e.rolledUpEvents(); n != 2 || m != 2 {
				t.Fatalf("%d stored, %d in rollups, want 2 and 2", n, m)
			}
			if d := e.count(`SELECT coalesce(sum(dropped), 0) FROM daily_data_loss WHERE project_id = $1`); d != 0 {
				t.Fatalf("dropped %d, want 0", d)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestReadKeyCannotIngest(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	r := e.post(batch(event()), "Authorization", "Bearer "+e.readKey)
	if r.Status != 403 {
		t.Fatalf("got %d %s, want 403", r.Status, r.Body)
	}
}

// countingStore is the package's store, counting its key lookups.
type countingStore struct {
	*postgres.DB
	lookups atomic.Int64
}

func (c *countingStore) KeyByHash(ctx context.Context, hash [32]byte) (server.Key, error) {
	c.lookups.Add(1)
	return c.DB.KeyByHash(ctx, hash)
}

// Past its burst a key gets 429 with Retry-After; the refused request
// stores nothing and costs the database nothing, not even a key lookup.
func TestRateLimit(t *testing.T) {
	store := &countingStore{DB: testStore(t)}
	e := newEnv(t, httpapi.Config{RateLimit: 0.5, RateBurst: 2, Store: store})
	for i := 0; i < 2; i++ {
		if r := e.post(batch(event())); r.Status != 200 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	before := store.lookups.Load()
	r := e.post(batch(event()))
	if r.Status != 429 {
		t.Fatalf("third request: %d %s, want 429", r.Status, r.Body)
	}
	if n := store.lookups.Load() - before; n != 0 {
		t.Fatalf("the refused request looked its key up %d time(s)", n)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2", r.Header.Get("Retry-After"))
	}
	if n := e.storedEvents(); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
}

// Requests with keys the server has not seen are looked up in the
// database at most KeyLookupRate times a second (with a burst of twice
// that), for all clients together: a flood of made-up keys gets 429 and
// costs no lookup, while a key already known keeps working.
func TestKeyLookupRate(t *testing.T) {
	store := &countingStore{DB: testStore(t)}
	e := newEnv(t, httpapi.Config{Store: store, KeyLookupRate: 0.01})
	if r := e.post(batch(event())); r.Status != 200 {
		t.Fatalf("known key: %d %s", r.Status, r.Body)
	}
	// The burst is 1. The known key's request used it unless the key was
	// already in memory (the key watcher may have loaded it first); then
	// the first made-up key is looked up and refused. Either way the next
	// token comes in 100 s.
	made, _, _ := server.NewKey(server.KeyWrite)
	if r := e.post(batch(event()), "Authorization", "Bearer "+made); r.Status != 429 && r.Status != 401 {
		t.Fatalf("first made-up key: %d %s", r.Status, r.Body)
	}
	before := store.lookups.Load()
	statuses := map[int]int{}
	for range 10 {
		made, _, _ := server.NewKey(server.KeyWrite)
		r := e.post(batch(event()), "Authorization", "Bearer "+made)
		statuses[r.Status]++
		if r.Status == 429 && r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if statuses[429] != 10 {
		t.Fatalf("made-up keys: %v, want ten 429", statuses)
	}
	if n := store.lookups.Load() - before; n != 0 {
		t.Fatalf("made-up keys cost %d lookups", n)
	}
	if r := e.post(batch(event())); r.Status != 200 {
		t.Fatalf("known key during the flood: %d %s", r.Status, r.Body)
	}
}

// With the database unreachable, nothing gets a 2xx: ingest and readiness
// answer 503 with Retry-After, liveness stays up.
func TestDatabaseDownIs503(t *testing.T) {
	down, err := postgres.Open(context.Background(), postgres.Config{
		URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	e := newEnv(t, httpapi.Config{Store: down, RetryAfter: 7 * time.Second})
	r := e.post(batch(event()))
	if r.Status != 503 || r.Header.Get("Retry-After") != "7" {
		t.Fatalf("ingest: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if code, _ := e.get("/readyz"); code != 503 {
		t.Fatalf("readyz: %d, want 503", code)
	}
	if code, _ := e.get("/healthz"); code != 200 {
		t.Fatalf("healthz: %d, want 200", code)
	}
}

// A database that fails while storing a batch (here a lock held on events
// past the request's deadline) gets 503 with Retry-After, not a 2xx;
// nothing of the batch is stored, and the client's retry stores it once.
func TestStoreFailureIs503(t *testing.T) {
	e := newEnv(t, httpapi.Config{RetryAfter: 7 * time.Second, RequestTimeout: 2 * time.Second})
	ctx := context.Background()
	// A first batch, so that the write key is known to the server and the
	// failing request reaches the store.
	if r := e.post(batch(event())); r.Status != 200 {
		t.Fatalf("first batch: %d %s", r.Status, r.Body)
	}
	locker, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE events IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	ev := event()
	r := e.post(batch(ev))
	tx.Rollback(ctx)
	if r.Status != 503 || r.Header.Get("Retry-After") != "7" {
		t.Fatalf("while the store fails: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if n := e.storedEvents(); n != 1 {
		t.Fatalf("%d events stored after the failure, want 1", n)
	}
	r = e.post(batch(ev))
	if r.Status != 200 || r.Accepted != 1 || r.Duplicates != 0 {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	if n := e.storedEvents(); n != 2 {
		t.Fatalf("%d events stored after the retry, want 2", n)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	bad := event()
	bad["timestamp"] = "2999-01-01T00:00:00.000Z"
	ev := event()
	e.post(batch(ev, bad))
	e.post(batch(ev))
	if code, body := e.get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _ := e.get("/readyz"); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	code, body := e.get("/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		"tk_events_accepted_total 1",
		"tk_events_duplicate_total 1",
		`tk_events_rejected_total{reason="timestamp_in_future"} 1`,
		`tk_http_request_duration_seconds_count{code="200",route="/v1/events"} 2`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A batch that mixes new events with ones already stored stores and counts
// only the new ones.
func TestIngestMixedNewAndKnown(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	known := []map[string]any{event(), event(), event()}
	if r := e.post(batch(known...)); r.Accepted != 3 {
		t.Fatalf("first: %s", r.Body)
	}
	mac := event()
	mac["user_id"] = "anon_" + strings.Repeat("cd", 32)
	mac["env"] = map[string]any{"os": "darwin", "arch": "arm64", "ci": true, "ci_name": "github_actions"}
	mixed := append([]map[string]any{event(), mac}, known...)
	r := e.post(batch(mixed...))
	if r.Status != 200 || r.Accepted != 2 || r.Duplicates != 3 {
		t.Fatalf("mixed: %d %s", r.Status, r.Body)
	}
	if n, m := e.storedEvents(), e.rolledUpEvents(); n != 5 || m != 5 {
		t.Fatalf("%d stored, %d in rollups, want 5 and 5", n, m)
	}
	if got := e.count(`SELECT count(*) FROM daily_users WHERE project_id = $1 AND os = 'darwin' AND arch = 'arm64' AND ci`); got != 1 {
		t.Fatalf("darwin users: %d, want 1", got)
	}
}

// flagCounts returns the flag rollup of e's project, summed over shards,
// by "command|flag|value" ("-" for no value).
func (e *env) flagCounts(t *testing.T, sql string) map[string]int64 {
	t.Helper()
	rows, err := e.db.Pool().Query(context.Background(), sql, e.projectID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for rows.Next() {
		var command, flag string
		var value *string
		var n int64
		if err := rows.Scan(&command, &flag, &value, &n); err != nil {
			t.Fatal(err)
		}
		v := "-"
		if value != nil {
			v = *value
		}
		got[command+"|"+flag+"|"+v] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

const flagRollupSQL = `SELECT command, flag, value, sum(events)::bigint FROM daily_flag_counts
	WHERE project_id = $1 GROUP BY 1, 2, 3`

// flagsFromEventsSQL counts the flags of the stored events by the rule of
// docs/server.md, in SQL, independently of the server's code.
const flagsFromEventsSQL = `SELECT e.name, f.flag,
       CASE WHEN jsonb_typeof(e.metadata->'flag_values'->f.flag) = 'string'
             AND char_length(e.metadata->'flag_values'->>f.flag) BETWEEN 1 AND 64
            THEN e.metadata->'flag_values'->>f.flag END, count(*)
	FROM events e CROSS JOIN LATERAL (
	    SELECT t.elem #>> '{}' AS flag
	    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.metadata->'flags') = 'array'
	                                   THEN e.metadata->'flags' ELSE '[]' END) WITH ORDINALITY AS t(elem, ord)
	    WHERE jsonb_typeof(t.elem) = 'string' AND char_length(t.elem #>> '{}') BETWEEN 1 AND 64
	    GROUP BY 1 ORDER BY min(t.ord) LIMIT 32) f
	WHERE e.project_id = $1 AND e.event_type = 'command_executed'
	GROUP BY 1, 2, 3`

// The flag rollup answers "does anyone use --watch?" and, for a flag whose
// value the author collects, "which value is most used?": it counts each
// stored command run once per flag it set, through the COPY path, the
// statement path (a batch with known events) and replays alike.
func TestIngestFlagRollup(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	withFlags := func(command string, flags any, values any) map[string]any {
		ev := event()
		md := ev["metadata"].(map[string]any)
		md["command"] = command
		md["flags"] = flags
		if values != nil {
			md["flag_values"] = values
		}
		return ev
	}
	long := strings.Repeat("x", wire.MaxFlagChars)
	many := make([]string, wire.MaxRollupFlags+5)
	for i := range many {
		many[i] = "f" + strconv.Itoa(i)
	}
	first := []map[string]any{
		withFlags("build", []string{"watch", "output"}, map[string]any{"output": "json"}),
		withFlags("build", []string{"watch"}, nil),
		withFlags("build", []any{"watch", "watch", "", 7, nil, long, long + "y"}, map[string]any{long: long + "y"}),
		withFlags("build", []string{"output"}, map[string]any{"output": "yaml", "watch": "ignored"}),
		withFlags("serve", "watch", nil),    // not an array: not counted
		withFlags("serve", many, nil),       // only the first wire.MaxRollupFlags
		withFlags("serve", []string{}, nil), // no flags
	}
	feature := event()
	feature["event_type"] = "feature_used"
	feature["metadata"] = map[string]any{"feature": "export", "flags": []string{"watch"}}
	first = append(first, feature) // not a command: not counted

	if r := e.post(batch(first...)); r.Status != 200 || r.Accepted != len(first) {
		t.Fatalf("first batch: %d %s", r.Status, r.Body)
	}
	want := map[string]int64{
		"build|watch|-":        3,
		"build|output|json":    1,
		"build|output|yaml":    1,
		"build|" + long + "|-": 1,
	}
	for _, f := range many[:wire.MaxRollupFlags] {
		want["serve|"+f+"|-"] = 1
	}
	check := func(step string) {
		t.Helper()
		got := e.flagCounts(t, flagRollupSQL)
		if !maps.Equal(got, want) {
			t.Fatalf("%s: flag rollup\n got %v\nwant %v", step, got, want)
		}
		if fromEvents := e.flagCounts(t, flagsFromEventsSQL); !maps.Equal(fromEvents, want) {
			t.Fatalf("%s: flags counted from the stored events\n got %v\nwant %v", step, fromEvents, want)
		}
	}
	check("after the first batch")

	// Known events with new ones: the statement path counts only the new.
	second := append([]map[string]any{
		withFlags("build", []string{"watch", "output"}, map[string]any{"output": "json"}),
	}, first[:3]...)
	if r := e.post(batch(second...)); r.Status != 200 || r.Accepted != 1 || r.Duplicates != 3 {
		t.Fatalf("mixed batch: %d %s", r.Status, r.Body)
	}
	want["build|watch|-"]++
	want["build|output|json"]++
	check("after a batch with known events")

	// A replay of everything counts nothing.
	if r := e.post(batch(append(first, second...)...)); r.Status != 200 || r.Accepted != 0 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	check("after a replay")
}
