package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// BenchmarkRollup measures what the server does in Go for the rollups of
// a 100-event batch of command events, as the SDK sends them: aggregate
// and encode, without and with the check of the caps (all rows known, as
// in the steady state).
func BenchmarkRollup(b *testing.B) {
	ctx := context.Background()
	db, key := openProject(b, "bench")
	keys := []server.Key{key}
	now := time.Now().UTC()
	evs := make([]*server.Event, 100)
	flagSets := [][]server.Flag{{}, {{Name: "watch"}}, {}, {{Name: "output", Value: "json", HasValue: true}, {Name: "verbose"}}, {{Name: "force"}}}
	for i := range evs {
		ok := i%5 != 0
		d := int64(i)
		evs[i] = &server.Event{EventID: uuid.Must(uuid.NewV7()), Timestamp: now, ServiceName: "demo-cli",
			ServiceVersion: "0.3.0", EventType: "command_executed", Name: fmt.Sprintf("cmd%d", i%4), Success: &ok,
			DurationMS: &d, UserID: [32]byte{byte(i % 17)}, OS: "linux", Arch: "amd64", Flags: flagSets[i%5]}
	}
	dec, err := db.decide(ctx, keys[0], aggregate(evs))
	if err != nil {
		b.Fatal(err)
	}
	db.adm.markKept(keys[0].ProjectID, aggregate(evs), dec)
	var buf []byte
	b.Run("aggregate+encode", func(b *testing.B) {
		for b.Loop() {
			_, buf = rollupParams(buf, 1, []int64{1}, aggregate(evs), 0)
		}
	})
	b.Run("aggregate+caps+encode", func(b *testing.B) {
		for b.Loop() {
			r := aggregate(evs)
			if !db.adm.allKept(keys[0].ProjectID, r) {
				b.Fatal("rows not kept")
			}
			_, buf = rollupParams(buf, 1, []int64{1}, r, 0)
		}
	})
}
