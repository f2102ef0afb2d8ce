// Command compare runs the SDK's comparative benchmarks and prints each
// result with its ratio to the baseline measured in the same run:
//
//   - library-mode Track against posthog-go's Enqueue (target ≤ 0.5×);
//   - a trivial cobra command that records one event durably against the same
//     command without telemetry, median wall time of -runs runs each
//     (target ≤ 1.3×), with two references: the same command plus a bare
//     bbolt write, and plus a bare file append, each with its fsync.
//
// Run it from the bench module: go run ./cmd/compare
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bench "github.com/telemetry-kit/telemetry-kit/bench"
)

func main() {
	runs := flag.Int("runs", 41, "invocations of each CLI binary")
	cgo := flag.String("cgo", "", "CGO_ENABLED for building the CLI binaries (empty: the go command's default)")
	n := flag.String("events", "200000", "events per library-mode benchmark")
	testing.Init()
	flag.Parse()
	// A fixed count: every tracked event is persisted before the next run.
	flag.Set("test.benchtime", *n+"x")
	if err := run(*runs, *cgo); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(runs int, cgo string) error {
	tk := testing.Benchmark(bench.TelemetryKitTrack)
	ph := testing.Benchmark(bench.PostHogEnqueue)
	fmt.Println("## Library mode: one event")
	fmt.Printf("%-32s %10s %8s %10s\n", "", "ns/op", "allocs", "B/op")
	fmt.Printf("%-32s %10d %8d %10d\n", "telemetry-kit Track", tk.NsPerOp(), tk.AllocsPerOp(), tk.AllocedBytesPerOp())
	fmt.Printf("%-32s %10d %8d %10d\n", "posthog-go Enqueue", ph.NsPerOp(), ph.AllocsPerOp(), ph.AllocedBytesPerOp())
	fmt.Printf("ratio telemetry-kit / posthog-go: %.2fx (target <= 0.5x)\n\n", float64(tk.NsPerOp())/float64(ph.NsPerOp()))

	dir, err := os.MkdirTemp("", "tk-compare")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var bins [4]string
	for k, pkg := range []string{"plain", "boltonly", "appendonly", "tracked"} {
		if bins[k], err = bench.Build(dir, pkg, "./trivial/"+pkg, cgo); err != nil {
			return err
		}
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "DO_NOT_TRACK=", "TRIVIAL_TELEMETRY=")
	var runList []bench.Run
	for _, bin := range bins {
		runList = append(runList, bench.Run{Path: bin, Env: env})
	}
	times, err := bench.Interleave(runList, runs)
	if err != nil {
		return err
	}
	mp, mb, ma, mt := bench.Median(times[0]), bench.Median(times[1]), bench.Median(times[2]), bench.Median(times[3])
	fmt.Printf("## CLI mode: trivial cobra command, median of %d runs (CGO_ENABLED=%q)\n", runs, cgo)
	fmt.Printf("%-40s %10v\n", "without telemetry", mp.Round(time.Microsecond))
	fmt.Printf("%-40s %10v  %.2fx\n", "bare bbolt open + put + fsync", mb.Round(time.Microsecond), float64(mb)/float64(mp))
	fmt.Printf("%-40s %10v  %.2fx\n", "bare file append + fsync", ma.Round(time.Microsecond), float64(ma)/float64(mp))
	fmt.Printf("%-40s %10v  %.2fx (target <= 1.3x)\n", "telemetry-kit, one durable event", mt.Round(time.Microsecond), float64(mt)/float64(mp))
	return nil
}
