// Package postgres stores the collection server's data in PostgreSQL (15 or
// later) through pgx's connection pool. It implements [server.Store].
//
// # Schema
//
// The schema is managed by goose migrations embedded in the package
// ([DB.Migrate]). Raw events go to the table events, partitioned by month on
// their UUIDv7 event_id; [DB.Maintain] creates partitions ahead and drops
// those past the retention window.
//
// # Exactly once
//
// [DB.Ingest] stores a batch in one transaction, by one of two paths. The
// fast path COPYs the batch into events and adds counts aggregated in Go to
// the rollups; COPY fails on any event the project already has, and then
// nothing of the transaction remains. The batch then takes the statement
// path: one INSERT … ON CONFLICT (project_id, event_id) DO NOTHING RETURNING
// statement whose data-modifying CTEs update the rollups from the returned
// (newly inserted) rows only. Either way events and rollups commit together
// or not at all, and a concurrent insert of the same event waits for the
// other transaction and then counts as a duplicate.
package postgres
