package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// testConfig returns a config with its own queue and config directories and an
// environment of its own, so the test machine's DO_NOT_TRACK or CI cannot leak in.
func testConfig(t testing.TB, env map[string]string) core.Config {
	t.Helper()
	dir := t.TempDir()
	return core.Config{
		ServiceName:    "test-tool",
		ServiceVersion: "1.2.3",
		Consent:        consent.Silent,
		ConfigDir:      filepath.Join(dir, "config"),
		Queue:          core.Queue{Path: filepath.Join(dir, "cache", "queue.db")},
		Host:           core.Host{Getenv: func(k string) string { return env[k] }, Stderr: &bytes.Buffer{}},
	}
}

func newClient(t testing.TB, cfg core.Config) *core.Client {
	t.Helper()
	c, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// queued reads every event in the queue at path.
func queued(t testing.TB, path string) []wire.Event {
	t.Helper()
	q, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Event
	err = q.All(context.Background(), func(r store.Record) error {
		var e wire.Event
		if err := json.Unmarshal(r.Data, &e); err != nil {
			return err
		}
		if e.EventID != r.ID {
			t.Errorf("record key %s holds event %s", r.ID, e.EventID)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLibraryModeQueuesEveryEventAtClose(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Library.PersistInterval = time.Hour // only size and Close write
	c := newClient(t, cfg)
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c.TrackMethod("Resize", core.Props{"worker": w, "i": i})
			}
		}()
	}
	wg.Wait()
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := queued(t, cfg.Queue.Path)
	if len(evs) != workers*each {
		t.Fatalf("queued %d events, want %d (lost %d)", len(evs), workers*each, c.Lost())
	}
	seen := map[string]bool{}
	next := make([]float64, workers) // each worker's events stay in its order
	for _, e := range evs {
		if seen[e.EventID] {
			t.Fatalf("event %s queued twice", e.EventID)
		}
		seen[e.EventID] = true
		if e.EventType != wire.EventMethodCalled || e.Metadata["method"] != "Resize" {
			t.Fatalf("unexpected event %+v", e)
		}
		w, i := int(e.Metadata["worker"].(float64)), e.Metadata["i"].(float64)
		if i != next[w] {
			t.Fatalf("worker %d: event %v queued after %v", w, i, next[w]-1)
		}
		next[w]++
	}
}

func TestEventFields(t *testing.T) {
	cfg := testConfig(t, map[string]string{"GITHUB_ACTIONS": "true"})
	now := time.Date(2026, 11, 25, 21, 40, 51, 123456789, time.FixedZone("CET", 3600))
	cfg.Host.Now = func() time.Time { return now }
	c := newClient(t, cfg)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	c.TrackFeature("watch", core.Props{"interval_s": 5, "owner": "jane@example.com", "dir": filepath.Join(home, "proj")})
	c.Track("plugin_loaded", core.Props{"plugin": "lint"})
	c.Close(context.Background())

	evs := queued(t, cfg.Queue.Path)
	if len(evs) != 2 {
		t.Fatalf("queued %d events, want 2", len(evs))
	}
	e := evs[0]
	if e.EventType != "feature_used" || e.Metadata["feature"] != "watch" || e.Metadata["interval_s"] != 5.0 {
		t.Errorf("feature event: %+v", e)
	}
	if e.Metadata["owner"] != "<email>" || e.Metadata["dir"] != "~/proj" {
		t.Errorf("metadata not scrubbed: owner = %v, dir = %v", e.Metadata["owner"], e.Metadata["dir"])
	}
	if got := e.Timestamp.Time; !got.Equal(now.Truncate(time.Millisecond)) || got.Location() != time.UTC {
		t.Errorf("timestamp %v, want %v in UTC", got, now.Truncate(time.Millisecond))
	}
	if !strings.HasPrefix(e.UserID, "anon_") || len(e.UserID) != len("anon_")+64 {
		t.Errorf("user_id %q is not anon_ + 64 hex", e.UserID)
	}
	if e.ServiceName != "test-tool" || e.ServiceVersion != "1.2.3" || e.SchemaVersion != wire.SchemaVersion {
		t.Errorf("service fields: %+v", e)
	}
	if e.SDK.Name != core.SDKName || e.Env.OS != runtime.GOOS || e.Env.Arch != runtime.GOARCH || !e.Env.CI || e.Env.CIName == "" {
		t.Errorf("sdk/env: %+v %+v", e.SDK, e.Env)
	}
	if e.SessionID != evs[1].SessionID || e.SessionID != c.SessionID() {
		t.Errorf("one process, two sessions: %s %s", e.SessionID, evs[1].SessionID)
	}
	if evs[1].EventType != "plugin_loaded" || evs[1].Metadata["plugin"] != "lint" {
		t.Errorf("custom event: %+v", evs[1])
	}
}

func TestWireTimestampHasMilliseconds(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Mode = core.CLIMode
	c := newClient(t, cfg)
	var buf bytes.Buffer
	c.EchoTo(&buf)
	c.Track("x_happened", nil)
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatalf("echoed event is not JSON: %v: %s", err, buf.Bytes())
	}
	ts, _ := raw["timestamp"].(string)
	if _, err := time.Parse(wire.TimestampLayout, ts); err != nil || len(ts) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("timestamp %q is not UTC RFC 3339 with milliseconds", ts)
	}
	if md, ok := raw["metadata"].(map[string]any); !ok || md == nil {
		t.Errorf("metadata is %v, want an object", raw["metadata"])
	}
}

