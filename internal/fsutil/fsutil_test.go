package fsutil

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFileMatchesOS(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 511, 512, 513, 4096, 100_000} {
		path := filepath.Join(dir, "f")
		want := bytes.Repeat([]byte{'x'}, size)
		if err := os.WriteFile(path, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: ReadFile = %d bytes, %v", size, len(got), err)
		}
	}
	// A file whose size the system reports as 0 but which has content.
	if got, err := ReadFile("/proc/self/status"); err == nil && len(got) == 0 {
		t.Fatal("ReadFile of /proc/self/status is empty")
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestOpenFileAppendsAndCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	for range 2 {
		f, err := OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("ab")); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != 4 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat = %v, %v", fi, err)
	}
	if _, err := OpenFile(filepath.Join(path, "x"), os.O_RDONLY, 0); err == nil {
		t.Fatal("opening a path under a file succeeded")
	}
}
