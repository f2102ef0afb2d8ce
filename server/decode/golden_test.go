package decode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/batch.json from the SDK's encoder")

// goldenNow is the server's clock for the golden batch.
var goldenNow = time.Date(2026, 11, 25, 21, 45, 0, 0, time.UTC)

// goldenEvents are events of every type the SDK records, and the edge
// cases of each field: the longest values the protocol allows, every kind
// of character, numbers at their limits, metadata at its deepest.
func goldenEvents() []*wire.Event {
	base := func(i int, typ string, meta map[string]any) *wire.Event {
		ts := time.Date(2026, 11, 25, 21, 40, i, 123e6, time.UTC)
		return &wire.Event{
			EventID:        uuidV7(ts, i),
			SchemaVersion:  wire.SchemaVersion,
			ServiceName:    "my-cli",
			ServiceVersion: "1.4.2",
			EventType:      typ,
			Timestamp:      wire.Timestamp{Time: ts},
			UserID:         wire.UserIDPrefix + strings.Repeat("3f2a", 16),
			SessionID:      "019abc8b-ab73-7000-8000-000000000001",
			SDK:            wire.SDK{Name: core.SDKName, Version: core.SDKVersion},
			Env:            wire.Env{OS: "linux", Arch: "amd64", GoVersion: "go1.26.0"},
			Metadata:       meta,
		}
	}
	flags := make([]any, wire.MaxRollupFlags)
	for i := range flags {
		name := []byte(strings.Repeat("f", wire.MaxFlagChars))
		name[0], name[1] = byte('a'+i/26), byte('a'+i%26)
		flags[i] = string(name)
	}
	evs := []*wire.Event{
		base(0, wire.EventCommandExecuted, map[string]any{
			wire.MetaCommand: "remote add", wire.MetaFlags: []any{"force", "auth"},
			wire.MetaFlagValues: map[string]any{"auth": "token"}, "args_count": 2,
			wire.MetaSuccess: true, wire.MetaErrorKind: "", wire.MetaDurationMS: 12, wire.MetaExitCode: 0,
		}),
		base(1, wire.EventCommandExecuted, map[string]any{
			wire.MetaCommand: "deploy", wire.MetaFlags: []any{}, wire.MetaSuccess: false,
			wire.MetaErrorKind: "network", wire.MetaDurationMS: wire.MaxDurationMS, wire.MetaExitCode: 255,
		}),
		base(2, wire.EventCommandExecuted, map[string]any{
			wire.MetaCommand: strings.Repeat("é", wire.MaxNameChars), wire.MetaFlags: flags,
			wire.MetaSuccess: false, wire.MetaDurationMS: 0, wire.MetaExitCode: -1,
		}),
		base(3, wire.EventFeatureUsed, map[string]any{wire.MetaFeature: "resize", "filter": "lanczos"}),
		base(4, wire.EventMethodCalled, map[string]any{wire.MetaMethod: "Client.Encode", "format": "webp"}),
		base(5, "plugin_loaded", map[string]any{
			"quote": `"\/<>&` + "\u2028\u2029\x01\x1f\t\n", "emoji": "🚀👩‍💻", "cjk": "遥测",
			"long": strings.Repeat("ü", wire.MaxMetadataString),
			"nums": []any{0, -1, 1.5, 1e21, 1e-7, 9007199254740993, math.Copysign(0, -1)},
			"deep": map[string]any{"b": map[string]any{"c": []any{"d", nil, true}}},
		}),
		base(6, "custom_no_metadata", nil),
		base(7, wire.EventFeatureUsed, map[string]any{wire.MetaFeature: "x"}),
	}
	evs[6].ServiceVersion = ""
	evs[6].Env.GoVersion = ""
	evs[7].ServiceName = strings.Repeat("a", wire.MaxFieldChars)
	evs[7].ServiceVersion = strings.Repeat("v", wire.MaxFieldChars)
	evs[7].Env = wire.Env{OS: "windows", Arch: "arm64", CI: true, CIName: "github_actions", GoVersion: "go1.23.0"}
	return evs
}

