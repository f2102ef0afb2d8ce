//go:build linux || darwin || freebsd

// Package adaptertest holds the tests that the cobra and urfave/cli adapters
// share: each adapter's test calls them with a tool built its way.
package adaptertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/creack/pty"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// Terminal returns the far end of a new pseudo-terminal, for a client's
// stdin and stderr, and a function that closes it and returns everything
// written to it. It skips t where no pseudo-terminal can be had.
func Terminal(t *testing.T) (*os.File, func() string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pseudo-terminal:", err)
	}
	var mu sync.Mutex
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); ptmx.Close() })
	return tty, func() string {
		tty.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
}

// RunsThatNeverReturn builds the tool in ./testdata/exittool (its commands
// ok, exit, checkerr, fatal, sigterm and kill end as their names say, each
// with a --force flag) and checks that a command that ends the process
// itself (os.Exit, an exit after printing its error, log.Fatal, SIGTERM,
// kill -9) is still recorded, once, with what was known when it started and
// error_kind "unknown", while the tool's exit status and signal behaviour
// are what they are without telemetry; a command that returns is recorded
// once, with its outcome.
func RunsThatNeverReturn(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "exittool")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/exittool").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "PATH=" + os.Getenv("PATH")}
	run := func(args ...string) (int, syscall.Signal, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			ws := exit.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				return -1, ws.Signal(), string(out)
			}
			return ws.ExitStatus(), 0, string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, 0, string(out)
	}
	for _, c := range []struct {
		cmd    string
		code   int
		signal syscall.Signal
	}{
		{"ok", 0, 0},
		{"exit", 3, 0},
		{"checkerr", 1, 0},
		{"fatal", 1, 0},
		{"sigterm", -1, syscall.SIGTERM},
		{"kill", -1, syscall.SIGKILL},
	} {
		code, sig, out := run(c.cmd, "--force")
		if code != c.code || sig != c.signal {
			t.Errorf("%s: exit %d, signal %v; want %d, %v\n%s", c.cmd, code, sig, c.code, c.signal, out)
		}
	}
	_, _, shown := run("telemetry", "show")
	got := map[string][]wire.Event{}
	for _, line := range strings.Split(strings.TrimSpace(shown), "\n") {
		var ev wire.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("telemetry show: %q: %v", line, err)
		}
		cmd, _ := ev.Metadata["command"].(string)
		got[cmd] = append(got[cmd], ev)
	}
	for _, cmd := range []string{"ok", "exit", "checkerr", "fatal", "sigterm", "kill"} {
		evs := got[cmd]
		if len(evs) != 1 {
			t.Errorf("%s: %d events, want 1", cmd, len(evs))
			continue
		}
		m := evs[0].Metadata
		if flags, _ := m["flags"].([]any); len(flags) != 1 || flags[0] != "force" || !strings.HasPrefix(evs[0].UserID, "anon_") {
			t.Errorf("%s: flags %v, user %q", cmd, m["flags"], evs[0].UserID)
		}
		if cmd == "ok" {
			if m["success"] != true || m["error_kind"] != "" || m["duration_ms"] == nil {
				t.Errorf("ok: %v", m)
			}
			continue
		}
		if m["error_kind"] != "unknown" || m["success"] != nil || m["duration_ms"] != nil || m["exit_code"] != nil {
			t.Errorf("%s: %v, want error_kind unknown without success, duration or exit code", cmd, m)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".cache", "exittool", "runs.log")); len(b) > 64<<10 {
		t.Errorf("runs log of %d bytes after 7 runs", len(b))
	}
}
