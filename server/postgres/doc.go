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
// path: one transaction of INSERT … ON CONFLICT (project_id, event_id) DO
// NOTHING RETURNING event_id and the same rollup statement, with the counts
// of the returned (newly inserted) rows only. Either way events and rollups
// commit together or not at all, and a concurrent insert of the same event
// waits for the other transaction and then counts as a duplicate.
//
// # Cardinality caps
//
// What one project can add to the rollups is capped per UTC day ([Caps]):
// distinct services, versions, event types, names, flags and flag values,
// rows of each rollup, and values added per day of arrival. A value past a
// cap is counted under [Other]; the table daily_folds counts what was
// folded. Admissions are decided in a short transaction of their own under
// an advisory lock of the project, so the caps hold exactly across
// requests and servers, and cached by the process, so that a request
// whose values are all known costs the database nothing more.
package postgres