// uuidV7 makes the UUIDv7 of time t with the counter i.
func uuidV7(t time.Time, i int) string {
	ms := t.UnixMilli()
	var b [16]byte
	for k := 5; k >= 0; k-- {
		b[k] = byte(ms)
		ms >>= 8
	}
	b[6], b[7] = 0x70, byte(i)
	b[8] = 0x80
	b[15] = byte(i)
	const hex = "0123456789abcdef"
	var s []byte
	for k, c := range b {
		if k == 4 || k == 6 || k == 8 || k == 10 {
			s = append(s, '-')
		}
		s = append(s, hex[c>>4], hex[c&15])
	}
	return string(s)
}

// TestGoldenBatch pins the bytes the SDK's encoder writes for every event
// type and edge case (testdata/golden/batch.json; go test -update rewrites
// it) and checks that the server's decoder accepts every event of that
// batch with exactly the values the SDK sent.
func TestGoldenBatch(t *testing.T) {
	evs := goldenEvents()
	encoded := make([][]byte, len(evs))
	for i, ev := range evs {
		b, err := wire.AppendEvent(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		encoded[i] = b
	}
	body := wire.AppendBatch(nil, 7, encoded...)
	golden := filepath.Join("testdata", "golden", "batch.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, append(body, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(body, '\n'), want) {
		t.Fatalf("the SDK's encoding changed (go test -run TestGoldenBatch -update rewrites it if that is intended):\n got %s\nwant %s", body, want)
	}

	b, err := decode.Batch(want, goldenNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rejected) != 0 || len(b.Events) != len(evs) || b.Dropped != 7 || b.Total != len(evs) {
		t.Fatalf("rejected %+v, %d of %d events, dropped %d", b.Rejected, len(b.Events), len(evs), b.Dropped)
	}
	for i, ev := range evs {
		checkDecoded(t, ev, encoded[i], b.Events[i])
	}
}

// TestSDKEventsDecode records events through the SDK's client, as a tool
// does, and sends its queued bytes through the server's decoder.
func TestSDKEventsDecode(t *testing.T) {
	dir := t.TempDir()
	tk, err := core.New(core.Config{
		ServiceName:    "golden-cli",
		ServiceVersion: "2.0.0-rc.1+build.5",
		Consent:        consent.Silent,
		ConfigDir:      dir,
		Queue:          core.Queue{Path: filepath.Join(dir, "queue.db")},
		Host:           core.Host{Getenv: func(string) string { return "" }},
	})
	if err != nil {
		t.Fatal(err)
	}
	tk.TrackCommand(core.Command{Path: "remote add", Flags: []string{"force", "auth"},
		FlagValues: map[string]string{"auth": "oauth"}, Args: 2, Duration: 42 * time.Millisecond})
	tk.TrackCommand(core.Command{Path: "deploy", Err: errors.New("dial tcp: connection refused"), ExitCode: 1})
	tk.TrackFeature("resize", core.Props{"filter": "lanczos", "n": 3})
	tk.TrackMethod("Client.Encode", core.Props{"opts": map[string]any{"q": 0.8}})
	tk.Track("plugin_loaded", core.Props{"name": "日本語 ✓", "list": []string{"a", "b"}})
	tk.Track("no_props", nil)
	if err := tk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var encoded [][]byte
	if err := tk.Queued(context.Background(), func(ev []byte) error {
		encoded = append(encoded, bytes.Clone(ev))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(encoded) != 6 {
		t.Fatalf("%d events queued, want 6", len(encoded))
	}
	b, err := decode.Batch(wire.AppendBatch(nil, 0, encoded...), time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rejected) != 0 || len(b.Events) != len(encoded) {
		t.Fatalf("rejected %+v, %d of %d events decoded", b.Rejected, len(b.Events), len(encoded))
	}
	for i, raw := range encoded {
		var ev wire.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		checkDecoded(t, &ev, raw, b.Events[i])
	}
}

// checkDecoded fails t unless the server's decoding of one event holds
// what the SDK sent: every field, the metadata unchanged as JSON, and the
// members the rollups read.
func checkDecoded(t *testing.T, sent *wire.Event, raw []byte, got server.Event) {
	t.Helper()
	id, _ := wire.ParseUUID(sent.EventID)
	sess, _ := wire.ParseUUID(sent.SessionID)
	user, _ := wire.ParseUserID(sent.UserID)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"event_id", got.EventID, id},
		{"timestamp", got.Timestamp, sent.Timestamp.UTC()},
		{"service_name", got.ServiceName, sent.ServiceName},
		{"service_version", got.ServiceVersion, sent.ServiceVersion},
		{"event_type", got.EventType, sent.EventType},
		{"user_id", got.UserID, user},
		{"session_id", got.SessionID, sess},
		{"sdk", [2]string{got.SDKName, got.SDKVersion}, [2]string{sent.SDK.Name, sent.SDK.Version}},
		{"env", wire.Env{OS: got.OS, Arch: got.Arch, CI: got.CI, CIName: got.CIName, GoVersion: got.GoVersion}, sent.Env},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %s decoded as %v, want %v", sent.EventType, c.name, c.got, c.want)
		}
	}

	// The metadata, as JSON values.
	var sentMeta, gotMeta map[string]any
	var rawEv struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &rawEv); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rawEv.Metadata, &sentMeta); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.Metadata, &gotMeta); err != nil {
		t.Fatalf("stored metadata %s: %v", got.Metadata, err)
	}
	if sentMeta == nil {
		sentMeta = map[string]any{}
	}
	if !reflect.DeepEqual(gotMeta, sentMeta) {
		t.Errorf("%s: metadata decoded as %s, sent %s", sent.EventType, got.Metadata, rawEv.Metadata)
	}

	// The members the rollups read.
	name := ""
	switch sent.EventType {
	case wire.EventCommandExecuted:
		name, _ = sentMeta[wire.MetaCommand].(string)
	case wire.EventFeatureUsed:
		name, _ = sentMeta[wire.MetaFeature].(string)
	case wire.EventMethodCalled:
		name, _ = sentMeta[wire.MetaMethod].(string)
	}
	if got.Name != name {
		t.Errorf("%s: name %q, want %q", sent.EventType, got.Name, name)
	}
	if s, ok := sentMeta[wire.MetaSuccess].(bool); ok != (got.Success != nil) || ok && *got.Success != s {
		t.Errorf("%s: success %v, sent %v", sent.EventType, got.Success, sentMeta[wire.MetaSuccess])
	}
	if d, ok := sentMeta[wire.MetaDurationMS].(float64); ok != (got.DurationMS != nil) || ok && *got.DurationMS != int64(d) {
		t.Errorf("%s: duration %v, sent %v", sent.EventType, got.DurationMS, sentMeta[wire.MetaDurationMS])
	}
	if c, ok := sentMeta[wire.MetaExitCode].(float64); ok != (got.ExitCode != nil) || ok && *got.ExitCode != int32(c) {
		t.Errorf("%s: exit code %v, sent %v", sent.EventType, got.ExitCode, sentMeta[wire.MetaExitCode])
	}
	if sent.EventType == wire.EventCommandExecuted {
		flags, _ := sentMeta[wire.MetaFlags].([]any)
		values, _ := sentMeta[wire.MetaFlagValues].(map[string]any)
		if len(got.Flags) != len(flags) {
			t.Fatalf("%s: %d flags decoded, %d sent", sent.EventType, len(got.Flags), len(flags))
		}
		for i, f := range got.Flags {
			v, has := values[f.Name].(string)
			if f.Name != flags[i] || f.HasValue != has || f.Value != v {
				t.Errorf("flag %d decoded as %+v, sent %v = %q", i, f, flags[i], v)
			}
		}
	}
}
