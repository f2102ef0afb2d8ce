//go:build linux || darwin || freebsd

package tkurfave_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// A command that ends the process itself (os.Exit or an exit after printing an error in the
// command, log.Fatal, SIGTERM, kill -9) is still recorded, once, with what
// was known when it started and error_kind "unknown"; the tool's exit
// status and its signal behaviour are what they are without telemetry. A
// command that returns is recorded once, with its outcome.
func TestRunsThatNeverReturnAreRecorded(t *testing.T) {
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
	if files, _ := os.ReadDir(filepath.Join(home, ".cache", "exittool", "running")); len(files) != 0 {
		t.Errorf("%d run files left", len(files))
	}
}
