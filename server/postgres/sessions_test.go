package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// A session holds one read key per project; it sees a project only while
// its key is an unrevoked read key; it ends when deleted or expired, and
// the maintenance prunes it then.
func TestSessions(t *testing.T) {
	ctx := context.Background()
	db := open(t, postgres.Config{})
	readKey := func(name string) server.Key {
		_, r, _ := server.NewKey(server.KeyRead)
		_, keys, err := db.CreateProject(ctx, name, []server.Key{r})
		if err != nil {
			t.Fatal(err)
		}
		return keys[0]
	}
	a, b := readKey("alpha"), readKey("beta")
	var token [32]byte
	rand.Read(token[:])
	if _, err := db.Session(ctx, token); !errors.Is(err, server.ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if err := db.CreateSession(ctx, token, a.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s, err := db.Session(ctx, token)
	if err != nil || len(s.Projects) != 1 || s.Projects[0].ID != a.ProjectID || s.Projects[0].Name != "alpha" {
		t.Fatalf("after sign-in: %+v %v", s, err)
	}
	if err := db.AddSessionKey(ctx, token, b.ID); err != nil {
		t.Fatal(err)
	}
	// A second key of the same project replaces the first.
	_, b2, _ := server.NewKey(server.KeyRead)
	b2.ProjectID = b.ProjectID
	b2, err = db.CreateKey(ctx, b2)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddSessionKey(ctx, token, b2.ID); err != nil {
		t.Fatal(err)
	}
	s, _ = db.Session(ctx, token)
	if len(s.Projects) != 2 || s.Projects[1].Name != "beta" || s.Projects[1].KeyID != b2.ID {
		t.Fatalf("two projects: %+v", s.Projects)
	}
	if _, ok := s.Project(b.ProjectID); !ok {
		t.Fatal("Project(beta) not found")
	}
	// Revoking alpha's key takes alpha out of the session.
	if err := db.RevokeKey(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	s, _ = db.Session(ctx, token)
	if len(s.Projects) != 1 || s.Projects[0].Name != "beta" {
		t.Fatalf("after revoking alpha's key: %+v", s.Projects)
	}
	if err := db.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, token); !errors.Is(err, server.ErrSessionNotFound) {
		t.Fatalf("after sign-out: %v", err)
	}
	if err := db.AddSessionKey(ctx, token, b.ID); !errors.Is(err, server.ErrSessionNotFound) {
		t.Fatalf("adding to an ended session: %v", err)
	}

	// An expired session is not found, and pruned.
	var old [32]byte
	rand.Read(old[:])
	if err := db.CreateSession(ctx, old, b.ID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, old); !errors.Is(err, server.ErrSessionNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if n, err := db.PruneSessions(ctx); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}

	// A session holds at most MaxSessionKeys projects.
	var many [32]byte
	rand.Read(many[:])
	first := readKey("p0")
	if err := db.CreateSession(ctx, many, first.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < server.MaxSessionKeys; i++ {
		if err := db.AddSessionKey(ctx, many, readKey("p"+string(rune('a'+i%26))+time.Now().Format("150405.000000")).ID); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if err := db.AddSessionKey(ctx, many, readKey("one-too-many").ID); err == nil {
		t.Fatal("a session took more than MaxSessionKeys projects")
	}
	s, _ = db.Session(ctx, many)
	if len(s.Projects) != server.MaxSessionKeys {
		t.Fatalf("%d projects", len(s.Projects))
	}
}
