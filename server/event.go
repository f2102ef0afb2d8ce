package server

import (
	"context"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

// DefaultRetention is the storage window when none is configured: an
// event older than that is rejected, and older partitions are dropped.
const DefaultRetention = 395 * 24 * time.Hour

// Event is one validated event of the wire protocol v1, ready to be stored.
type Event struct {
	EventID        [16]byte  // UUIDv7, the idempotency key
	Timestamp      time.Time // UTC
	ServiceName    string
	ServiceVersion string
	EventType      string
	// Name is the subject of the event: metadata.command for
	// command_executed, metadata.feature for feature_used, metadata.method
	// for method_called, empty otherwise.
	Name       string
	Success    *bool   // metadata.success (command_executed), nil when absent
	DurationMS *int64  // metadata.duration_ms, nil when absent
	ExitCode   *int32  // metadata.exit_code, nil when absent
	ErrorKind  *string // metadata.error_kind, nil when absent
	UserID     [32]byte
	SessionID  [16]byte
	SDKName    string
	SDKVersion string
	OS         string
	Arch       string
	CI         bool
	CIName     string
	GoVersion  string
	Metadata   []byte // a JSON object, re-encoded by the server
	// Flags are the flags a command_executed event reports as set
	// (metadata.flags, with metadata.flag_values), as the flag rollup
	// counts them; nil for other events.
	Flags []Flag
}

// Flag is a flag set in a command run, as the flag rollup counts it.
type Flag struct {
	Name     string // from metadata.flags, without dashes
	Value    string // metadata.flag_values[Name], when HasValue
	HasValue bool   // the author collects this flag's value and it fits the rollup
}

// Batch is a decoded request body.
type Batch struct {
	Events   []Event          // the valid events, in request order
	Rejected []wire.Rejection // the invalid ones, by index, ascending
	Dropped  int64            // events the client's queue dropped
	Total    int              // number of events in the request
}

// KeyKind tells what a key may do.
type KeyKind string

// Key kinds.
const (
	KeyWrite KeyKind = "write" // may only ingest
	KeyRead  KeyKind = "read"  // may only query; cannot ingest
	KeyAdmin KeyKind = "admin" // may query, erase users' data and manage keys; cannot ingest
)

// CanRead reports whether a key of this kind may query, export and sign in
// to the dashboard: read and admin keys.
func (k KeyKind) CanRead() bool { return k == KeyRead || k == KeyAdmin }

// Key is a stored API key. The key itself is never stored, only its hash.
type Key struct {
	ID        int64
	ProjectID int64
	Kind      KeyKind
	Hash      [32]byte // SHA-256 of the key
	Prefix    string   // the first characters of the key, for display
	CreatedAt time.Time
	RevokedAt *time.Time // nil while the key is valid
}

// Project is a tenant: one tool or family of tools with its own keys.
type Project struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	// RetentionDays is the project's own storage window when shorter than
	// the server's; 0 means the server's.
	RetentionDays int
}

// IngestResult says what a [Store] did with a batch.
type IngestResult struct {
	Accepted   int // events newly stored
	Duplicates int // events whose id the project already had
	Erased     int // events of erased users recorded before their erasure: discarded (not among Duplicates)
	// Folded counts, by dimension, the values of the stored events that
	// the rollups' cardinality caps counted under "(other)"; nil when
	// none.
	Folded map[string]int64
}

// Store is the storage the HTTP server needs.
type Store interface {
	// KeyByHash returns the key with this hash, or an error wrapping
	// [ErrKeyNotFound].
	KeyByHash(ctx context.Context, hash [32]byte) (Key, error)
	// Ingest stores the events of key's project exactly once, updates the
	// rollups (counting the values past the store's cardinality caps under
	// "(other)", as IngestResult.Folded reports) and adds dropped to the
	// project's data-loss counter, all in one transaction. In that transaction it checks that the key (by ID)
	// is still an unrevoked write key of key.ProjectID; if it is not,
	// nothing is stored and the error wraps [ErrKeyNotFound],
	// [ErrKeyRevoked] or [ErrNotWriteKey]. It returns only after the
	// commit.
	Ingest(ctx context.Context, key Key, events []Event, dropped int64) (IngestResult, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// KeyLister is a [Store] that can list its valid write keys and tell when
// keys change. With one, [Server.WatchKeys] keeps every valid write key in
// memory, so that a valid key is served without a lookup, whatever other
// clients do with made-up keys, and from the first request after a start.
type KeyLister interface {
	// WriteKeys returns the unrevoked write keys, at most limit of them,
	// the newest first.
	WriteKeys(ctx context.Context, limit int) ([]Key, error)
	// WatchKeys calls ready once it watches the keys, then changed after
	// each change of them (a key created, revoked or deleted), until ctx
	// ends or the watch fails. It returns why it stopped.
	WatchKeys(ctx context.Context, ready, changed func()) error
}
