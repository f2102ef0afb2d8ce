//go:build linux || darwin || freebsd

package privacy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// lockedBuffer collects what the child writes to the terminal.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// childEnviron is this process's environment without anything that would
// change the decision (CI variables, DO_NOT_TRACK, *_TELEMETRY).
func childEnviron(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		skip := name == "CI" || name == "DO_NOT_TRACK" || strings.Contains(name, "TELEMETRY")
		for _, v := range ciVars {
			skip = skip || name == v.env
		}
		if !skip {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

type ptyRun struct {
	terminal string // everything the child wrote to the terminal
	stdout   string
}

// runPromptChild runs the test binary as a child process calling Ensure.
// Its stdin and/or stderr are a pseudo-terminal; answer, if not empty, is
// typed once the question appears.
func runPromptChild(t *testing.T, dir string, stdinTTY, stderrTTY bool, answer string, env ...string) ptyRun {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal available: %v", err)
	}
	defer ptmx.Close()
	var screen lockedBuffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()

	cmd := exec.Command(os.Args[0])
	cmd.Env = childEnviron(append([]string{childEnv + "=ensure", "CONSENT_TEST_DIR=" + dir}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	if stdinTTY {
		cmd.Stdin = tty
	} else {
		// A pipe that is never written nor closed: reading it would block.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		cmd.Stdin = r
	}
	if stderrTTY {
		cmd.Stderr = tty
	} else {
		cmd.Stderr = &stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds its own copy

	if answer != "" {
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(screen.String(), "[y/N]") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the question never appeared; terminal: %q", screen.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := ptmx.Write([]byte(answer)); err != nil {
			t.Fatal(err)
		}
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("child: %v; stderr %q; terminal %q", err, stderr.String(), screen.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child blocked; terminal %q", screen.String())
	}
	select {
	case <-readDone:
	case <-time.After(2 * time.Second): // some systems do not report the hang-up
	}
	if !stderrTTY && stderr.Len() > 0 {
		t.Errorf("child wrote to a non-terminal stderr: %q", stderr.String())
	}
	return ptyRun{terminal: screen.String(), stdout: stdout.String()}
}

func wantResult(t *testing.T, r ptyRun, enabled bool, source Source) {
	t.Helper()
	want := fmt.Sprintf("RESULT enabled=%v source=%d\n", enabled, int(source))
	if r.stdout != want {
		t.Fatalf("child printed %q, want %q; terminal %q", r.stdout, want, r.terminal)
	}
}

func TestPromptOnRealTerminal(t *testing.T) {
	t.Run("y enables, and the question is asked once", func(t *testing.T) {
		dir := t.TempDir()
		r := runPromptChild(t, dir, true, true, "y\r")
		wantResult(t, r, true, SourceUser)
		if n := strings.Count(r.terminal, "[y/N]"); n != 1 {
			t.Fatalf("question shown %d times: %q", n, r.terminal)
		}
		for _, want := range []string{"pty-tool would like to collect anonymous usage data", "`pty-tool telemetry disable`"} {
			if !strings.Contains(r.terminal, want) {
				t.Errorf("question lacks %q: %q", want, r.terminal)
			}
		}
		if rec := readRecord(t, dir); rec.Decision != "enabled" || rec.Via != viaPrompt {
			t.Fatalf("stored %+v", rec)
		}
		again := runPromptChild(t, dir, true, true, "")
		wantResult(t, again, true, SourceUser)
		if strings.Contains(again.terminal, "[y/N]") {
			t.Fatalf("asked a second time: %q", again.terminal)
		}
	})
	t.Run("plain Enter keeps it off, and is remembered", func(t *testing.T) {
		dir := t.TempDir()
		r := runPromptChild(t, dir, true, true, "\r")
		wantResult(t, r, false, SourceUser)
		if rec := readRecord(t, dir); rec.Decision != "disabled" {
			t.Fatalf("stored %+v", rec)
		}
		again := runPromptChild(t, dir, true, true, "")
		wantResult(t, again, false, SourceUser)
		if strings.Contains(again.terminal, "[y/N]") {
			t.Fatalf("asked a second time: %q", again.terminal)
		}
	})
	for _, tc := range []struct {
		name             string
		stdinTTY, errTTY bool
		env              []string
	}{
		{"stdin not a terminal", false, true, nil},
		{"stderr not a terminal", true, false, nil},
		{"in CI", true, true, []string{"CI=true"}},
	} {
		t.Run(tc.name+": nothing is asked", func(t *testing.T) {
			dir := t.TempDir()
			r := runPromptChild(t, dir, tc.stdinTTY, tc.errTTY, "", tc.env...)
			wantResult(t, r, false, SourceNoTTY)
			if strings.Contains(r.terminal, "[y/N]") {
				t.Fatalf("asked: %q", r.terminal)
			}
			if _, err := os.Stat(filepath.Join(dir, consentFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a decision was stored: %v", err)
			}
		})
	}
}