func TestTrackCommandMetadata(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Mode = core.CLIMode
	c := newClient(t, cfg)
	c.TrackCommand(core.Command{
		Path: "remote add", Flags: []string{"force"}, FlagValues: map[string]string{"name": "/home/jane/src"},
		Args: 2, Duration: 1500 * time.Millisecond,
	})
	c.TrackCommand(core.Command{Path: "deploy", Err: errors.New("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 rejected for jane@example.com")})
	evs := queued(t, cfg.Queue.Path)
	if len(evs) != 2 {
		t.Fatalf("queued %d events, want 2", len(evs))
	}
	ok := evs[0].Metadata
	if ok["command"] != "remote add" || ok["args_count"] != 2.0 || ok["success"] != true || ok["exit_code"] != 0.0 ||
		ok["duration_ms"] != 1500.0 || ok["error_kind"] != "" {
		t.Errorf("success metadata: %v", ok)
	}
	if fv, _ := ok["flag_values"].(map[string]any); fv["name"] != "~/src" {
		t.Errorf("allowlisted flag value not scrubbed: %v", ok["flag_values"])
	}
	bad := evs[1].Metadata
	if bad["success"] != false || bad["exit_code"] != 1.0 || bad["error_kind"] == "" {
		t.Errorf("failure metadata: %v", bad)
	}
	raw, _ := json.Marshal(evs[1])
	for _, leak := range []string{"rejected", "jane", "ghp_"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("error message leaked %q into the event: %s", leak, raw)
		}
	}
}

func TestDoNotTrackRecordsNothing(t *testing.T) {
	for _, mode := range []core.RunMode{core.LibraryMode, core.CLIMode} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := testConfig(t, map[string]string{"DO_NOT_TRACK": "1"})
			cfg.Mode = mode
			c := newClient(t, cfg)
			if c.Enabled() {
				t.Fatal("client enabled despite DO_NOT_TRACK=1")
			}
			c.TrackFeature("watch", nil)
			c.TrackCommand(core.Command{Path: "build"})
			c.Close(context.Background())
			if evs := queued(t, cfg.Queue.Path); len(evs) != 0 {
				t.Fatalf("queued %d events with DO_NOT_TRACK=1", len(evs))
			}
		})
	}
}

