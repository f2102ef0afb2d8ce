package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// insertSQL inserts a batch in event_id order (so that concurrent
// batches take their locks in the same order), skipping the events the
// project already has, and returns the ids of those it inserted. The
// statement path runs it, then rollupSQL for those events, in one
// transaction.
const insertSQL = `
INSERT INTO events (project_id, event_id, occurred_at, service_name, service_version, event_type, name,
                    success, duration_ms, exit_code, error_kind, user_id, session_id,
                    sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata)
SELECT $1::integer, event_id, occurred_at, service_name, service_version, event_type, name,
       success, duration_ms, exit_code, error_kind, user_id, session_id,
       sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata::jsonb
FROM unnest(
    $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::boolean[], $9::bigint[], $10::integer[], $11::text[], $12::bytea[], $13::uuid[],
    $14::text[], $15::text[], $16::text[], $17::text[], $18::boolean[], $19::text[], $20::text[],
    $21::text[]
) AS t(event_id, occurred_at, service_name, service_version, event_type, name,
       success, duration_ms, exit_code, error_kind, user_id, session_id,
       sdk_name, sdk_version, os, arch, ci, ci_name, go_version, metadata)
WHERE event_id <> '00000000-0000-0000-0000-000000000000' -- left out (leaveOutErased)
ORDER BY event_id
ON CONFLICT (project_id, event_id) DO NOTHING
RETURNING event_id`

