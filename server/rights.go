package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// ErrTooManyErasures is returned when a project has taken, today, all the
// erasures that write keys may ask for (see [EraseRequest.ByWriteKey]).
var ErrTooManyErasures = errors.New("too many erasures today")

// WriteKeyErasuresPerDay is how many erasures a project's write keys may
// ask for in a UTC day. Each leaves a row (the tombstone) for the storage
// window, so this bounds what a holder of the public write key can make
// the server store; admin keys and the command line are not counted.
const WriteKeyErasuresPerDay = 1000

// EraseRequest asks to erase one user of a project.
type EraseRequest struct {
	ProjectID int64
	UserID    [32]byte // the 32 bytes behind "anon_<hex>"
	// Before is when the erasure was asked for: events of the user
	// recorded before it that arrive later are discarded. Zero means now;
	// a time after now counts as now.
	Before time.Time
	// Actor says who asked, for the audit log: a key's display prefix, or
	// "command line". Never the user's id.
	Actor string
	// ByWriteKey is set when the request came with a write key (the tool's
	// own "telemetry delete"): such erasures count against
	// [WriteKeyErasuresPerDay].
	ByWriteKey bool
}

// Erasure says what erasing a user removed, as the erasure endpoints
// answer it. Counts that hold no user (events per day and command,
// durations, folds) are not changed.
type Erasure = wire.ErasureResponse

// AuditEntry is one line of a project's audit log: what was done to its
// data or keys, and by whom.
type AuditEntry struct {
	ID        int64           `json:"id"`
	ProjectID int64           `json:"project_id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`  // a key's display prefix, or "command line"
	Action    string          `json:"action"` // user.erase, project.delete, project.retention, key.create, key.revoke
	Detail    json.RawMessage `json:"detail"` // counts and key prefixes, never personal data
}

// Audit actions.
const (
	AuditUserErase     = "user.erase"
	AuditProjectDelete = "project.delete"
	AuditRetention     = "project.retention"
	AuditKeyCreate     = "key.create"
	AuditKeyRevoke     = "key.revoke"
)

// KeyManager manages a project's keys for its admin key.
type KeyManager interface {
	// Keys lists the keys of a project, revoked ones included.
	Keys(ctx context.Context, projectID int64) ([]Key, error)
	// CreateKeyAs stores a key (made by [NewKey]) for k.ProjectID and
	// notes it in the audit log with actor.
	CreateKeyAs(ctx context.Context, k Key, actor string) (Key, error)
	// RevokeKeyAs revokes key id of project, noting it in the audit log
	// with actor; a key of another project, or none, is [ErrKeyNotFound].
	RevokeKeyAs(ctx context.Context, project, id int64, actor string) error
}

// Rights is the store's side of the data rights: erasing a user,
// synchronously, and reading the audit log.
type Rights interface {
	// EraseUser removes every row of the user from the project: raw
	// events, per-user rows and the user's hash from the rollups'
	// sketches. It returns once all of it is committed; events of the user
	// being ingested meanwhile are removed too, and any recorded before
	// r.Before that arrive later are discarded. Erasing a user with no
	// data is not an error: the erasure still holds for later arrivals.
	EraseUser(ctx context.Context, r EraseRequest) (Erasure, error)
	// AuditLog returns the project's audit entries after the entry with id
	// after, oldest first, at most limit of them.
	AuditLog(ctx context.Context, project, after int64, limit int) ([]AuditEntry, error)
	// LatestAudit returns the project's newest audit entries, newest
	// first, at most limit of them.
	LatestAudit(ctx context.Context, project int64, limit int) ([]AuditEntry, error)
}
