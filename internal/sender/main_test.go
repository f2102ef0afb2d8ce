package sender_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// tkcliPath is the test CLI (testdata/tkcli), built once by TestMain.
var tkcliPath string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tkcli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tkcliPath = filepath.Join(dir, "tkcli")
	if runtime.GOOS == "windows" {
		tkcliPath += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", tkcliPath, "./testdata/tkcli").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test CLI: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// blackhole accepts connections and never reads or answers.
func blackhole(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}
