//go:build linux || darwin || freebsd

package tkurfave_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	tkurfave "github.com/telemetry-kit/telemetry-kit/adapters/urfave"
	"github.com/telemetry-kit/telemetry-kit/consent"
)

// A shell's completion request (the app run with urfave/cli's completion
// flag last, when the user presses TAB) records nothing and neither prints
// the opt-out notice nor marks it as shown, even with stderr on a
// terminal: the user's first real command on the terminal shows it.
func TestCompletionRequestLeavesTheNotice(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pseudo-terminal:", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	var term bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&term, ptmx); close(done) }()

	e := newEnv(t, nil)
	e.cfg.Consent = consent.OptOut
	e.cfg.Host.Stderr, e.cfg.Host.Stdin = tty, tty
	run := func(args ...string) {
		app := newApp(&hookLog{})
		app.EnableBashCompletion = true
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		tkurfave.Instrument(app, e.cfg).Run(append([]string{"tool"}, args...))
	}
	run("rem", "--generate-bash-completion")
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(term.String(), "anonymous usage data") {
		t.Fatalf("the completion request printed the notice: %q", term.String())
	}
	if _, err := os.Stat(filepath.Join(e.cfg.ConfigDir, "consent.json")); !os.IsNotExist(err) {
		t.Fatalf("the completion request marked the notice as shown: %v", err)
	}
	if evs := e.events(t); len(evs) != 0 {
		t.Fatalf("the completion request recorded %d events", len(evs))
	}
	run("remote", "add", "origin", "url")
	time.Sleep(100 * time.Millisecond)
	tty.Close()
	<-done
	if !strings.Contains(term.String(), "anonymous usage data") {
		t.Fatalf("the first command on the terminal did not show the notice: %q", term.String())
	}
	if evs := e.events(t); len(evs) != 1 || evs[0].Metadata["command"] != "remote add" {
		t.Fatalf("recorded %+v, want the remote add run", evs)
	}
}
