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
// the go command's default) and returns the executable's path.
func Build(dir, name, pkg, cgo string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = os.Environ()
	if cgo != "" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED="+cgo)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Run is one command line to time.
type Run struct {
	Name string
	Path string
	Args []string
	Env  []string
}

// Interleave runs every command once per round, rotating the order each
// round so that none always runs first and the machine's load changes
// every series alike, and returns the wall times of each. The first two
// rounds warm the page cache and are not counted.
func Interleave(runs []Run, rounds int) ([][]time.Duration, error) {
	times := make([][]time.Duration, len(runs))
	for i := range rounds + 2 {
		for k := range runs {
			j := (k + i) % len(runs)
			cmd := exec.Command(runs[j].Path, runs[j].Args...)
			cmd.Env = runs[j].Env
			cmd.Stdout = io.Discard
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("%s %v: %v", runs[j].Path, runs[j].Args, err)
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
