package core

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func sampleRuns() []runRecord {
	at := time.UnixMilli(1764800000123)
	return []runRecord{
		{id: newID(), at: at, session: "s-1", version: "1.2.3", sdk: "0.1.0", goVersion: "go1.26.8",
			cmd: Command{Path: "remote add", Flags: []string{"force", "mirror"}, FlagValues: map[string]string{"mirror": "fetch"}, Args: 2}},
		{id: newID(), at: at, session: "s-2", version: "v2.0.0-rc.1", sdk: "0.1.0", goVersion: "go1.23.4",
			ciName: "github_actions", ci: true, finished: true,
			cmd: Command{Path: "build", Flags: []string{}, Args: 0, ErrorKind: "exit_error", ExitCode: 3, Duration: 1500 * time.Millisecond}},
		{id: newID(), at: at, finished: true, cmd: Command{Path: "", Duration: 0}},
	}
}

// A run record reads back as it was written.
func TestRunRecordRoundTrip(t *testing.T) {
	for _, r := range sampleRuns() {
		got, err := decodeRunRecord(appendRunRecord(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.cmd.Flags) == 0 {
			r.cmd.Flags = nil // an empty list reads back as none
		}
		if !got.at.Equal(r.at) {
			t.Errorf("at %v, want %v", got.at, r.at)
		}
		got.at = r.at
		if !reflect.DeepEqual(got, r) {
			t.Errorf("read back\n %+v\nwant\n %+v", got, r)
		}
	}
}

// Every truncation of a run record, and bytes that are not one, are
// refused without a panic.
func TestRunRecordMalformed(t *testing.T) {
	for _, r := range sampleRuns() {
		b := appendRunRecord(nil, r)
		for n := range len(b) {
			if _, err := decodeRunRecord(b[:n]); !errors.Is(err, errRunRecord) {
				t.Fatalf("%d of %d bytes: err %v, want errRunRecord", n, len(b), err)
			}
		}
		if _, err := decodeRunRecord(append(b, 0)); !errors.Is(err, errRunRecord) {
			t.Fatalf("a trailing byte: err %v", err)
		}
	}
	if _, err := decodeRunRecord([]byte(`{"event_id":"x"}`)); !errors.Is(err, errRunRecord) {
		t.Fatalf("an event: err %v", err)
	}
}

func FuzzDecodeRunRecord(f *testing.F) {
	for _, r := range sampleRuns() {
		f.Add(appendRunRecord(nil, r))
	}
	f.Add([]byte(runRecordMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRunRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRunRecord(appendRunRecord(nil, r))
		if err != nil {
			t.Fatalf("a record read from %x does not read back: %v", b, err)
		}
		again.at, r.at = time.Time{}, time.Time{}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("read back differently:\n %+v\n %+v", again, r)
		}
	})
}

// The event built from a run record is the event the run itself would
// have recorded: the same bytes as TrackCommand's (and, for a run that did
// not finish, as BeginCommand's start record), scrubbed alike.
func TestBuiltRunIsTheTrackedEvent(t *testing.T) {
	dir := t.TempDir()
	c, err := New(Config{ServiceName: "tool", ServiceVersion: "1.2.3", Mode: CLIMode, Consent: consent.Silent,
		ConfigDir: filepath.Join(dir, "config"), Queue: Queue{Path: filepath.Join(dir, "queue.db")},
		Host: Host{Getenv: func(k string) string {
			return map[string]string{"GITHUB_ACTIONS": "true"}[k]
		}, Stderr: &bytes.Buffer{}}})
	if err != nil {
		t.Fatal(err)
	}
	cmds := []Command{
		{Path: "remote add", Flags: []string{"force", "mirror"}, Args: 2,
			FlagValues: map[string]string{"mirror": "alice@example.com"}, Duration: 42 * time.Millisecond},
		{Path: "build", Err: errors.New("exit status 3"), ExitCode: 3, Duration: time.Second},
		{Path: "deploy", Err: errors.New("boom"), Duration: 5 * time.Millisecond},
		{Path: "", ErrorKind: "unknown_command", ExitCode: 1},
	}
	for _, cmd := range cmds {
		for _, finished := range []bool{true, false} {
			id, at, session := newID(), time.UnixMilli(1764800000123), "01a24038-6f4b-7729-8000-000000000001"
			props := startedProps(cmd)
			if finished {
				props = commandProps(cmd)
			}
			want, err := c.encode(&pending{id: id, typ: wire.EventCommandExecuted, ts: at, session: &session, props: props})
			if err != nil {
				t.Fatal(err)
			}
			rec := appendRunRecord(nil, c.newRunRecord(id, at, session, cmd, finished))
			if bytes.Contains(rec, []byte("alice@")) {
				t.Errorf("the run record keeps a flag value unscrubbed: %q", rec)
			}
			got, err := c.buildRun(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%q (finished %v):\nbuilt    %s\ntracked  %s", cmd.Path, finished, got, want)
			}
			if bytes.Contains(got, []byte("alice@")) {
				t.Errorf("built event not scrubbed: %s", got)
			}
		}
	}
}
