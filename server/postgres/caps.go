package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// Cardinality caps.
//
// The write key is public, so anyone can send events with a new version,
// command, flag or value each time, and every new value adds rows to the
// rollups. To bound what one project can add to them, the distinct values
// of each dimension, and the distinct rows of each rollup, are capped per
// project and UTC day of the events; and the values a project may add in
// all are capped per UTC day on which they arrive (events may carry any
// day of the retention window). A value past its cap is counted under
// [Other] instead, as analytics products do, and the events so folded are
// counted in daily_folds and in tk_rollup_folded_total. The raw events
// keep every value as sent.
//
// Which values a project has is kept in rollup_values, one row per value
// or rollup row admitted. A request looks its values up in a cache of this
// process first; those it has not seen are admitted in a transaction that
// holds an advisory lock of the project, so that the caps hold exactly,
// also between servers. A value once admitted stays so for its day, and
// one folded stays folded (the caps only fill up), so the cache never
// goes stale.

// Other stands for the values that the caps fold.
const Other = "(other)"

// dim is a dimension whose distinct values per project and day are
// capped.
type dim int8

// Dimensions, as numbered in rollup_values.dim.
const (
	dimService   dim = iota + 1
	dimVersion       // service_version
	dimEventType     // event_type
	dimName          // event type and name: a command, feature or method
	dimFlag          // flag name
	dimFlagValue     // flag and value
	dimEventKey      // a row of daily_event_counts (without the shard)
	dimFlagKey       // a row of daily_flag_counts (without the shard)
	nDims        = dimFlagKey
)

var dimNames = [...]string{"", "service", "version", "event_type", "name", "flag", "flag_value", "event_row", "flag_row"}

// String returns the name of d in daily_folds and in metrics.
func (d dim) String() string { return dimNames[d] }

// Caps are the cardinality caps. The zero value of a field means its
// default.
type Caps struct {
	Services   int // service names per project and day; zero means 20
	Versions   int // service versions per project and day; zero means 100
	EventTypes int // event types per project and day; zero means 50
	Names      int // commands, features and methods, all types together, per project and day; zero means 1,000
	Flags      int // flag names per project and day; zero means 500
	FlagValues int // flag values (flag and value) per project and day; zero means 1,000
	EventRows  int // rows of daily_event_counts (without the shard) per project and day; zero means 20,000
	FlagRows   int // rows of daily_flag_counts (without the shard) per project and day; zero means 5,000
	// NewPerDay is the number of values and rows a project may add in all
	// on one UTC day of arrival, whatever the days of its events. Zero
	// means 25,000.
	NewPerDay int
}

func (c Caps) withDefaults() Caps {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Services, 20)
	def(&c.Versions, 100)
	def(&c.EventTypes, 50)
	def(&c.Names, 1000)
	def(&c.Flags, 500)
	def(&c.FlagValues, 1000)
	def(&c.EventRows, 20000)
	def(&c.FlagRows, 5000)
	def(&c.NewPerDay, 25000)
	return c
}

// byDim returns the caps indexed by dim, for the admission statement.
func (c Caps) byDim() []int32 {
	return []int32{int32(c.Services), int32(c.Versions), int32(c.EventTypes), int32(c.Names), int32(c.Flags),
		int32(c.FlagValues), int32(c.EventRows), int32(c.FlagRows)}
}

// candidate is a value of a dimension on a day.
type candidate struct {
	day   int32
	dim   dim
	value string
}

// decisions tell, for the candidates of one request, which are kept
// (true) and which folded.
type decisions map[candidate]bool

// maxCachedDecisions bounds the cache of decisions; when it is full it
// starts over.
const maxCachedDecisions = 200_000

// admissions caches the decisions of this process.
type admissions struct {
	mu   sync.Mutex
	seed maphash.Seed
	m    map[uint64]bool
	// folds holds the values and rows folded because the project had added
	// all it may on the current day of arrival (Caps.NewPerDay), each
	// until that day ends: none of them can be admitted before then, by
	// this process or another, so that asking again would only take the
	// project's admission lock for the same answer.
	folds map[uint64]time.Time
	// full holds the (project, day, dim) whose cap is reached. When one
	// is added, every value admitted for it is added to m, so that a
	// value of it not in m is new, and folded without asking the
	// database. m and full start over together.
	full map[fullKey]bool
}

