package sender_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func TestFillUserID(t *testing.T) {
	const id = "anon_3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a"
	ev := &wire.Event{
		EventID: "019abc8b-ab73-7c2e-9a51-3f0e5d6c7b8a", SchemaVersion: 1, ServiceName: "tool",
		EventType: wire.EventCommandExecuted, Timestamp: wire.Timestamp{Time: time.Now()},
		SessionID: "019abc8b-ab73-7000-8000-000000000001",
		// Metadata that looks like a pending user_id must stay as it is.
		Metadata: map[string]any{"user_id": "", "note": `,"user_id":"",`},
	}
	pending, err := wire.AppendEvent(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Event
	if err := json.Unmarshal(sender.FillUserID(pending, id), &got); err != nil {
		t.Fatal(err)
	}
	if got.UserID != id || got.Metadata["user_id"] != "" || got.Metadata["note"] != `,"user_id":"",` {
		t.Fatalf("filled event: user_id %q, metadata %v", got.UserID, got.Metadata)
	}
	ev.UserID = "anon_other"
	known, _ := wire.AppendEvent(nil, ev)
	if string(sender.FillUserID(known, id)) != string(known) {
		t.Fatal("an event with a user_id was changed")
	}
	if string(sender.FillUserID(pending, "")) != string(pending) {
		t.Fatal("an empty id changed the event")
	}
}
