package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