// TestTelemetryOffOpensNoQueue checks that a client with telemetry off
// neither creates nor reads the queue while it runs, and still answers
// about it: the events recorded before it, and their purge.
func TestTelemetryOffOpensNoQueue(t *testing.T) {
	for _, mode := range []core.RunMode{core.LibraryMode, core.CLIMode} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig(t, map[string]string{"DO_NOT_TRACK": "1"})
			cfg.Mode = mode
			c := newClient(t, cfg)
			c.TrackCommand(core.Command{Path: "build"})
			c.Close(ctx)
			if _, err := os.Stat(filepath.Dir(cfg.Queue.Path)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a run with DO_NOT_TRACK=1 made the queue directory (stat: %v)", err)
			}

			on := testConfig(t, nil)
			on.Mode, on.Queue.Path, on.ConfigDir = mode, cfg.Queue.Path, cfg.ConfigDir
			rec := newClient(t, on)
			rec.TrackFeature("watch", nil)
			rec.TrackFeature("deploy", nil)
			rec.Close(ctx)

			off := newClient(t, cfg)
			st, err := off.Status(ctx)
			if err != nil || st.Enabled || st.Queued != 2 || st.QueuePath != cfg.Queue.Path {
				t.Fatalf("status with DO_NOT_TRACK=1: %+v, %v; want off, 2 queued at %s", st, err, cfg.Queue.Path)
			}
			n := 0
			if err := off.Queued(ctx, func([]byte) error { n++; return nil }); err != nil || n != 2 {
				t.Fatalf("Queued listed %d events, %v; want 2", n, err)
			}
			if err := off.Disable(ctx); err != nil {
				t.Fatal(err)
			}
			if evs := queued(t, cfg.Queue.Path); len(evs) != 0 {
				t.Fatalf("%d events left after Disable", len(evs))
			}
		})
	}
}

func TestDebugPrintsAndStoresNothing(t *testing.T) {
	cfg := testConfig(t, map[string]string{"TEST_TOOL_TELEMETRY_DEBUG": "1"})
	cfg.Mode = core.CLIMode
	var stderr bytes.Buffer
	cfg.Host.Stderr = &stderr
	c := newClient(t, cfg)
	c.TrackFeature("watch", nil)
	c.Close(context.Background())
	var e wire.Event
	if err := json.Unmarshal(stderr.Bytes(), &e); err != nil || e.Metadata["feature"] != "watch" {
		t.Fatalf("stderr holds %q, want the event as JSON (%v)", stderr.String(), err)
	}
	if evs := queued(t, cfg.Queue.Path); len(evs) != 0 {
		t.Fatalf("debug mode queued %d events", len(evs))
	}
}

func TestLibrarySessionEndsAfterIdle(t *testing.T) {
	cfg := testConfig(t, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	cfg.Host.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := newClient(t, cfg)
	c.TrackFeature("a", nil)
	first := c.SessionID()
	advance(29 * time.Minute)
	c.TrackFeature("b", nil)
	if c.SessionID() != first {
		t.Fatal("session changed after 29 idle minutes")
	}
	advance(31 * time.Minute)
	c.TrackFeature("c", nil)
	if c.SessionID() == first {
		t.Fatal("session did not change after 31 idle minutes")
	}
	c.Close(context.Background())
	evs := queued(t, cfg.Queue.Path)
	if len(evs) != 3 || evs[0].SessionID != evs[1].SessionID || evs[1].SessionID == evs[2].SessionID {
		t.Fatalf("sessions of queued events: %d events", len(evs))
	}
}

type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

func TestPanicsStayInside(t *testing.T) {
	for _, mode := range []core.RunMode{core.LibraryMode, core.CLIMode} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := testConfig(t, nil)
			cfg.Mode = mode
			c := newClient(t, cfg)
			c.TrackFeature("bad", core.Props{"v": panicky{}})
			c.TrackFeature("good", nil)
			if err := c.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			evs := queued(t, cfg.Queue.Path)
			if len(evs) != 1 || evs[0].Metadata["feature"] != "good" {
				t.Fatalf("after a panicking value, queued %d events", len(evs))
			}
		})
	}
}

