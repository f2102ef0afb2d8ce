package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
	"github.com/telemetry-kit/telemetry-kit/server/synth"
)

// BenchmarkReplicas ingests the same workload through 1, 2 and 3
// tk-server processes sharing one database, the clients spread over them
// as a load balancer would, and reports the rate and the CPU per event of
// the tk-server processes together and of their database sessions, for
// the sizing guide (docs/self-hosting.md). Run it with -benchtime=1x;
// TK_BENCH_EVENTS and TK_BENCH_CLIENTS change the workload (default
// 100,000 varied events from the synthetic history, 8 clients).
func BenchmarkReplicas(b *testing.B) {
	total := envInt("TK_BENCH_EVENTS", 100000)
	clients := envInt("TK_BENCH_CLIENTS", 8)
	ctx := context.Background()
	bin := buildServer(b)
	g, err := synth.New(synth.Config{Seed: 1, Users: 5000, Days: 30, Events: total})
	if err != nil {
		b.Fatal(err)
	}
	var bodies [][]byte
	if err := g.Batches(100, func(body []byte, _ int) error {
		bodies = append(bodies, gzipped(body))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dbURL, drop, err := pgtest.CreateDatabase(ctx, pgtest.ServerURL(), "replicas")
				if err != nil {
					b.Fatal(err)
				}
				var p struct {
					WriteKey string `json:"write_key"`
				}
				var out bytes.Buffer
				if err := run(ctx, []string{"project", "create", "bench", "--json", "--database-url", dbURL}, env(), &out, io.Discard); err != nil {
					b.Fatal(err)
				}
				json.Unmarshal(out.Bytes(), &p)
				var cmds []*exec.Cmd
				var addrs []string
				for r := 0; r < n; r++ {
					addrFile := filepath.Join(b.TempDir(), "addr")
					cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile,
						"--rate-limit", "-1", "--log-level", "warn", "--caps-new-per-day", "10000000")
					cmd.Env = append(os.Environ(), "TK_DATABASE_URL="+dbURL)
					cmd.Stderr = os.Stderr
					if err := cmd.Start(); err != nil {
						b.Fatal(err)
					}
					cmds = append(cmds, cmd)
					addrs = append(addrs, waitFile(b, addrFile))
				}
				conn, err := pgx.Connect(ctx, dbURL)
				if err != nil {
					b.Fatal(err)
				}
				hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}, Timeout: time.Minute}
				serverCPU := func() (d time.Duration) {
					for _, c := range cmds {
						d += procCPU(c.Process.Pid)
					}
					return d
				}
				b.ResetTimer()
				s0, db0 := serverCPU(), cpuTimes(ctx, b, conn, 0).db
				secs, err := sendTo(hc, addrs, p.WriteKey, bodies, clients)
				if err != nil {
					b.Fatal(err)
				}
				s1, db1 := serverCPU(), cpuTimes(ctx, b, conn, 0).db
				b.StopTimer()
				var stored int
				conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&stored)
				if stored != total {
					b.Fatalf("stored %d of %d", stored, total)
				}
				for _, c := range cmds {
					c.Process.Signal(os.Interrupt)
					c.Wait()
				}
				conn.Close(ctx)
				drop()
				per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(total) }
				b.ReportMetric(float64(total)/secs, "events/s")
				b.ReportMetric(per(s1-s0), "server-cpu-µs/event")
				b.ReportMetric(per(db1-db0), "db-cpu-µs/event")
				b.Logf("%d replicas, %d clients: %.0f events/s; CPU per event: tk-server processes %.1f µs, database sessions %.1f µs",
					n, clients, float64(total)/secs, per(s1-s0), per(db1-db0))
			}
		})
	}
}
