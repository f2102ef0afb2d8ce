//go:build !windows && !plan9 && !solaris && !aix

package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTryFlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if ok, err := TryFlock(a); !ok || err != nil {
		t.Fatalf("first TryFlock = %v, %v", ok, err)
	}
	if ok, err := TryFlock(b); ok || err != nil {
		t.Fatalf("TryFlock while held = %v, %v; want false, nil", ok, err)
	}
	a.Close()
	if ok, err := TryFlock(b); !ok || err != nil {
		t.Fatalf("TryFlock after release = %v, %v", ok, err)
	}
}
