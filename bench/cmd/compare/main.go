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
	"os/exec"
	"path/filepath"
	"slices"
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
	plain, bolt, app, tracked := filepath.Join(dir, "plain"), filepath.Join(dir, "boltonly"), filepath.Join(dir, "appendonly"), filepath.Join(dir, "tracked")
	for bin, pkg := range map[string]string{plain: "./trivial/plain", bolt: "./trivial/boltonly", app: "./trivial/appendonly", tracked: "./trivial/tracked"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		if cgo != "" {
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "DO_NOT_TRACK=", "TRIVIAL_TELEMETRY=")
	// Interleaved, so that the machine's load changes every series alike.
	bins := []string{plain, bolt, app, tracked}
	times := make([][]time.Duration, len(bins))
	for i := range runs + 2 {
		for j, bin := range bins {
			d, err := timeRun(bin, env)
			if err != nil {
				return err
			}
			if i >= 2 { // the first runs warm the page cache
				times[j] = append(times[j], d)
			}
		}
	}
	mp, mb, ma, mt := median(times[0]), median(times[1]), median(times[2]), median(times[3])
	fmt.Printf("## CLI mode: trivial cobra command, median of %d runs (CGO_ENABLED=%q)\n", runs, cgo)
	fmt.Printf("%-40s %10v\n", "without telemetry", mp.Round(time.Microsecond))
	fmt.Printf("%-40s %10v  %.2fx\n", "bare bbolt open + put + fsync", mb.Round(time.Microsecond), float64(mb)/float64(mp))
	fmt.Printf("%-40s %10v  %.2fx\n", "bare file append + fsync", ma.Round(time.Microsecond), float64(ma)/float64(mp))
	fmt.Printf("%-40s %10v  %.2fx (target <= 1.3x)\n", "telemetry-kit, one durable event", mt.Round(time.Microsecond), float64(mt)/float64(mp))
	return nil
}

func timeRun(bin string, env []string) (time.Duration, error) {
	cmd := exec.Command(bin)
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil || string(out) != "ok\n" {
		return 0, fmt.Errorf("%s: %v: %q", bin, err, out)
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
