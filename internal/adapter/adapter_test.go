package adapter

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func TestArgsHaveFlag(t *testing.T) {
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"build", "--show-telemetry"}, true},
		{[]string{"--show-telemetry=true", "build"}, true},
		{[]string{"--show-telemetry=false"}, false},
		{[]string{"--show-telemetry", "--show-telemetry=0"}, false},
		{[]string{"build", "--", "--show-telemetry"}, false},
		{[]string{"--show-telemetryx"}, false},
		{[]string{"-show-telemetry"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := ArgsHaveFlag(c.args, "show-telemetry"); got != c.want {
			t.Errorf("ArgsHaveFlag(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func newClient(t *testing.T) (*core.Client, core.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := core.Config{
		ServiceName: "tool",
		Consent:     consent.Silent,
		ConfigDir:   filepath.Join(dir, "config"),
		Queue:       core.Queue{Path: filepath.Join(dir, "queue.db")},
		Host:        core.Host{Getenv: func(string) string { return "" }},
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

func TestFinishRecordsOnceAndEchoes(t *testing.T) {
	c, _ := newClient(t)
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	inv := NewInvocation(c, []string{"target"}, now)
	clock = clock.Add(1500 * time.Millisecond)
	var echo bytes.Buffer
	inv.EchoTo(&echo)
	values := inv.FlagValues([]string{"target", "token"}, func(n string) (string, bool) { return n + "-value", true })
	if !reflect.DeepEqual(values, map[string]string{"target": "target-value"}) {
		t.Fatalf("FlagValues = %v", values)
	}
	inv.Finish(core.Command{Path: "deploy", Flags: []string{"token", "target", "token"}, FlagValues: values})
	inv.Finish(core.Command{Path: "again"})
	if !inv.Finished() {
		t.Fatal("not finished")
	}
	var lines []string
	if err := c.Queued(context.Background(), func(b []byte) error { lines = append(lines, string(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Fatalf("%d events, want 1", len(lines))
	}
	for _, want := range []string{`"command":"deploy"`, `"duration_ms":1500`, `"flags":["target","token"]`, `"flag_values":{"target":"target-value"}`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("event lacks %s: %s", want, lines[0])
		}
	}
	if strings.TrimSpace(echo.String()) != lines[0] {
		t.Fatalf("echo %q differs from the queued event %q", echo.String(), lines[0])
	}
}

// The close context behaves as context.WithTimeout from the moment anything
// looks at Done or Err, and is canceled by stop.
func TestLazyTimeout(t *testing.T) {
	l := &lazyTimeout{deadline: time.Now().Add(30 * time.Millisecond)}
	if d, ok := l.Deadline(); !ok || !d.Equal(l.deadline) {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	if l.ctx != nil {
		t.Fatal("timer started before anything waited")
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed after the deadline")
	}
	if err := l.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v", err)
	}
	l.stop()

	// Derived contexts see the deadline and the cancellation.
	l2 := &lazyTimeout{deadline: time.Now().Add(time.Hour)}
	child, cancel := context.WithTimeout(l2, time.Minute)
	defer cancel()
	if d, _ := child.Deadline(); d.After(l2.deadline) {
		t.Fatalf("child deadline %v after parent's %v", d, l2.deadline)
	}
	l2.stop()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child not canceled by stop")
	}

	// stop before any use: done, and no timer.
	l3 := &lazyTimeout{deadline: time.Now().Add(time.Hour)}
	l3.stop()
	if err := l3.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after stop = %v", err)
	}
}

func TestNilInvocation(t *testing.T) {
	var inv *Invocation
	inv.Finish(core.Command{}) // a nil invocation is a no-op
	NewInvocation(nil, nil, nil).Finish(core.Command{Path: "x"})
}