type fullKey struct {
	project int64
	day     int32
	dim     dim
}

type cacheKey struct {
	project int64
	c       candidate
}

func (a *admissions) hash(project int64, c candidate) uint64 {
	return maphash.Comparable(a.seed, cacheKey{project, c})
}

// lookup returns the cached decision on c at now, and whether there is
// one.
func (a *admissions) lookup(project int64, c candidate, now time.Time) (keep, ok bool) {
	h := a.hash(project, c)
	a.mu.Lock()
	defer a.mu.Unlock()
	if keep, ok := a.m[h]; ok {
		return keep, true
	}
	if until, ok := a.folds[h]; ok {
		if now.Before(until) {
			return false, true
		}
		delete(a.folds, h)
	}
	if a.full[fullKey{project, c.day, c.dim}] {
		return false, true
	}
	return false, false
}

type keptCount struct {
	project int64
	k       countKey
}

type keptFlag struct {
	project int64
	k       flagKey
}

// allKept reports whether every row of r, a project's rollup as its events
// came, is known to count as it is: its values and the row admitted. Then
// r needs neither decisions nor folding, which is the usual case.
func (a *admissions) allKept(project int64, r *rollup) bool {
	hs := make([]uint64, 0, len(r.countKeys)+len(r.flagKeys))
	for _, k := range r.countKeys {
		hs = append(hs, maphash.Comparable(a.seed, keptCount{project, k}))
	}
	for _, k := range r.flagKeys {
		hs = append(hs, maphash.Comparable(a.seed, keptFlag{project, k}))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range hs {
		if !a.m[h] {
			return false
		}
	}
	return true
}

// markKept records the rows of r that dec keeps as they are, for allKept.
// (The users of r have the services and versions of its rows.)
func (a *admissions) markKept(project int64, r *rollup, dec decisions) {
	var hs []uint64
	for _, k := range r.countKeys {
		if fk, folded := foldCount(k, dec); len(folded) == 0 && fk == k && dec[countRow(k)] {
			hs = append(hs, maphash.Comparable(a.seed, keptCount{project, k}))
		}
	}
	for _, k := range r.flagKeys {
		if fk, folded := foldFlag(k, dec); len(folded) == 0 && fk == k && dec[flagRow(k)] {
			hs = append(hs, maphash.Comparable(a.seed, keptFlag{project, k}))
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.room(len(hs))
	for _, h := range hs {
		a.m[h] = true
	}
}

// room makes room for n more decisions, starting over when needed. The
// caller holds a.mu.
func (a *admissions) room(n int) {
	if a.m == nil || len(a.m)+len(a.folds)+n > maxCachedDecisions {
		a.m = make(map[uint64]bool)
		a.full = make(map[fullKey]bool)
		a.folds = make(map[uint64]time.Time)
	}
}

func (a *admissions) store(project int64, c candidate, keep bool) {
	h := a.hash(project, c)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.room(1)
	a.m[h] = keep
}

// storeFold records that c is folded until until: the end of the day of
// arrival on which the project's additions reached their cap.
func (a *admissions) storeFold(project int64, c candidate, until time.Time) {
	h := a.hash(project, c)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.room(1)
	a.folds[h] = until
}

// fill records that the cap of k is reached, and that admitted are all
// the values it admitted.
func (a *admissions) fill(k fullKey, admitted []string) {
	hs := make([]uint64, len(admitted))
	for i, v := range admitted {
		hs[i] = a.hash(k.project, candidate{k.day, k.dim, v})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.room(len(hs))
	for _, h := range hs {
		a.m[h] = true
	}
	a.full[k] = true
}

// candidates of the rows of a rollup.
func nameValue(eventType, name string) string { return eventType + "\x1f" + name }

func countDims(k countKey) [4]candidate {
	return [4]candidate{{k.day, dimService, k.service}, {k.day, dimVersion, k.version},
		{k.day, dimEventType, k.eventType}, {k.day, dimName, nameValue(k.eventType, k.name)}}
}

func flagDims(k flagKey) []candidate {
	c := []candidate{{k.day, dimService, k.service}, {k.day, dimVersion, k.version},
		{k.day, dimName, nameValue("command_executed", k.command)}, {k.day, dimFlag, k.flag}}
	if k.hasValue {
		c = append(c, candidate{k.day, dimFlagValue, nameValue(k.flag, k.value)})
	}
	return c
}

// rowValue names a rollup row by a hash of its columns.
func rowValue(cols ...string) string {
	h := sha256.New()
	for _, c := range cols {
		h.Write([]byte(strconv.Itoa(len(c))))
		h.Write([]byte{':'})
		h.Write([]byte(c))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// folding replaces the values that dec folds with Other, and notes the
// dimensions it folded.
type folding struct {
	dec    decisions
	folded []dim
}

// fold folds *v, the value of candidate c, unless c is kept; it reports
// whether c is folded.
func (f *folding) fold(c candidate, v *string) bool {
	if f.dec[c] {
		return false
	}
	if *v != Other {
		*v = Other
		f.folded = append(f.folded, c.dim)
	}
	return true
}

// foldCount returns the row k counts under once its values are decided,
// and which of its dimensions were folded.
func foldCount(k countKey, dec decisions) (countKey, []dim) {
	f := folding{dec: dec}
	c := countDims(k)
	f.fold(c[0], &k.service)
	f.fold(c[1], &k.version)
	if f.fold(c[2], &k.eventType) {
		k.name = Other // a folded event type folds its names too
	} else {
		f.fold(c[3], &k.name)
	}
	return k, f.folded
}

func countRow(k countKey) candidate {
	ek := "\x00"
	if k.hasErrorKind {
		ek = k.errorKind
	}
	return candidate{k.day, dimEventKey, rowValue(k.service, k.version, k.eventType, k.name, strconv.Itoa(int(k.success)),
		k.os, k.arch, strconv.FormatBool(k.ci), ek, k.goVersion)}
}

// otherCount is the row a row past the cap is counted in: every value
// Other but the outcome and CI, which take two values each.
func otherCount(k countKey) countKey {
	return countKey{day: k.day, success: k.success, service: Other, version: Other, eventType: Other, name: Other,
		os: Other, arch: Other, goVersion: Other, ci: k.ci, errorKind: Other, hasErrorKind: k.hasErrorKind}
}

func foldFlag(k flagKey, dec decisions) (flagKey, []dim) {
	f := folding{dec: dec}
	c := flagDims(k)
	f.fold(c[0], &k.service)
	f.fold(c[1], &k.version)
	f.fold(c[2], &k.command)
	if f.fold(c[3], &k.flag) {
		k.hasValue, k.value = false, "" // a folded flag loses its value
	} else if k.hasValue {
		f.fold(c[4], &k.value)
	}
	return k, f.folded
}

func flagRow(k flagKey) candidate {
	v := "\x00"
	if k.hasValue {
		v = k.value
	}
	return candidate{k.day, dimFlagKey, rowValue(k.service, k.version, k.command, k.flag, v, k.os, k.arch,
		strconv.FormatBool(k.ci))}
}

func otherFlag(k flagKey) flagKey {
	return flagKey{day: k.day, service: Other, version: Other, command: Other, flag: Other, os: Other, arch: Other,
		ci: k.ci}
}

func isOtherCount(k countKey) bool {
	return k.service == Other && k.version == Other && k.eventType == Other && k.name == Other && k.os == Other &&
		k.arch == Other && k.goVersion == Other && (!k.hasErrorKind || k.errorKind == Other)
}

func isOtherFlag(k flagKey) bool {
	return k.service == Other && k.version == Other && k.command == Other && k.flag == Other && !k.hasValue &&
		k.os == Other && k.arch == Other
}

// decide returns the decisions on every value and row of r, a project's
// rollup as its events came: from the cache, else by admitting them (see
// admit).
//
// Only a valid write key of the project may admit values: the admission
// checks key as the ingest transaction does.
//
// Admissions of a project take turns on its lock, so the requests that
// need one while another is at work wait for the next, which admits the
// values of all of them in one transaction (see admitTogether): at the
// start of a day of arrival, when every row is new, most requests need
// one.
func (db *DB) decide(ctx context.Context, key server.Key, r *rollup) (decisions, error) {
	// Before the admission's transaction starts: a day of arrival that the
	// database finds ending in some time ends that long after this at the
	// earliest, whatever the two clocks say.
	d := &deciding{db: db, project: key.ProjectID, r: r, now: db.cfg.Now()}
	if d.reset(); len(d.ask) == 0 {
		return d.dec, nil
	}
	if err := db.admitTogether(ctx, key, d); err != nil {
		if kerr := keyError(err); kerr != nil {
			return nil, kerr
		}
		return nil, fmt.Errorf("postgres: caps: %w", err)
	}
	return d.dec, nil
}

// deciding is the decision on one request's rollup r in the making.
type deciding struct {
	db      *DB
	project int64
	r       *rollup
	dec     decisions
	ask     []candidate // not decided by the cache: to admit
	now     time.Time
	rows    bool // ask holds rows (the values are decided)
}

func (d *deciding) need(c candidate) {
	if _, ok := d.dec[c]; ok {
		return
	}
	keep, ok := d.db.adm.lookup(d.project, c, d.now)
	d.dec[c] = keep
	if !ok {
		d.ask = append(d.ask, c)
	}
}

// reset decides r from the cache, afresh, up to what is left to admit:
// its values, or its rows once the values are all decided.
func (d *deciding) reset() {
	d.dec, d.ask, d.rows = decisions{}, d.ask[:0], false
	if d.needValues(); len(d.ask) == 0 {
		d.needRows()
	}
}

// needValues looks up the values of r's rows.
func (d *deciding) needValues() {
	for _, k := range d.r.countKeys {
		for _, c := range countDims(k) {
			d.need(c)
		}
	}
	// The users need nothing of their own: their services and versions
	// are those of the count rows of the same events.
	for _, k := range d.r.flagKeys {
		for _, c := range flagDims(k) {
			d.need(c)
		}
	}
}

// needRows looks up r's rows, once their values are decided.
func (d *deciding) needRows() {
	d.ask, d.rows = d.ask[:0], true
	for _, k := range d.r.countKeys {
		if fk, _ := foldCount(k, d.dec); !isOtherCount(fk) {
			d.need(countRow(fk))
		}
	}
	for _, k := range d.r.flagKeys {
		if fk, _ := foldFlag(k, d.dec); !isOtherFlag(fk) {
			d.need(flagRow(fk))
		}
	}
}

// An admitting request waits for the project's next admission.
type admitting struct {
	ctx      context.Context
	key      server.Key
	d        *deciding
	done     chan error
	answered bool // done was sent to (by the admissions' runner only)
}

// admitTogether admits what d asks, and then d's rows, in a transaction
// of the project's that may hold other requests' admissions too. Should
// that transaction fail (one of the keys no longer valid, say), each of
// its requests is admitted in one of its own.
func (db *DB) admitTogether(ctx context.Context, key server.Key, d *deciding) error {
	a := &admitting{ctx: ctx, key: key, d: d, done: make(chan error, 1)}
	db.admMu.Lock()
	if db.admQueues == nil {
		db.admQueues = map[int64][]*admitting{}
	}
	q, running := db.admQueues[d.project]
	db.admQueues[d.project] = append(q, a)
	db.admMu.Unlock()
	if !running {
		go db.runAdmissions(d.project)
	}
	select {
	case err := <-a.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runAdmissions admits the waiting requests of project, all of them at a
// time, until none waits. The request that found none at work starts it.
func (db *DB) runAdmissions(project int64) {
	for {
		db.admMu.Lock()
		batch := db.admQueues[project]
		if len(batch) == 0 {
			delete(db.admQueues, project)
			db.admMu.Unlock()
			return
		}
		db.admQueues[project] = batch[:0:0]
		db.admMu.Unlock()
		db.admitAll(batch)
	}
}

// admitAll admits what the requests of batch ask and answers each of
// them, also if admitting panics.
func (db *DB) admitAll(batch []*admitting) {
	defer func() {
		if p := recover(); p != nil {
			for _, a := range batch {
				a.answer(fmt.Errorf("postgres: caps: panic: %v", p))
			}
		}
	}()
	live := make([]*admitting, 0, len(batch))
	for _, a := range batch {
		if a.ctx.Err() != nil {
			a.answer(a.ctx.Err())
		} else {
			live = append(live, a)
		}
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		_, err := db.admitBatch(live)
		live[0].answer(err)
		return
	}
	alone, err := db.admitBatch(live)
	if err == nil {
		for _, a := range live {
			if !slices.Contains(alone, a) {
				a.answer(nil)
			}
		}
		live = alone
	}
	// Each on its own (a key no longer valid, or the shared transaction
	// failed), decided afresh: a failed transaction may have decided some
	// of its values.
	for _, a := range live {
		if a.d.reset(); len(a.d.ask) == 0 {
			a.answer(nil)
		} else {
			_, err := db.admitBatch([]*admitting{a})
			a.answer(err)
		}
	}
}

// answer gives a its outcome, once.
func (a *admitting) answer(err error) {
	if !a.answered {
		a.answered = true
		a.done <- err
	}
}

// admitBatch admits what the requests of batch ask, and then their rows,
// in one transaction under the project's admission lock. A request alone
// has its key checked by tk_check_write_key, whose error says what is
// wrong with it. Of several, those whose keys are no longer valid write
// keys of the project are left out and returned, to be admitted alone.
func (db *DB) admitBatch(batch []*admitting) (alone []*admitting, err error) {
	ctx := batch[0].ctx
	if len(batch) > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), groupTimeout)
		defer cancel()
	}
	project := batch[0].d.project
	var keys []int32
	for _, a := range batch {
		if !slices.Contains(keys, int32(a.key.ID)) {
			keys = append(keys, int32(a.key.ID))
		}
	}
	db.admissionTxs.Add(1)
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	// Admissions of a project take turns, so that each sees what the one
	// before it admitted: the caps hold exactly.
	if len(batch) == 1 {
		_, err = tx.Exec(ctx, `SELECT tk_check_write_key($3::integer, $2::integer),
			pg_advisory_xact_lock($1::integer, $2::integer)`, admissionLock, project, keys[0])
	} else {
		// The lock in FROM, so that it is taken whatever the keys: the
		// select list is evaluated on its one row.
		var bad []int32
		err = tx.QueryRow(ctx, `SELECT ARRAY(SELECT k FROM unnest($3::integer[]) AS k
			WHERE NOT EXISTS (SELECT FROM api_keys WHERE id = k AND project_id = $2::integer AND kind = 'write'
			                  AND revoked_at IS NULL))
			FROM pg_advisory_xact_lock($1::integer, $2::integer)`, admissionLock, project, keys).Scan(&bad)
		if len(bad) > 0 {
			kept := batch[:0:0]
			for _, a := range batch {
				if slices.Contains(bad, int32(a.key.ID)) {
					alone = append(alone, a)
				} else {
					kept = append(kept, a)
				}
			}
			batch = kept
		}
	}
	if err != nil {
		return nil, err
	}
	// The values, then the rows their decisions make.
	for phase := 0; phase < 2; phase++ {
		var ask []candidate
		seen := map[candidate]bool{}
		for _, a := range batch {
			if phase == 1 && !a.d.rows {
				a.d.needRows()
			}
			for _, c := range a.d.ask {
				if !seen[c] {
					seen[c] = true
					ask = append(ask, c)
				}
			}
		}
		if len(ask) > 0 {
			dec := decisions{}
			if err := db.admit(ctx, tx, project, ask, dec, batch[0].d.now); err != nil {
				return nil, err
			}
			for _, a := range batch {
				for _, c := range a.d.ask {
					a.d.dec[c] = dec[c]
				}
				a.d.ask = a.d.ask[:0]
			}
		}
	}
	return alone, tx.Commit(ctx)
}

// admissionLock is the first key of the advisory locks that admissions
// take, the project being the second.
const admissionLock = 0x746b6361 // "tkca"

// admitSQL admits the values of $2–$4 (day, dim, value; distinct) that
// rollup_values lacks, within the caps per day and dimension ($5, indexed
// by dim) and the cap of values added on the current UTC day ($6), in
// order. It returns, for each value in order, whether it is kept, and for
// one that is not, whether the cap of its day and dimension is full (else
// the day's cap is). The caps are judged against the counters
// rollup_value_counts and rollup_additions, which it keeps, and each
// candidate is looked up by the primary key: the cost of an admission
// grows with its candidates, not with what the project holds.
const admitSQL = `
WITH c AS (
    SELECT * FROM unnest($2::date[], $3::smallint[], $4::text[]) WITH ORDINALITY AS c(day, dim, value, i)
), k AS (
    -- One probe of the primary key per candidate (LIMIT 1 keeps the
    -- planner from hashing every value of the project instead).
    SELECT c.*, coalesce(r.known, false) AS known
    FROM c LEFT JOIN LATERAL (SELECT true AS known FROM rollup_values r
                              WHERE r.project_id = $1 AND r.day = c.day AND r.dim = c.dim AND r.value = c.value
                              LIMIT 1) r ON true
), fresh AS (
    SELECT k.*, row_number() OVER (PARTITION BY k.day, k.dim ORDER BY k.i) AS rank_dim,
           row_number() OVER (ORDER BY k.i) AS rank_all
    FROM k WHERE NOT known
), used AS (
    SELECT u.day, u.dim, u.n FROM rollup_value_counts u
    WHERE u.project_id = $1 AND (u.day, u.dim) IN (SELECT day, dim FROM fresh)
), today AS (
    SELECT coalesce((SELECT n FROM rollup_additions
                     WHERE project_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date), 0) AS n
), judged AS (
    SELECT f.i, f.day, f.dim, f.value, coalesce(u.n, 0) + f.rank_dim > ($5::integer[])[f.dim] AS dim_full,
           t.n + f.rank_all > $6::integer AS day_full
    FROM fresh f LEFT JOIN used u ON u.day = f.day AND u.dim = f.dim, today t
), ins AS (
    INSERT INTO rollup_values (project_id, day, dim, value, added)
    SELECT $1, day, dim, value, (now() AT TIME ZONE 'UTC')::date FROM judged
    WHERE NOT dim_full AND NOT day_full
    ORDER BY day, dim, value
    ON CONFLICT DO NOTHING
    RETURNING day, dim
), counted AS (
    INSERT INTO rollup_value_counts (project_id, day, dim, n)
    SELECT $1, day, dim, count(*) FROM ins GROUP BY day, dim
    ORDER BY day, dim
    ON CONFLICT (project_id, day, dim) DO UPDATE SET n = rollup_value_counts.n + excluded.n
), added AS (
    INSERT INTO rollup_additions (project_id, day, n)
    SELECT $1, (now() AT TIME ZONE 'UTC')::date, count(*) FROM ins HAVING count(*) > 0
    ON CONFLICT (project_id, day) DO UPDATE SET n = rollup_additions.n + excluded.n
)
SELECT k.known OR NOT (j.dim_full OR j.day_full), coalesce(j.dim_full, false),
       -- What is left of the day of arrival, by the clock that judged it.
       extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day'
                          - (now() AT TIME ZONE 'UTC'))::float8
FROM k LEFT JOIN judged j ON j.i = k.i ORDER BY k.i`

// admit decides cs (distinct, not decided by the cache) in tx, which holds
// the project's admission lock, and records the decisions in dec and in
// the cache. A value folded because the cap of its day and dimension is
// full makes the cache fold every new value of them from then on; one
// folded because the project added all it may today is folded from the
// cache until the day of arrival ends. before is a time before tx began.
func (db *DB) admit(ctx context.Context, tx pgx.Tx, project int64, cs []candidate, dec decisions, before time.Time) error {
	days := make([]time.Time, len(cs))
	dims := make([]int16, len(cs))
	values := make([]string, len(cs))
	for i, c := range cs {
		days[i] = dateOf(c.day)
		dims[i] = int16(c.dim)
		values[i] = c.value
	}
	rows, err := tx.Query(ctx, admitSQL, project, days, dims, values, db.caps.byDim(), db.caps.NewPerDay)
	if err != nil {
		return err
	}
	var full []fullKey
	i := 0
	var keep, dimFull bool
	var dayLeft float64
	_, err = pgx.ForEachRow(rows, []any{&keep, &dimFull, &dayLeft}, func() error {
		if i >= len(cs) {
			return fmt.Errorf("admission answered more values than asked")
		}
		c := cs[i]
		i++
		dec[c] = keep
		switch {
		case keep:
			db.adm.store(project, c, true)
		case dimFull:
			db.adm.store(project, c, false)
			if k := (fullKey{project, c.day, c.dim}); !slices.Contains(full, k) {
				full = append(full, k)
			}
		default:
			// Folded for the cap of today's additions: until today ends,
			// as the cap of the next day lets it in. A second less, for
			// the clocks' rates.
			db.adm.storeFold(project, c, before.Add(time.Duration(dayLeft*float64(time.Second))-time.Second))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if i != len(cs) {
		return fmt.Errorf("admission answered %d of %d values", i, len(cs))
	}
	for _, k := range full {
		rows, err := tx.Query(ctx, `SELECT value FROM rollup_values WHERE project_id = $1 AND day = $2 AND dim = $3`,
			project, dateOf(k.day), int16(k.dim))
		if err != nil {
			return err
		}
		admitted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		db.adm.fill(k, admitted)
	}
	return nil
}

// dateOf returns the time of a PostgreSQL binary date.
func dateOf(d int32) time.Time { return time.Unix(int64(d+postgresEpochDay)*86400, 0).UTC() }

// fold returns r with the values and rows that dec folds counted under
// Other, and what was folded counted in its folds. r holds the rows of a
// project as its events came; dec must decide all of them.
func fold(r *rollup, dec decisions) *rollup {
	out := newRollup()
	for _, k := range r.countKeys {
		v := r.counts[k]
		fk, folded := foldCount(k, dec)
		for _, d := range folded {
			out.addFold(foldKey{k.day, d}, v.events)
		}
		if !isOtherCount(fk) && !dec[countRow(fk)] {
			out.addFold(foldKey{k.day, dimEventKey}, v.events)
			fk = otherCount(fk)
		}
		out.addCount(fk, *v)
	}
	for _, k := range r.weekKeys {
		// The week's row has the service and version as the caps decided
		// them for the day of the event.
		if !dec[candidate{k.day, dimService, k.service}] {
			k.service = Other
		}
		if !dec[candidate{k.day, dimVersion, k.version}] {
			k.version = Other
		}
		k.day = 0
		out.addWeek(k)
	}
	for _, k := range r.userKeys {
		u := r.users[k]
		if !dec[candidate{k.day, dimService, k.service}] {
			k.service = Other
		}
		if !dec[candidate{k.day, dimVersion, u.version}] {
			u.version = Other
		}
		out.addUser(k, u)
	}
	for _, k := range r.flagKeys {
		v := r.flags[k]
		fk, folded := foldFlag(k, dec)
		for _, d := range folded {
			out.addFold(foldKey{k.day, d}, v.events)
		}
		if !isOtherFlag(fk) && !dec[flagRow(fk)] {
			out.addFold(foldKey{k.day, dimFlagKey}, v.events)
			fk = otherFlag(fk)
		}
		out.addFlag(fk, *v)
	}
	for _, k := range r.foldKeys {
		out.addFold(k, r.folds[k])
	}
	return out
}

// foldedTotals returns what r's folds count, by dimension name.
func foldedTotals(r *rollup) map[string]int64 {
	if len(r.foldKeys) == 0 {
		return nil
	}
	m := make(map[string]int64, len(r.foldKeys))
	for _, k := range r.foldKeys {
		m[k.dim.String()] += r.folds[k]
	}
	return m
}