// rollupSQL adds pre-aggregated counts, folded by the cardinality caps, to
// the rollups and the counts of what was folded to daily_folds, and checks
// the write keys ($19) of the requests whose events they count. It runs in
// the same transaction as the COPY or INSERT that stored those events as
// new; a key no longer valid makes it fail, and the transaction with it
// (tk_check_write_key, called only then, raises the error that says why).
const rollupSQL = `
WITH count_users AS (
    SELECT i, tk_sketch(u) AS users FROM unnest($34::integer[], $35::bytea[]) AS x(i, u)
), count_durations AS (
    SELECT i, tdigest(d::float8, 100) AS durations FROM unnest($38::integer[], $39::bigint[]) AS x(i, d) GROUP BY i
), counts AS (
    INSERT INTO daily_event_counts AS c (project_id, day, service_name, service_version, event_type, name,
                                         os, arch, ci, go_version, success, error_kind, shard, events,
                                         duration_ms_sum, duration_count, users, durations, first_at, last_at)
    SELECT $1::integer, day, service_name, service_version, event_type, name, os, arch, ci, go_version, success,
           error_kind,
           (1 + pg_backend_pid() % 16)::smallint, events, duration_ms_sum, duration_count,
           coalesce(cu.users, hll_empty()), cd.durations, first_at, last_at
    FROM unnest($2::date[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[],
                $8::bigint[], $9::bigint[], $10::bigint[], $30::text[], $31::text[], $32::boolean[], $33::text[],
                $40::timestamptz[], $41::timestamptz[], $42::text[])
         WITH ORDINALITY AS t(day, service_name, service_version, event_type, name, success, events, duration_ms_sum,
                              duration_count, os, arch, ci, error_kind, first_at, last_at, go_version, i)
    LEFT JOIN count_users cu USING (i)
    LEFT JOIN count_durations cd USING (i)
    ORDER BY 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
    ON CONFLICT (project_id, day, service_name, service_version, event_type, name, os, arch, ci, go_version, success,
                 error_kind, shard)
    DO UPDATE SET events = tk_add(c.events, excluded.events),
                  duration_ms_sum = tk_add(c.duration_ms_sum, excluded.duration_ms_sum),
                  duration_count = tk_add(c.duration_count, excluded.duration_count),
                  users = hll_union(c.users, excluded.users),
                  durations = CASE WHEN excluded.durations IS NULL THEN c.durations
                                   ELSE tdigest_union(c.durations, excluded.durations) END,
                  first_at = least(c.first_at, excluded.first_at),
                  last_at = greatest(c.last_at, excluded.last_at)
), users AS (
    INSERT INTO daily_users (project_id, day, service_name, user_id, service_version, os, arch, ci)
    SELECT $1::integer, day, service_name, user_id, service_version, os, arch, ci
    FROM unnest($11::date[], $12::text[], $13::bytea[], $14::text[], $15::text[], $16::text[], $17::boolean[])
         AS u(day, service_name, user_id, service_version, os, arch, ci)
    ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING
), flag_users AS (
    SELECT i, tk_sketch(u) AS users FROM unnest($36::integer[], $37::bytea[]) AS x(i, u)
), flags AS (
    INSERT INTO daily_flag_counts AS c (project_id, day, service_name, service_version, command, flag, value,
                                        os, arch, ci, shard, events, users)
    SELECT $1::integer, day, service_name, service_version, command, flag, value, os, arch, ci,
           (1 + pg_backend_pid() % 16)::smallint, events, coalesce(fu.users, hll_empty())
    FROM unnest($20::date[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::bigint[],
                $64::text[], $65::text[], $66::boolean[])
         WITH ORDINALITY AS t(day, service_name, service_version, command, flag, value, events, os, arch, ci, i)
    LEFT JOIN flag_users fu USING (i)
    ORDER BY 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (project_id, day, service_name, service_version, command, flag, value, os, arch, ci, shard)
    DO UPDATE SET events = tk_add(c.events, excluded.events), users = hll_union(c.users, excluded.users)
), weeks AS (
    INSERT INTO weekly_users (project_id, week, user_id, service_name, service_version, os, arch, ci)
    SELECT $1::integer, week, user_id, service_name, service_version, os, arch, ci
    FROM unnest($43::date[], $44::bytea[], $45::text[], $46::text[], $47::text[], $48::text[], $49::boolean[])
         AS w(week, user_id, service_name, service_version, os, arch, ci)
    ORDER BY 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT DO NOTHING
    RETURNING week
), late_weeks AS (
    -- A user's week added before the current week: the retention
    -- counted ahead (retention.go) may hold it.
    INSERT INTO retention_late (project_id, week)
    SELECT DISTINCT $1::integer, week FROM weeks WHERE week < date_trunc('week', now() AT TIME ZONE 'UTC')::date
    ON CONFLICT DO NOTHING
), platform_users AS (
    SELECT i, tk_sketch(u) AS users FROM unnest($62::integer[], $63::bytea[]) AS x(i, u)
), platforms AS (
    INSERT INTO daily_platform_counts AS c (project_id, day, service_name, service_version, os, arch, ci, go_version,
                                            shard, events, successes, outcomes, duration_ms_sum, duration_count, users)
    SELECT $1::integer, day, service_name, service_version, os, arch, ci, go_version,
           (1 + pg_backend_pid() % 16)::smallint, events, successes, outcomes, duration_ms_sum, duration_count,
           coalesce(pu.users, hll_empty())
    FROM unnest($50::date[], $51::text[], $52::text[], $53::text[], $54::text[], $55::boolean[], $56::text[],
                $57::bigint[], $58::bigint[], $59::bigint[], $60::bigint[], $61::bigint[])
         WITH ORDINALITY AS t(day, service_name, service_version, os, arch, ci, go_version, events, successes,
                              outcomes, duration_ms_sum, duration_count, i)
    LEFT JOIN platform_users pu USING (i)
    ORDER BY 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (project_id, day, service_name, service_version, os, arch, ci, go_version, shard)
    DO UPDATE SET events = tk_add(c.events, excluded.events), successes = tk_add(c.successes, excluded.successes),
                  outcomes = tk_add(c.outcomes, excluded.outcomes),
                  duration_ms_sum = tk_add(c.duration_ms_sum, excluded.duration_ms_sum),
                  duration_count = tk_add(c.duration_count, excluded.duration_count),
                  users = hll_union(c.users, excluded.users)
), loss AS (
    INSERT INTO daily_data_loss AS l (project_id, day, dropped)
    SELECT $1::integer, (now() AT TIME ZONE 'UTC')::date, $18::bigint
    WHERE $18::bigint > 0
    ON CONFLICT (project_id, day) DO UPDATE SET dropped = tk_add(l.dropped, excluded.dropped)
), folds AS (
    INSERT INTO daily_folds AS f (project_id, day, dimension, shard, events)
    SELECT $1::integer, day, dimension, (1 + pg_backend_pid() % 16)::smallint, events
    FROM unnest($27::date[], $28::text[], $29::bigint[]) AS t(day, dimension, events)
    ORDER BY 2, 3
    ON CONFLICT (project_id, day, dimension, shard) DO UPDATE SET events = tk_add(f.events, excluded.events)
)
SELECT tk_check_write_key(k, $1::integer) FROM unnest($19::integer[]) AS k
WHERE NOT EXISTS (SELECT FROM api_keys
                  WHERE id = k AND project_id = $1::integer AND kind = 'write' AND revoked_at IS NULL)
UNION ALL
-- An erased user's events recorded before the erasure (erase.go): the
-- statement path leaves them out (and says so by tk.erasures_left_out).
SELECT tk_check_erased($1::integer)
WHERE current_setting('tk.erasures_left_out', true) IS DISTINCT FROM 'on' AND EXISTS (
    SELECT FROM unnest($11::date[], $13::bytea[]) AS u(day, user_id)
    JOIN erasures x ON x.project_id = $1::integer AND x.user_hash = sha256(u.user_id)
    WHERE u.day <= (x.erased_before AT TIME ZONE 'UTC')::date)`

