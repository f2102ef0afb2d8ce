package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Install leaves the same bytes at dst, executable, and src gone.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "tool.linked"), filepath.Join(dir, "tool")
	want := bytes.Repeat([]byte("\x7fELF binary bytes "), 200000) // larger than one copy buffer
	if err := os.WriteFile(src, want, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Install(src, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("dst holds %d bytes (%v), want the %d of src", len(got), err, len(want))
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("dst mode %v (%v), want executable", fi.Mode(), err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatalf("src still there: %v", err)
	}
}

// InstallCopies makes executable copies beside the binary, and Interleave
// runs them in turn.
func TestCopiesRunInTurn(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	tool := filepath.Join(dir, "tool")
	script := "#!/bin/sh\necho \"$0\" >> " + log + "\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	copies, err := InstallCopies(tool, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(copies) != 2 {
		t.Fatalf("%d copies, want 2", len(copies))
	}
	times, err := Interleave([]Run{{Name: "tool", Path: tool, Copies: copies}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(times[0]) != 4 {
		t.Fatalf("%d times, want 4", len(times[0]))
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range strings.Fields(string(b)) {
		seen[p]++
	}
	for _, p := range append([]string{tool}, copies...) {
		if seen[p] < 2 {
			t.Errorf("%s ran %d times of 6, want 2", p, seen[p])
		}
	}
}

// PairedRatio compares the times of the same round, not the sorted series.
func TestPairedRatio(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	// Rounds 1 and 3 take twice as long for a as for b, round 2 as long:
	// the median of the rounds' ratios is 2, while the medians of the two
	// series are both 6 ms.
	a, b := ms(2, 6, 20), ms(1, 6, 10)
	if got := PairedRatio(a, b); got != 2 {
		t.Errorf("PairedRatio = %v, want 2", got)
	}
	if got := float64(Median(a)) / float64(Median(b)); got != 1 {
		t.Errorf("ratio of the medians = %v, want 1 (the test's premise)", got)
	}
	if got := PairedRatio(nil, b); got != 0 {
		t.Errorf("PairedRatio of no rounds = %v, want 0", got)
	}
}