func TestFullBufferDropsAndCounts(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Library.BufferSize = 4
	cfg.Library.PersistBatch = 1000
	cfg.Library.PersistInterval = time.Hour
	c := newClient(t, cfg)
	done := make(chan struct{})
	go func() {
		for range 10000 {
			c.TrackFeature("x", nil)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Track blocked on a full buffer")
	}
	c.Close(context.Background())
	n := len(queued(t, cfg.Queue.Path))
	if n+int(c.Lost()) != 10000 || c.Lost() == 0 {
		t.Fatalf("queued %d + lost %d, want 10000 with some lost", n, c.Lost())
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		cfg := testConfig(t, nil)
		c, err := core.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.TrackFeature("x", nil)
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

func TestCloseHonoursDeadline(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Queue.LockTimeout = 2 * time.Second
	c := newClient(t, cfg)
	c.TrackFeature("x", nil)
	// Another process holds the queue: the writer waits for the lock.
	holder := holdLock(t, cfg.Queue.Path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close returned %v, want the context's deadline", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("Close waited %v past a 50ms deadline", waited)
	}
	holder()
}

func TestNilAndInvalid(t *testing.T) {
	var c *core.Client
	c.Track("x", nil)
	c.TrackCommand(core.Command{})
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []core.Config{
		{},
		{ServiceName: "My Tool"},
		{ServiceName: "ok", Mode: 7},
		{ServiceName: "ok", Consent: 9},
		{ServiceName: "ok", Library: core.Library{BufferSize: -1}},
		{ServiceName: "ok", Queue: core.Queue{LockTimeout: -1}},
		{ServiceName: "ok", Send: core.Send{Timeout: -1}},
	} {
		if _, err := core.New(bad); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", bad)
		}
	}
}

func TestInvalidEventTypeDropped(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Mode = core.CLIMode
	c := newClient(t, cfg)
	c.Track("Not Snake", nil)
	c.Track("ok_type", nil)
	if evs := queued(t, cfg.Queue.Path); len(evs) != 1 || evs[0].EventType != "ok_type" {
		t.Fatalf("queued %v", evs)
	}
}

func TestDisablePurgesAndStops(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Mode = core.CLIMode
	c := newClient(t, cfg)
	c.TrackFeature("a", nil)
	if st, err := c.Status(context.Background()); err != nil || st.Queued != 1 || !st.Enabled {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := c.Disable(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.TrackFeature("b", nil)
	if evs := queued(t, cfg.Queue.Path); len(evs) != 0 {
		t.Fatalf("%d events queued after disable", len(evs))
	}
	c2 := newClient(t, cfg)
	if c2.Enabled() {
		t.Fatal("a new client is enabled after the user disabled telemetry")
	}
	st, _ := c2.Status(context.Background())
	if st.Enabled || st.Source != privacy.SourceUser || !strings.HasPrefix(st.UserID, "anon_") {
		t.Fatalf("status after disable: %+v", st)
	}
}

// TestCLIModeDurableBeforeExit runs a child that tracks one event and exits
// at once, without Close: the event must be in the queue.
func TestCLIModeDurableBeforeExit(t *testing.T) {
	cfg := testConfig(t, nil)
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTrackAndExit$")
		cmd.Env = append(os.Environ(), "CORE_TEST_CHILD=track-exit", "CORE_TEST_QUEUE="+cfg.Queue.Path, "CORE_TEST_CONFIG="+cfg.ConfigDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, out)
		}
	}
	if evs := queued(t, cfg.Queue.Path); len(evs) != 3 {
		t.Fatalf("queued %d events from 3 exiting processes, want 3", len(evs))
	}
}

func TestHelperTrackAndExit(t *testing.T) {
	if os.Getenv("CORE_TEST_CHILD") != "track-exit" {
		t.Skip("helper process")
	}
	c, err := core.New(core.Config{
		ServiceName: "test-tool", Mode: core.CLIMode, Consent: consent.Silent, ConfigDir: os.Getenv("CORE_TEST_CONFIG"),
		Queue: core.Queue{Path: os.Getenv("CORE_TEST_QUEUE")},
		Host:  core.Host{Getenv: func(string) string { return "" }},
	})
	if err != nil {
		os.Exit(3)
	}
	c.TrackCommand(core.Command{Path: "build"})
	os.Exit(0)
}

// A CLI run queues its event without the anonymous ID, which it does not
// derive; what `telemetry show` prints, and what is sent, carries it.
func TestCLIModeFillsTheUserIDWhenShownAndSent(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.Mode = core.CLIMode
	c := newClient(t, cfg)
	c.TrackCommand(core.Command{Path: "build"})
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw := queued(t, cfg.Queue.Path)
	if len(raw) != 1 || raw[0].UserID != "" {
		t.Fatalf("queued %+v, want one event without user_id", raw)
	}
	st, err := c.Status(context.Background())
	if err != nil || !strings.HasPrefix(st.UserID, "anon_") {
		t.Fatalf("status user id %q, %v", st.UserID, err)
	}
	var shown []wire.Event
	c.Queued(context.Background(), func(b []byte) error {
		var e wire.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return err
		}
		shown = append(shown, e)
		return nil
	})
	if len(shown) != 1 || shown[0].UserID != st.UserID || shown[0].EventID != raw[0].EventID {
		t.Fatalf("shown %+v, want the queued event with user_id %s", shown, st.UserID)
	}
}