var eventColumns = []string{"project_id", "event_id", "occurred_at", "service_name", "service_version",
	"event_type", "name", "success", "duration_ms", "exit_code", "error_kind", "user_id", "session_id",
	"sdk_name", "sdk_version", "os", "arch", "ci", "ci_name", "go_version", "metadata"}

// Ingest stores events for key's project exactly once and updates the
// rollups and the data-loss counter in the same transaction, in which it
// also checks that the key is still an unrevoked write key of that project.
// It returns after the commit.
//
// First the rollup rows of the events are aggregated and their values
// decided against the cardinality caps (see caps.go). The fast path then
// copies the batch into events with COPY and adds the rollups, in one
// transaction, which may also hold the batches of other requests for the
// same project (see copyNew); COPY fails on the first event the project
// already has, and then nothing of it is kept. The batch then goes through
// the statement path: INSERT … ON CONFLICT DO NOTHING, and the rollups of
// only the rows it inserted.
//
// dropped is added to the data-loss counter only when the batch stored at
// least one new event or held none: a batch made only of duplicates is a
// replay of one already counted.
func (db *DB) Ingest(ctx context.Context, key server.Key, events []server.Event, dropped int64) (server.IngestResult, error) {
	sorted := make([]*server.Event, len(events))
	for i := range events {
		sorted[i] = &events[i]
	}
	sortByID(sorted)
	r := aggregate(sorted)
	var dec decisions // nil: every row counts as it is
	if !db.adm.allKept(key.ProjectID, r) {
		var err error
		if dec, err = db.decide(ctx, key, r); err != nil {
			return server.IngestResult{}, err
		}
		db.adm.markKept(key.ProjectID, r, dec)
		r = fold(r, dec)
	}
	if len(events) > 0 {
		err := db.copyNew(ctx, key, sorted, r, dropped)
		if err == nil {
			return server.IngestResult{Accepted: len(events), Folded: foldedTotals(r)}, nil
		}
		if kerr := keyError(err); kerr != nil {
			return server.IngestResult{}, kerr
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !(pgErr.Code == "23505" || pgErr.Code == "23514" || pgErr.Code == "42P01" ||
			pgErr.Code == "40P01" || pgErr.Code == "40001" || pgErr.Code == "TKE01") {
			return server.IngestResult{}, fmt.Errorf("postgres: ingest: %w", err)
		}
		// A duplicate, a missing partition, a deadlock or an erased
		// user: nothing was committed; take the statement path.
	}
	return db.insertBatch(ctx, key, events, sorted, dec, dropped)
}

// keyError returns the server's key error for a failed tk_check_write_key,
// or nil for other errors.
func keyError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil
	}
	switch pgErr.Code {
	case "TKK01":
		return fmt.Errorf("postgres: ingest: %w", server.ErrKeyNotFound)
	case "TKK02":
		return fmt.Errorf("postgres: ingest: %w", server.ErrKeyRevoked)
	case "TKK03":
		return fmt.Errorf("postgres: ingest: %w", server.ErrNotWriteKey)
	}
	return nil
}

