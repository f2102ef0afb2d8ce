package examples_test

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// minPairs is the least number of runs of each build the overhead
// benchmark times, whatever b.N is.
const minPairs = 21

// BenchmarkCLIOverhead compares, for each example tool, the wall time of a
// trivial command (`build`) run as a process by the instrumented binary and
// by the same tree built with -tags notelemetry. The two are run
// alternately, and the benchmark reports the median of each and their
// ratio: the cost of one instrumented run, mostly one durable local write.
// It also reports the instrumented binary's time with DO_NOT_TRACK=1, which
// records nothing: what remains is the cost of the larger binary and of
// starting the client.
//
// Each tool is built twice: as the go command builds it by default here
// (cgo on: a program that imports package net, as the SDK's sender does
// through net/http, is then linked dynamically against the C library), and
// with CGO_ENABLED=0, as release binaries are often built, where both
// builds are static.
//
//	go test -run '^$' -bench CLIOverhead ./examples/
func BenchmarkCLIOverhead(b *testing.B) {
	for _, build := range []struct{ name, cgo string }{{"default", ""}, {"cgo-off", "0"}} {
		for _, tool := range tools {
			b.Run(tool+"/"+build.name, func(b *testing.B) { benchOverhead(b, tool, build.cgo) })
		}
	}
}

func benchOverhead(b *testing.B, tool, cgo string) {
	inst := buildBinary(b, tool, "", cgo)
	plain := buildBinary(b, tool, "notelemetry", cgo)
	dir := b.TempDir()
	env := os.Environ()
	isolate(func(k, v string) { env = append(env, k+"="+v) }, dir)
	dnt := append(slices.Clone(env), "DO_NOT_TRACK=1")
	runEnv := func(bin string, env []string) time.Duration {
		cmd := exec.Command(bin, "build", "--production", "web")
		cmd.Env, cmd.Dir = env, dir
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s build: %v\n%s", bin, err, out)
		}
		return time.Since(start)
	}
	runOnce := func(bin string) time.Duration { return runEnv(bin, env) }
	// Warm up both: page cache, the notice, the queue file.
	runOnce(inst)
	runOnce(plain)
	n := max(b.N, minPairs)
	var ti, tp, td []time.Duration
	b.ResetTimer()
	for i := range n {
		if i%2 == 0 {
			ti = append(ti, runOnce(inst))
			tp = append(tp, runOnce(plain))
			td = append(td, runEnv(inst, dnt))
		} else {
			td = append(td, runEnv(inst, dnt))
			tp = append(tp, runOnce(plain))
			ti = append(ti, runOnce(inst))
		}
	}
	b.StopTimer()
	mi, mp := median(ti), median(tp)
	b.ReportMetric(float64(mi.Microseconds())/1000, "ms-instrumented")
	b.ReportMetric(float64(mp.Microseconds())/1000, "ms-plain")
	// The instrumented binary with DO_NOT_TRACK=1: starting the
	// bigger binary and the client, without the write.
	b.ReportMetric(float64(median(td).Microseconds())/1000, "ms-dnt")
	b.ReportMetric(float64(mi)/float64(mp), "ratio")
	b.ReportMetric(float64(n), "runs")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
