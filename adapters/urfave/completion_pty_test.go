//go:build linux || darwin || freebsd

package tkurfave_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/internal/adaptertest"

	tkurfave "github.com/telemetry-kit/telemetry-kit/adapters/urfave"
	"github.com/telemetry-kit/telemetry-kit/consent"
)

// A shell's completion request (the app run with urfave/cli's completion
// flag last, when the user presses TAB) records nothing and neither prints
// the opt-out notice nor marks it as shown, even with stderr on a
// terminal: the user's first real command on the terminal shows it.
func TestCompletionRequestLeavesTheNotice(t *testing.T) {
	tty, terminal := adaptertest.Terminal(t)

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
	// The terminal is read at the end: nothing of the request may be there.
	if _, err := os.Stat(filepath.Join(e.cfg.ConfigDir, "consent.json")); !os.IsNotExist(err) {
		t.Fatalf("the completion request marked the notice as shown: %v", err)
	}
	if evs := e.events(t); len(evs) != 0 {
		t.Fatalf("the completion request recorded %d events", len(evs))
	}
	run("remote", "add", "origin", "url")
	if out := terminal(); strings.Count(out, "anonymous usage data") != 1 {
		t.Fatalf("the terminal shows %q, want the notice once, from the first real command", out)
	}
	if evs := e.events(t); len(evs) != 1 || evs[0].Metadata["command"] != "remote add" {
		t.Fatalf("recorded %+v, want the remote add run", evs)
	}
}