// copyBatch is the fast path of Ingest: one transaction that stores events
// (sorted by id) of one project as new, adds r (their rollups) and dropped
// to the rollups and checks that keyIDs are still write keys of the
// project.
//
// The whole transaction is written to PostgreSQL at once (see
// copyAndCommit) and its outcome read afterwards. Should the COPY or the
// rollups fail, PostgreSQL answers the COMMIT with a rollback; a
// connection in an unknown state is never reused (it is closed).
//
// copied, unless nil, is called once the COPY is done (or did not start),
// before the rollups and the commit.
//
// When all the events fall into one month, as they nearly always do, they
// are copied straight into that month's partition, which spares PostgreSQL
// the routing of each row; the partition's own bounds are still enforced.
func (db *DB) copyBatch(ctx context.Context, projectID int64, keyIDs []int64, events []*server.Event, r *rollup, dropped int64, copied func()) error {
	done := func() {
		if copied != nil {
			copied()
			copied = nil
		}
	}
	defer done()
	bp, rp := copyBuffers.Get().(*[]byte), copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	defer copyBuffers.Put(rp)
	msgs := copyMessages((*bp)[:0], lockErasures(copyStatement(events), projectID), projectID, events)
	if cap(msgs) <= maxPooledCopyBuffer {
		*bp = msgs[:0]
	}
	rollup := func() [][]byte {
		params, rbuf := rollupParams(*rp, projectID, keyIDs, r, dropped)
		if cap(rbuf) <= maxPooledCopyBuffer {
			*rp = rbuf[:0]
		}
		return params
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := copyAndCommit(ctx, conn.Conn(), msgs, rollup, done); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !expectedIngestError(pgErr) {
			// Whatever the state of the connection or of its prepared
			// statements, do not reuse it.
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Conn().Close(closeCtx)
			cancel()
		} else if conn.Conn().PgConn().TxStatus() != 'I' {
			_ = conn.Conn().PgConn().Exec(ctx, "ROLLBACK").Close()
		}
		return err
	}
	return nil
}

// expectedIngestError reports whether a failed ingest left its connection
// in a known state: a known event, a missing partition, a deadlock or
// serialization failure, or a refused key.
func expectedIngestError(e *pgconn.PgError) bool {
	switch e.Code {
	case "23505", "23514", "42P01", "40P01", "40001", "TKK01", "TKK02", "TKK03", "TKE01":
		return true
	}
	return false
}

// maxPooledCopyBuffer bounds the COPY data buffers kept for reuse.
const maxPooledCopyBuffer = 1 << 20

// copyBuffers holds the buffers of the binary COPY data.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// copyStatement returns BEGIN and the COPY of events (sorted by id) into
// their month's partition, or into events when they span months.
func copyStatement(events []*server.Event) string {
	first := monthStart(time.UnixMilli(wire.UUIDv7Millis(events[0].EventID)))
	last := monthStart(time.UnixMilli(wire.UUIDv7Millis(events[len(events)-1].EventID)))
	if !first.Equal(last) {
		return beginCopySQL
	}
	if s, ok := partitionCopySQL.Load(first); ok {
		return s.(string)
	}
	s := "BEGIN; COPY " + pgx.Identifier{partitionName(first)}.Sanitize() + copyColumns
	partitionCopySQL.Store(first, s)
	return s
}

// partitionCopySQL caches copyStatement's statements by month.
var partitionCopySQL sync.Map

// rollupStatement is the name of rollupSQL's prepared statement.
const rollupStatement = "tk_rollup"

