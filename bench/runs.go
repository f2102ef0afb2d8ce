package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// Build builds the package pkg into dir/name with CGO_ENABLED=cgo (empty:
// the go command's default), installs it there as a user's tool is (see
// [Install]) and returns the executable's path.
func Build(dir, name, pkg, cgo string) (string, error) {
	bin := filepath.Join(dir, name)
	linked := bin + ".linked"
	cmd := exec.Command("go", "build", "-o", linked, pkg)
	cmd.Env = os.Environ()
	if cgo != "" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED="+cgo)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, Install(linked, bin)
}

// Install copies the executable src to dst with write calls, as a
// download, cp or go install does, and removes src.
//
// The Go linker writes its output through a memory map. On Linux the
// pages of a file written that way stay in the page cache as small folios,
// and a binary run straight from the linker then starts slower than the
// same bytes written by write calls or read back from disk: on this
// machine kind 4–6% slower for an 11 MiB tool, more for a larger binary
// than a smaller one, which skewed the ratios of a larger instrumented
// binary against a smaller plain one (docs/benchmarks.md). A user runs a
// binary that was downloaded, copied or read from disk, so every timed
// binary is installed this way.
func Install(src, dst string) error {
	if err := copyFile(src, dst); err != nil {
		return err
	}
	return os.Remove(src)
}

// Run is one command line to time.
type Run struct {
	Name string
	Path string
	Args []string
	Env  []string
	// Copies are other installed copies of Path (see [InstallCopies]),
	// run in turn with it.
	Copies []string
}

// InstallCopies installs n-1 more copies of the installed executable
// path, as path.2, path.3, …, and returns their paths.
//
// Where a binary's pages land in the page cache moves its start-up time:
// two copies of one binary, run interleaved, differ by up to 2% on this
// machine kind, as much as the effects measured. Timing each binary
// through several copies averages that out.
func InstallCopies(path string, n int) ([]string, error) {
	var copies []string
	for i := 2; i <= n; i++ {
		dst := fmt.Sprintf("%s.%d", path, i)
		if err := copyFile(path, dst); err != nil {
			return nil, err
		}
		copies = append(copies, dst)
	}
	return copies, nil
}

// copyFile copies src to dst with write calls.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	// Plain writes of 1 MiB: io.Copy of the files themselves would hand
	// the copy to copy_file_range, which may share the source's pages.
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, 1<<20)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Interleave runs every command once per round, rotating the order each
// round so that none always runs first and the machine's load changes
// every series alike, and returns the wall times of each. A command with
// copies runs one of them in turn each round. The first two rounds warm
// the page cache and are not counted.
func Interleave(runs []Run, rounds int) ([][]time.Duration, error) {
	times := make([][]time.Duration, len(runs))
	for i := range rounds + 2 {
		for k := range runs {
			j := (k + i) % len(runs)
			path := runs[j].Path
			if c := runs[j].Copies; len(c) > 0 {
				if n := i % (len(c) + 1); n > 0 {
					path = c[n-1]
				}
			}
			cmd := exec.Command(path, runs[j].Args...)
			cmd.Env = runs[j].Env
			cmd.Stdout = io.Discard
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("%s %v: %v", path, runs[j].Args, err)
			}
			if i >= 2 {
				times[j] = append(times[j], d)
			}
		}
	}
	return times, nil
}

// Median returns the median of ds.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// PairedRatio returns the median, over the rounds of [Interleave], of a's
// time over b's in the same round. Where the machine's speed drifts from
// one stretch of rounds to another, it moves both times of a round alike,
// which the ratio of the medians does not see.
func PairedRatio(a, b []time.Duration) float64 {
	n := min(len(a), len(b))
	if n == 0 {
		return 0
	}
	rs := make([]float64, n)
	for i := range n {
		rs[i] = float64(a[i]) / float64(b[i])
	}
	slices.Sort(rs)
	return rs[n/2]
}
