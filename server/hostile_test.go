package server_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server"
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
	e := newEnv(t, server.Config{})
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
	for i := 0; i < server.MaxEvents; i++ {
		evs = append(evs, withDuration(strconv.FormatInt(server.MaxDurationMS, 10)))
	}
	if r := e.post(rawBatch(evs...)); r.Status != 200 || r.Accepted != server.MaxEvents {
		t.Fatalf("largest durations: %d %.300s", r.Status, r.Body)
	}

	// A rollup row whose sums are near the top (as years of a busy tool
	// could make them), and a data-loss counter near the top.
	ctx := context.Background()
	if _, err := e.db.Pool().Exec(ctx, `UPDATE daily_event_counts SET duration_ms_sum = 9223372036854775000
		WHERE project_id = $1`, e.projectID); err != nil {
		t.Fatal(err)
	}
	body := fmt.Appendf(nil, `{"events":[%s],"dropped":%d}`, withDuration("1000"), server.MaxDropped)
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
	body = fmt.Appendf(nil, `{"events":[%s],"dropped":%d}`, valid[0], server.MaxDropped)
	if r := e.post(body); r.Status != 200 || r.Accepted != 1 {
		t.Fatalf("valid event after the poisoning: %d %s", r.Status, r.Body)
	}
	if r := e.post(rawBatch(valid...)); r.Status != 200 || r.Accepted != 1 || r.Duplicates != 1 {
		t.Fatalf("valid event with a known one: %d %s", r.Status, r.Body)
	}
	if got := e.count(`SELECT max(duration_ms_sum) FROM daily_event_counts WHERE project_id = $1`); got != math.MaxInt64 {
		t.Fatalf("saturated sum %d, want %d", got, int64(math.MaxInt64))
	}
	if got := e.count(`SELECT dropped FROM daily_data_loss WHERE project_id = $1`); got != math.MaxInt64 {
		t.Fatalf("saturated data loss %d", got)
	}
	want := int64(server.MaxEvents + 3)
	if n, m := e.storedEvents(), e.rolledUpEvents(); n != want || m != want {
		t.Fatalf("%d events stored, %d in rollups, want %d", n, m, want)
	}
}

// The rollups equal the stored events, summed as numeric, after valid
// traffic with the largest durations accepted.
func TestRollupSumsMatchEvents(t *testing.T) {
	e := newEnv(t, server.Config{})
	var evs []string
	for i := 0; i < 300; i++ {
		d := []int64{0, 1, 12, server.MaxDurationMS}[i%4]
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
