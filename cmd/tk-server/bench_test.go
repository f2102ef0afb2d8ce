package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
	"github.com/telemetry-kit/telemetry-kit/server/synth"
)

// BenchmarkIngestVsCopy measures, in one run on one database, the
// end-to-end ingest rate of a tk-server process (HTTP, gzip-compressed
// 100-event batches as the SDK sends them, several concurrent clients) and
// the rate of a plain binary COPY of the same rows into the same, emptied
// events table. It reports both rates, their ratio and the server's peak
// RSS, and per event the CPU time, minor page faults and WAL bytes of each
// side. The two phases alternate in rounds, each on a slice of the
// workload and an emptied table, in the order HTTP-COPY, COPY-HTTP,
// COPY-HTTP, HTTP-COPY. Run it with -benchtime=1x; TK_BENCH_EVENTS,
// TK_BENCH_CLIENTS, TK_BENCH_ROUNDS and TK_BENCH_BATCH change the workload
// (default 200000 events, 8 clients, 4 rounds, 100 events per request, as
// the SDK sends them), and TK_BENCH_SYNTH=1 sends the synthetic history's
// varied events instead of uniform ones (TK_BENCH_DAYS and TK_BENCH_USERS:
// the days and users it spans, default 30 and 5000), each request with
// the next TK_BENCH_BATCH events of the history, of many users;
// TK_BENCH_SYNTH=sdk sends the same events in the requests the SDK's users
// would send (synth.SDKBatches): each of one user's events, due at
// TK_BENCH_BATCH events or an hour, so mostly a few events each. TK_BENCH_WARM=N
// measures the steady state instead of a first load: before the rounds
// it sends N events of another history of the same days, users and
// distribution (seed 2), and the rounds then empty only the events, so
// that most of their rollup rows and admitted values already exist, as
// they do on any day after its first events.
func BenchmarkIngestVsCopy(b *testing.B) {
	total := envInt("TK_BENCH_EVENTS", 200000)
	clients := envInt("TK_BENCH_CLIENTS", 8)
	rounds := envInt("TK_BENCH_ROUNDS", 4)
	batchSize := envInt("TK_BENCH_BATCH", 100)
	ctx := context.Background()

	bin := buildServer(b)
	dbURL, drop, err := pgtest.CreateDatabase(ctx, pgtest.ServerURL(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer drop()
	var p struct {
		ProjectID int64  `json:"project_id"`
		WriteKey  string `json:"write_key"`
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"project", "create", "bench", "--json", "--database-url", dbURL}, env(), &out, io.Discard); err != nil {
		b.Fatal(err)
	}
	json.Unmarshal(out.Bytes(), &p)

	// The workload: bodies as sent, and the same events decoded for COPY.
	// TK_BENCH_SYNTH=1 takes them from the synthetic history (server/synth:
	// 30 days of 5,000 users, many commands, versions and platforms)
	// instead of the uniform events of newEvents.
	var bodies, warmup [][]byte
	var rows [][]any
	rowAt := []int{0} // rows[rowAt[i]:rowAt[i+1]] are the events of bodies[i]
	next := func() []byte {
		raw, _ := json.Marshal(map[string]any{"events": newEvents(batchSize)})
		return raw
	}
	warmEvents := envInt("TK_BENCH_WARM", 0)
	// TK_BENCH_SYNTH=sdk groups the history's events as the SDK sends
	// them (synth.SDKBatches): each user's own, up to TK_BENCH_BATCH
	// events or an hour's.
	batches := func(g *synth.Generator, fn func(body []byte, events int) error) error {
		if os.Getenv("TK_BENCH_SYNTH") == "sdk" {
			return g.SDKBatches(batchSize, time.Hour, fn)
		}
		return g.Batches(batchSize, fn)
	}
	if os.Getenv("TK_BENCH_SYNTH") != "" {
		end := time.Now().UTC().Truncate(24 * time.Hour)
		g, err := synth.New(synth.Config{Seed: 1, Users: envInt("TK_BENCH_USERS", 5000),
			Days: envInt("TK_BENCH_DAYS", 30), Events: total, End: end})
		if err != nil {
			b.Fatal(err)
		}
		if warmEvents > 0 {
			wg, err := synth.New(synth.Config{Seed: 2, Users: envInt("TK_BENCH_USERS", 5000),
				Days: envInt("TK_BENCH_DAYS", 30), Events: warmEvents, End: end})
			if err != nil {
				b.Fatal(err)
			}
			if err := batches(wg, func(body []byte, _ int) error {
				warmup = append(warmup, gzipped(body))
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		var raws [][]byte
		if err := batches(g, func(body []byte, _ int) error {
			raws = append(raws, bytes.Clone(body))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		next = func() []byte {
			raw := raws[0]
			raws = raws[1:]
			return raw
		}
	}
	if warmEvents > 0 && len(warmup) == 0 {
		for n := 0; n < warmEvents; n += batchSize {
			raw, _ := json.Marshal(map[string]any{"events": newEvents(batchSize)})
			warmup = append(warmup, gzipped(raw))
		}
	}
	for len(rows) < total {
		raw := next()
		dec, err := decode.Batch(raw, time.Now(), 0)
		if err != nil || len(dec.Events) == 0 || len(dec.Rejected) > 0 {
			b.Fatalf("workload: %v %+v", err, dec.Rejected)
		}
		for _, e := range dec.Events {
			rows = append(rows, []any{p.ProjectID, e.EventID, e.Timestamp, e.ServiceName, e.ServiceVersion,
				e.EventType, e.Name, e.Success, e.DurationMS, e.ExitCode, e.ErrorKind, e.UserID[:], e.SessionID,
				e.SDKName, e.SDKVersion, e.OS, e.Arch, e.CI, e.CIName, e.GoVersion, string(e.Metadata)})
		}
		bodies = append(bodies, gzipped(raw))
		rowAt = append(rowAt, len(rows))
	}
	// Requests of other events, to warm up the server and its connections
	// before the first round.
	var warm [][]byte
	for range 2 * clients {
		raw, _ := json.Marshal(map[string]any{"events": newEvents(batchSize)})
		warm = append(warm, gzipped(raw))
	}

	for i := 0; i < b.N; i++ {
		addrFile := filepath.Join(b.TempDir(), "addr")
		cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile,
			"--rate-limit", "-1", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "TK_DATABASE_URL="+dbURL)
		cmd.Env = append(cmd.Env, strings.Fields(os.Getenv("TK_BENCH_SERVER_ENV"))...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		addr := waitFile(b, addrFile)
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			b.Fatal(err)
		}
		truncate := func() {
			tables := `events, daily_event_counts, daily_users, daily_data_loss`
			if warmEvents > 0 {
				tables = `events, daily_data_loss`
			}
			if _, err := conn.Exec(ctx, `TRUNCATE `+tables); err != nil {
				b.Fatal(err)
			}
			conn.Exec(ctx, `CHECKPOINT`)
		}

		tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
		hc := &http.Client{Transport: tr, Timeout: time.Minute}
		columns := []string{"project_id", "event_id", "occurred_at",
			"service_name", "service_version", "event_type", "name", "success", "duration_ms", "exit_code",
			"error_kind", "user_id", "session_id", "sdk_name", "sdk_version", "os", "arch", "ci", "ci_name",
			"go_version", "metadata"}
		// The two phases alternate, a slice of the workload each time, so
		// that a slow stretch of the machine falls on both alike.
		var httpSecs, copySecs float64
		var serverCPU, dbCPU, clientCPU, copyCPU time.Duration
		var serverFaults, dbFaults, copyFaults int64
		var httpWAL, copyWAL int64
		walNow := func() int64 {
			var lsn int64
			if err := conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint`).Scan(&lsn); err != nil {
				b.Fatal(err)
			}
			return lsn
		}
		if _, err := send(hc, addr, p.WriteKey, warm, clients); err != nil {
			b.Fatal(err)
		}
		if len(warmup) > 0 {
			secs, err := send(hc, addr, p.WriteKey, warmup, clients)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("warm-up: %d events in %.2fs", warmEvents, secs)
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, columns, pgx.CopyFromRows(rows[:rowAt[1]])); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for r := 0; r < rounds; r++ {
			lo, hi := r*len(bodies)/rounds, (r+1)*len(bodies)/rounds
			httpPhase := func() {
				truncate()
				cpuStart := cpuTimes(ctx, b, conn, cmd.Process.Pid)
				walStart := walNow()
				clientStart := selfCPU()
				secs, err := send(hc, addr, p.WriteKey, bodies[lo:hi], clients)
				if err != nil {
					b.Fatal(err)
				}
				clientCPU += selfCPU() - clientStart
				cpuEnd := cpuTimes(ctx, b, conn, cmd.Process.Pid)
				httpWAL += walNow() - walStart
				serverCPU += cpuEnd.server - cpuStart.server
				dbCPU += cpuEnd.db - cpuStart.db
				serverFaults += cpuEnd.serverFaults - cpuStart.serverFaults
				dbFaults += cpuEnd.dbFaults - cpuStart.dbFaults
				httpSecs += secs
				var stored int
				conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&stored)
				if want := rowAt[hi] - rowAt[lo]; stored != want {
					b.Fatalf("round %d: stored %d of %d", r, stored, want)
				}
			}
			copyPhase := func() {
				truncate()
				pid := int(conn.PgConn().PID())
				cpuStart, faultStart, walStart := procCPU(pid), procFaults(pid), walNow()
				start := time.Now()
				n, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, columns, pgx.CopyFromRows(rows[rowAt[lo]:rowAt[hi]]))
				copySecs += time.Since(start).Seconds()
				copyCPU += procCPU(pid) - cpuStart
				copyFaults += procFaults(pid) - faultStart
				copyWAL += walNow() - walStart
				if err != nil || int(n) != rowAt[hi]-rowAt[lo] {
					b.Fatalf("copy: %d rows, %v", n, err)
				}
			}
			// ABBA: HTTP first in rounds 0, 3, 4, 7, …, COPY first in the
			// others, so that what the first phase of a round pays (memory
			// the second reuses) falls on both alike.
			if r%4 == 0 || r%4 == 3 {
				httpPhase()
				copyPhase()
			} else {
				copyPhase()
				httpPhase()
			}
		}
		b.StopTimer()
		rss := peakRSS(cmd.Process.Pid)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		conn.Close(ctx)

		httpRate := float64(len(rows)) / httpSecs
		copyRate := float64(len(rows)) / copySecs
		b.ReportMetric(httpRate, "http-events/s")
		b.ReportMetric(copyRate, "copy-rows/s")
		b.ReportMetric(httpRate/copyRate, "ratio")
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(len(rows)) }
		b.ReportMetric(perEvent(serverCPU), "server-cpu-µs/event")
		b.ReportMetric(perEvent(dbCPU), "db-cpu-µs/event")
		b.ReportMetric(perEvent(clientCPU), "client-cpu-µs/event")
		b.ReportMetric(perEvent(copyCPU), "copy-db-cpu-µs/row")
		perK := func(n int64) float64 { return float64(n) * 1000 / float64(len(rows)) }
		b.ReportMetric(perK(serverFaults), "server-faults/kevent")
		b.ReportMetric(perK(dbFaults), "db-faults/kevent")
		b.ReportMetric(perK(copyFaults), "copy-db-faults/krow")
		b.ReportMetric(float64(httpWAL)/float64(len(rows)), "wal-bytes/event")
		b.ReportMetric(float64(copyWAL)/float64(len(rows)), "copy-wal-bytes/row")
		b.Logf("%d events in %d requests, %d clients, %d rounds: HTTP %.0f events/s (%.2fs), COPY %.0f rows/s (%.2fs), ratio %.2f, tk-server peak RSS %.1f MiB, CPU per event: tk-server %.1f µs, its database sessions %.1f µs, clients %.1f µs; the COPY's session %.1f µs per row",
			len(rows), len(bodies), clients, rounds, httpRate, httpSecs, copyRate, copySecs, httpRate/copyRate, float64(rss)/(1<<20),
			perEvent(serverCPU), perEvent(dbCPU), perEvent(clientCPU), perEvent(copyCPU))
	}
}

// send posts bodies to the server at addr from clients concurrent clients
// and returns the seconds it took; every request must get a 200.
func send(hc *http.Client, addr, key string, bodies [][]byte, clients int) (float64, error) {
	return sendTo(hc, []string{addr}, key, bodies, clients)
}

// sendTo is send with the clients spread over servers: client c sends to
// addrs[c % len(addrs)], as a load balancer would spread connections.
func sendTo(hc *http.Client, addrs []string, key string, bodies [][]byte, clients int) (float64, error) {
	work := make(chan []byte)
	var wg sync.WaitGroup
	var failed sync.Once
	var failure error
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := addrs[c%len(addrs)]
			for body := range work {
				req, _ := http.NewRequest("POST", "http://"+addr+"/v1/events", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Content-Encoding", "gzip")
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Do(func() { failure = err })
				}
			}
		}()
	}
	for _, body := range bodies {
		work <- body
	}
	close(work)
	wg.Wait()
	return time.Since(start).Seconds(), failure
}

// gzipped returns raw compressed, as the SDK sends batches.
func gzipped(raw []byte) []byte {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(raw)
	zw.Close()
	return zb.Bytes()
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func waitFile(tb testing.TB, path string) string {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("%s not written", path)
	return ""
}

type cpuTime struct {
	server, db             time.Duration
	serverFaults, dbFaults int64
}

// cpuTimes returns the CPU time (user and system) used so far by the
// tk-server process and by the PostgreSQL sessions of the benchmark
// database other than conn's: the sessions of tk-server's pool. Sessions
// that already ended are not counted.
func cpuTimes(ctx context.Context, b *testing.B, conn *pgx.Conn, serverPID int) cpuTime {
	t := cpuTime{server: procCPU(serverPID), serverFaults: procFaults(serverPID)}
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range pids {
		t.db += procCPU(int(pid))
		t.dbFaults += procFaults(int(pid))
	}
	return t
}

// procStat returns the fields of /proc/PID/stat after the command name
// (which is in parentheses), or nil: the state is field 0, minflt 7,
// utime 11 and stime 12.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	if f := strings.Fields(string(b[i+1:])); len(f) >= 13 {
		return f
	}
	return nil
}

// procCPU returns a process's user and system CPU time from /proc, or 0.
func procCPU(pid int) time.Duration {
	f := procStat(pid)
	if f == nil {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTicks
}

// procFaults returns a process's minor page faults so far from /proc, or 0.
func procFaults(pid int) int64 {
	f := procStat(pid)
	if f == nil {
		return 0
	}
	n, _ := strconv.ParseInt(f[7], 10, 64)
	return n
}

// selfCPU returns the CPU time (user and system) this process used so far.
func selfCPU() time.Duration { return procCPU(os.Getpid()) }

// peakRSS returns a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
