package server

import (
	"context"
	"errors"
	"time"
)

// A dashboard session is what a signed-in browser holds: a random token in
// a cookie, and on the server the token's hash, its expiry and the read
// keys signed in with it, one per project. The keys themselves are never
// stored: a session refers to them by ID, so revoking a key takes its
// project out of every session at once.

// Session is a signed-in dashboard session.
type Session struct {
	ExpiresAt time.Time
	// Projects are the projects of the session's keys that are still
	// unrevoked read keys, by name.
	Projects []SessionProject
}

// SessionProject is a project a session may read, through one of its keys.
type SessionProject struct {
	ID        int64
	Name      string
	KeyID     int64
	KeyPrefix string
	KeyKind   KeyKind // read or admin
	// Retention is how long the project's events and per-day counts are
	// kept: its own window, or the server's.
	Retention time.Duration
}

// Project returns the session's project id, and whether it has it.
func (s Session) Project(id int64) (SessionProject, bool) {
	for _, p := range s.Projects {
		if p.ID == id {
			return p, true
		}
	}
	return SessionProject{}, false
}

// MaxSessionKeys bounds the keys one session may hold.
const MaxSessionKeys = 50

// ErrSessionNotFound is returned for a session that does not exist or
// has expired.
var ErrSessionNotFound = errors.New("server: session not found")

// SessionStore keeps dashboard sessions.
type SessionStore interface {
	// CreateSession stores a session with one key.
	CreateSession(ctx context.Context, tokenHash [32]byte, keyID int64, expires time.Time) error
	// Session returns the unexpired session with this token hash, or
	// ErrSessionNotFound.
	Session(ctx context.Context, tokenHash [32]byte) (Session, error)
	// AddSessionKey adds a key to a session (at most MaxSessionKeys; a
	// key of a project the session has replaces that project's key).
	AddSessionKey(ctx context.Context, tokenHash [32]byte, keyID int64) error
	// DeleteSession ends a session. Ending one that does not exist is a
	// no-op.
	DeleteSession(ctx context.Context, tokenHash [32]byte) error
}