// copyAndCommit runs one ingest transaction on conn: msgs (BEGIN and the
// COPY with its data, from copyMessages), then the rollup statement with
// the parameters rollup returns, then COMMIT. It writes all of it before
// reading any answer: the COPY's data in one write, then the rest, built
// while PostgreSQL copies. Should the COPY fail, PostgreSQL drops the COPY
// data that follows and runs the rest in the failed transaction, which
// the COMMIT then rolls back. copied is called once the COPY is done.
//
// It returns the first error PostgreSQL reported, or an error if the
// transaction did not commit.
func copyAndCommit(ctx context.Context, conn *pgx.Conn, msgs []byte, rollup func() [][]byte, copied func()) error {
	sd, err := conn.Prepare(ctx, rollupStatement, rollupSQL)
	if err != nil {
		return err
	}
	if err := checkRollupStatement(sd); err != nil {
		return err
	}
	pc := conn.PgConn()
	// A write blocks while PostgreSQL does not read, for instance while
	// the COPY waits for a lock: the request's end cancels it as it
	// cancels a query.
	cw := ctxwatch.NewContextWatcher(cancelOnDone(pc))
	cw.Watch(ctx)
	fe := pc.Frontend()
	err = fe.SendUnbufferedEncodedCopyData(msgs)
	if err == nil {
		fe.SendBind(&pgproto3.Bind{PreparedStatement: sd.Name, ParameterFormatCodes: binaryFormat, Parameters: rollup()})
		fe.SendExecute(&pgproto3.Execute{})
		fe.SendSync(&pgproto3.Sync{})
		fe.SendQuery(&pgproto3.Query{String: "COMMIT"})
		err = fe.Flush()
	}
	cw.Unwatch()
	if err != nil {
		return err
	}
	// Three queries answer, each ending with ReadyForQuery: BEGIN and the
	// COPY, the rollup statement, COMMIT.
	var pgErr error
	committed := false
	for ready := 0; ready < 3; {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			if pgErr == nil {
				pgErr = pgconn.ErrorResponseToPgError(msg)
			}
		case *pgproto3.CommandComplete:
			if ready == 2 {
				committed = string(msg.CommandTag) == "COMMIT"
			}
		case *pgproto3.ReadyForQuery:
			if ready++; ready == 1 {
				copied()
			}
		}
	}
	if pgErr != nil {
		return pgErr
	}
	if !committed {
		return errors.New("postgres: the ingest transaction did not commit")
	}
	return nil
}

// insertBatch is the statement path of Ingest: in one transaction, INSERT
// … ON CONFLICT DO NOTHING of events, then rollupSQL with the rollups of
// only the rows it inserted, folded by dec (unless nil). sorted are the same events,
// by id. A deadlock or a serialization failure (nothing committed) is
// tried again, and a missing partition is created first.
func (db *DB) insertBatch(ctx context.Context, key server.Key, events []server.Event, sorted []*server.Event,
	dec decisions, dropped int64) (server.IngestResult, error) {
	args := insertArgs(key.ProjectID, events)
	var res server.IngestResult
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		res, err = db.insertOnce(ctx, key, args, sorted, dec, dropped)
		if err == nil {
			return res, nil
		}
		if kerr := keyError(err); kerr != nil {
			return server.IngestResult{}, kerr
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			break
		}
		switch {
		case pgErr.Code == "40P01" || pgErr.Code == "40001":
			// Deadlock or serialization failure: nothing was committed.
			continue
		case pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition"):
			// A partition is missing (maintenance has not run yet).
			if _, merr := db.Maintain(ctx); merr != nil {
				return server.IngestResult{}, fmt.Errorf("postgres: ingest: %w (creating partitions: %v)", err, merr)
			}
			continue
		}
		break
	}
	return server.IngestResult{}, fmt.Errorf("postgres: ingest: %w", err)
}

// insertOnce runs the statement path's transaction once.
func (db *DB) insertOnce(ctx context.Context, key server.Key, args []any, sorted []*server.Event, dec decisions,
	dropped int64) (server.IngestResult, error) {
	var res server.IngestResult
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var stored []*server.Event
		erased := 0
		if len(sorted) > 0 {
			var err error
			if erased, err = leaveOutErased(ctx, tx, key.ProjectID, args); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, insertSQL, args...)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
			if err != nil {
				return err
			}
			inserted := make(map[[16]byte]bool, len(ids))
			for _, id := range ids {
				inserted[id] = true
			}
			for _, e := range sorted {
				if inserted[e.EventID] {
					stored = append(stored, e)
				}
			}
			if len(stored) == 0 {
				dropped = 0 // a replay of a request already counted
			}
		}
		r := aggregate(stored)
		if dec != nil {
			r = fold(r, dec)
		}
		sd, err := tx.Conn().Prepare(ctx, rollupStatement, rollupSQL)
		if err != nil {
			return err
		}
		if err := checkRollupStatement(sd); err != nil {
			return err
		}
		params, _ := rollupParams(nil, key.ProjectID, []int64{key.ID}, r, dropped)
		if err := tx.Conn().PgConn().ExecPrepared(ctx, sd.Name, params, binaryFormat, nil).Read().Err; err != nil {
			return err
		}
		res = server.IngestResult{Accepted: len(stored), Duplicates: len(sorted) - len(stored) - erased, Erased: erased,
			Folded: foldedTotals(r)}
		return nil
	})
	return res, err
}

