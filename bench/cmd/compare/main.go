// Command compare runs the SDK's comparative benchmarks and prints each
// result with its ratio to the baseline measured in the same run:
//
//   - library-mode Track against posthog-go's Enqueue (target ≤ 0.5×);
//   - a trivial cobra command that records one event durably against the same
//     command without telemetry, median wall time of -runs runs each
//     (target ≤ 1.3×).
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
	n := flag.String("events", "200000", "events per library-mode benchmark")
	testing.Init()
	flag.Parse()
	// A fixed count: every tracked event is persisted before the next run.
	flag.Set("test.benchtime", *n+"x")
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(runs int) error {
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
	plain, bolt, tracked := filepath.Join(dir, "plain"), filepath.Join(dir, "boltonly"), filepath.Join(dir, "tracked")
	for bin, pkg := range map[string]string{plain: "./trivial/plain", bolt: "./trivial/boltonly", tracked: "./trivial/tracked"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "DO_NOT_TRACK=", "TRIVIAL_TELEMETRY=")
	// Interleaved, so that the machine's load changes every series alike.
	bins := []string{plain, bolt, tracked}
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
	mp, mb, mt := median(times[0]), median(times[1]), median(times[2])
	fmt.Printf("## CLI mode: trivial cobra command, median of %d runs\n", runs)
	fmt.Printf("%-40s %10v\n", "without telemetry", mp.Round(time.Microsecond))
	fmt.Printf("%-40s %10v  %.2fx\n", "bare bbolt open + put + fsync (floor)", mb.Round(time.Microsecond), float64(mb)/float64(mp))
	fmt.Printf("%-40s %10v  %.2fx (target <= 1.3x)\n", "telemetry-kit, one durable event", mt.Round(time.Microsecond), float64(mt)/float64(mp))
	fmt.Printf("telemetry-kit / floor: %.2fx\n", float64(mt)/float64(mb))
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
