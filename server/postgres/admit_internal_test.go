package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// A panic while admitting answers every request of the transaction with
// an error, instead of leaving them waiting or ending the process, and
// the project's later admissions still run.
func TestAdmissionPanicAnswersEveryone(t *testing.T) {
	ctx := context.Background()
	db, key := openProject(t, "panics")
	day := int32(time.Now().Unix()/86400) - postgresEpochDay
	asking := func(r *rollup, value string) *admitting {
		d := &deciding{db: db, project: key.ProjectID, r: r, dec: decisions{}, now: time.Now()}
		d.ask = []candidate{{day, dimVersion, value}}
		return &admitting{ctx: ctx, key: key, d: d, done: make(chan error, 1)}
	}
	// The first has no rollup: working out its rows after its values
	// panics.
	broken, fine := asking(nil, "1.0"), asking(newRollup(), "2.0")
	db.admitAll([]*admitting{broken, fine})
	for _, a := range []*admitting{broken, fine} {
		select {
		case err := <-a.done:
			if err == nil {
				t.Error("a request of the transaction that panicked was answered without an error")
			}
		default:
			t.Fatal("a request of the transaction that panicked was never answered")
		}
	}
	// The project's admissions go on.
	ok := true
	next := asking(aggregate([]*server.Event{{Timestamp: time.Now().UTC(), ServiceName: "svc", ServiceVersion: "3.0",
		EventType: "command_executed", Name: "build", Success: &ok}}), "3.0")
	db.admitAll([]*admitting{next})
	if err := <-next.done; err != nil || !next.d.dec[candidate{day, dimVersion, "3.0"}] {
		t.Fatalf("the next admission: %v, kept %v", err, next.d.dec)
	}
}

// openDB opens a migrated database of its own for tb, closed when tb ends.
func openDB(tb testing.TB) *DB {
	tb.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Config{URL: pgtest.New(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// openProject opens a database as openDB does, with a project of one
// write key.
func openProject(tb testing.TB, name string) (*DB, server.Key) {
	tb.Helper()
	db := openDB(tb)
	_, w, _ := server.NewKey(server.KeyWrite)
	_, keys, err := db.CreateProject(context.Background(), name, []server.Key{w})
	if err != nil {
		tb.Fatal(err)
	}
	return db, keys[0]
}
