package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// SharedTransactions returns how many ingest transactions held the batches
// of more than one request.
func (db *DB) SharedTransactions() int64 {
	db.groupMu.Lock()
	defer db.groupMu.Unlock()
	return db.groups.shared
}

// AdmissionTransactions returns how many transactions admitted values
// against the caps.
func (db *DB) AdmissionTransactions() int64 { return db.admissionTxs.Load() }

// MigrateTo applies the migrations up to version.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	p, closeDB, err := db.migrations()
	if err != nil {
		return err
	}
	defer closeDB()
	_, err = p.UpTo(ctx, version)
	return err
}

// UsesRollup reports whether Query answers q from a rollup
// (daily_event_counts or daily_flag_counts).
func UsesRollup(q server.Query) bool { return sourceOf(q, periods{}).from != eventsSource.from }

// SourceOf returns the table Query answers q from.
func SourceOf(q server.Query) string { return strings.Fields(sourceOf(q, periods{}).from)[0] }

// RetentionFromWeeks answers q from the users' weeks alone, never from
// the retention counted ahead.
func (db *DB) RetentionFromWeeks(ctx context.Context, project int64, q server.RetentionQuery) (server.Retention, error) {
	return db.retention(ctx, project, q, false)
}

// PruneSessions deletes the expired dashboard sessions.
func (db *DB) PruneSessions(ctx context.Context) (int64, error) { return db.pruneSessions(ctx) }

// ReadOnlySetting returns a setting as the query API's transactions see it.
func (db *DB) ReadOnlySetting(ctx context.Context, name string) (string, error) {
	var v string
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	})
	return v, err
}

// UserHash is hll_hash_bytea of a user id.
func UserHash(u [32]byte) int64 { return userHash(u) }

// ErasureLockClass is the first key of the erasure lock ingest holds
// shared.
const ErasureLockClass = erasureLockClass
