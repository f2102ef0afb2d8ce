//go:build linux

package sender_test

import (
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkInvocationWallTime measures what a user of an instrumented CLI
// feels: the wall time of one invocation recording one event, with the
// endpoint healthy, refusing connections, or blackholed (accepting and never
// answering), interleaved in one run, and with no endpoint for reference.
// It reports the median of each and the ratios to healthy. Run it with
//
//	go test -run '^$' -bench InvocationWallTime -benchtime 40x ./internal/sender/
//
// "default" uses the default thresholds (a send is due from 100 events);
// "due-every-run" makes every invocation's send due (SendMinEvents 1), the
// worst case for healthy, which then starts a sender every time.
func BenchmarkInvocationWallTime(b *testing.B) {
	for _, tc := range []struct {
		name      string
		minEvents string
	}{{"default", "100"}, {"due-every-run", "1"}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := newCollector(b)
			envs := map[string]*cliEnv{
				"healthy":    newCLIEnv(b, srv.URL()),
				"refused":    newCLIEnv(b, "http://"+refusedAddr(b)),
				"blackholed": newCLIEnv(b, "http://"+blackhole(b)),
				"off":        newCLIEnv(b, ""),
			}
			order := []string{"healthy", "refused", "blackholed", "off"}
			for _, e := range envs {
				e.extra["TKCLI_MIN_EVENTS"] = tc.minEvents
				e.extra["TKCLI_SENDER_TIMEOUT"] = "30s"
				e.run(1) // warm the page cache and create the files
			}
			times := map[string][]time.Duration{}
			cpu := map[string][]time.Duration{} // the host process's own CPU time
			b.ResetTimer()
			for range b.N {
				for _, name := range order {
					e := envs[name]
					cmd := exec.Command(tkcliPath, "1")
					cmd.Env = e.environ()
					start := time.Now()
					if err := cmd.Run(); err != nil {
						b.Fatal(err)
					}
					times[name] = append(times[name], time.Since(start))
					cpu[name] = append(cpu[name], cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
				}
			}
			med := map[string]float64{}
			for name, ts := range times {
				slices.Sort(ts)
				med[name] = float64(ts[len(ts)/2].Microseconds()) / 1000
				b.ReportMetric(med[name], "ms-median-"+name)
				b.ReportMetric(float64(ts[len(ts)*9/10].Microseconds())/1000, "ms-p90-"+name)
			}
			for name, ts := range cpu {
				slices.Sort(ts)
				b.ReportMetric(float64(ts[len(ts)/2].Microseconds())/1000, "cpu-ms-median-"+name)
			}
			b.ReportMetric(med["refused"]/med["healthy"], "ratio-refused/healthy")
			b.ReportMetric(med["blackholed"]/med["healthy"], "ratio-blackholed/healthy")
			b.ReportMetric(med["healthy"]/med["off"], "ratio-healthy/off")
			b.ReportMetric(float64(len(times["healthy"])), "runs-each")
			for _, e := range envs {
				e.killSenders()
			}
		})
	}
}