// lockErasures returns copySQL (BEGIN and a COPY) with the project's
// erasure lock taken shared in between: the rollup statement, which looks
// for erased users, then runs after it (see erase.go).
func lockErasures(copySQL string, project int64) string {
	return "BEGIN; SELECT pg_advisory_xact_lock_shared(" + strconv.Itoa(erasureLockClass) + ", " +
		strconv.FormatInt(project, 10) + "); " + strings.TrimPrefix(copySQL, "BEGIN; ")
}

// leaveOutErased takes the project's erasure lock shared for tx, then
// takes out of args (insertSQL's parameters) the events of erased users
// recorded before their erasure, by giving them no id: the insert skips
// rows without one. It returns how many it took out.
func leaveOutErased(ctx context.Context, tx pgx.Tx, project int64, args []any) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1, $2), set_config('tk.erasures_left_out', 'on', true)`,
		int32(erasureLockClass), int32(project)); err != nil {
		return 0, err
	}
	ids, occurred, users := args[1].([][16]byte), args[2].([]time.Time), args[11].([][]byte)
	rows, err := tx.Query(ctx, `SELECT u.i FROM unnest($2::bytea[], $3::timestamptz[]) WITH ORDINALITY AS u(user_id, at, i)
		JOIN erasures x ON x.project_id = $1 AND x.user_hash = sha256(u.user_id) WHERE u.at < x.erased_before`, project, users, occurred)
	if err != nil {
		return 0, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	for _, i := range out {
		ids[i-1] = [16]byte{}
	}
	return len(out), nil
}

// insertArgs returns the parameters of insertSQL for events of project.
func insertArgs(project int64, evs []server.Event) []any {
	n := len(evs)
	var (
		ids        = make([][16]byte, n)
		occurred   = make([]time.Time, n)
		svc        = make([]string, n)
		ver        = make([]string, n)
		typ        = make([]string, n)
		name       = make([]string, n)
		success    = make([]*bool, n)
		duration   = make([]*int64, n)
		exitCode   = make([]*int32, n)
		errKind    = make([]*string, n)
		users      = make([][]byte, n)
		sessions   = make([][16]byte, n)
		sdkName    = make([]string, n)
		sdkVersion = make([]string, n)
		osName     = make([]string, n)
		arch       = make([]string, n)
		ci         = make([]bool, n)
		ciName     = make([]string, n)
		goVersion  = make([]string, n)
		metadata   = make([]string, n)
	)
	for i := range evs {
		e := &evs[i]
		ids[i] = e.EventID
		occurred[i] = e.Timestamp
		svc[i] = e.ServiceName
		ver[i] = e.ServiceVersion
		typ[i] = e.EventType
		name[i] = e.Name
		success[i] = e.Success
		duration[i] = e.DurationMS
		exitCode[i] = e.ExitCode
		errKind[i] = e.ErrorKind
		users[i] = e.UserID[:]
		sessions[i] = e.SessionID
		sdkName[i] = e.SDKName
		sdkVersion[i] = e.SDKVersion
		osName[i] = e.OS
		arch[i] = e.Arch
		ci[i] = e.CI
		ciName[i] = e.CIName
		goVersion[i] = e.GoVersion
		metadata[i] = string(e.Metadata)
	}
	return []any{project, ids, occurred, svc, ver, typ, name, success, duration, exitCode, errKind,
		users, sessions, sdkName, sdkVersion, osName, arch, ci, ciName, goVersion, metadata}
}
