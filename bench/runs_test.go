package bench

import (
	"bytes"
	"os"
	"path/filepath"
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
