package postgres

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// PostgreSQL type OIDs of rollupSQL's parameters.
const (
	oidInt4       = 23
	oidInt8       = 20
	oidInt4Array  = 1007
	oidBoolArray  = 1000
	oidByteaArray = 1001
	oidTextArray  = 1009
	oidInt8Array  = 1016
	oidDateArray  = 1182
	oidBool       = 16
	oidBytea      = 17
	oidText       = 25
	oidDate       = 1082
	// timestamptz and its array
	oidTimestamptz      = 1184
	oidTimestamptzArray = 1185
)

// rollupParamOIDs are the types of rollupSQL's parameters, in order; the
// parameters are sent in binary in these types.
var rollupParamOIDs = []uint32{
	oidInt4,                                                              // $1 project
	oidDateArray, oidTextArray, oidTextArray, oidTextArray, oidTextArray, // $2–$6 counts: day, service, version, type, name
	oidBoolArray, oidInt8Array, oidInt8Array, oidInt8Array, // $7–$10 success, events, duration sum and count
	oidDateArray, oidTextArray, oidByteaArray, oidTextArray, oidTextArray, oidTextArray, oidBoolArray, // $11–$17 users
	oidInt8,                                                                                          // $18 dropped
	oidInt4Array,                                                                                     // $19 keys
	oidDateArray, oidTextArray, oidTextArray, oidTextArray, oidTextArray, oidTextArray, oidInt8Array, // $20–$26 flags
	oidDateArray, oidTextArray, oidInt8Array, // $27–$29 folds
	oidTextArray, oidTextArray, oidBoolArray, oidTextArray, // $30–$33 counts: os, arch, ci, error kind
	oidInt4Array, oidByteaArray, // $34–$35 counts' users: the row (its ordinal in $2), its users' sketch
	oidInt4Array, oidByteaArray, // $36–$37 flags' users: the row (its ordinal in $20), its users' sketch
	oidInt4Array, oidInt8Array, // $38–$39 counts' durations: the row (its ordinal in $2), a duration
	oidTimestamptzArray, oidTimestamptzArray, // $40–$41 counts: first and last event time
	oidTextArray,                                                                                      // $42 counts: Go version
	oidDateArray, oidByteaArray, oidTextArray, oidTextArray, oidTextArray, oidTextArray, oidBoolArray, // $43–$49 weeks
	oidDateArray, oidTextArray, oidTextArray, oidTextArray, oidTextArray, oidBoolArray, oidTextArray, // $50–$56 platforms
	oidInt8Array, oidInt8Array, oidInt8Array, oidInt8Array, oidInt8Array, // $57–$61 platforms' counts
	oidInt4Array, oidByteaArray, // $62–$63 platforms' users: the row (its ordinal in $50), its users' sketch
	oidTextArray, oidTextArray, oidBoolArray, // $64–$66 flags: os, arch, ci
}

// binaryFormat applies the binary format to every parameter.
var binaryFormat = []int16{1}

// checkRollupStatement checks that a prepared rollupSQL takes the
// parameters rollupParams writes.
func checkRollupStatement(sd *pgconn.StatementDescription) error {
	if !slices.Equal(sd.ParamOIDs, rollupParamOIDs) {
		return errors.New("postgres: the rollup statement's parameter types changed")
	}
	return nil
}

// postgresEpochDay is 2000-01-01, day 0 of PostgreSQL's binary dates, in
// Unix days.
const postgresEpochDay = 10957

// day returns the UTC day of t as a PostgreSQL binary date.
func day(t time.Time) int32 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return int32(d - postgresEpochDay)
}

type countKey struct {
	day                               int32
	success                           int8 // -1: null, 0: false, 1: true
	service, version, eventType, name string
	os, arch, goVersion               string
	ci                                bool
	errorKind                         string
	hasErrorKind                      bool // false: error_kind is null
}

type countVal struct {
	events, durSum, durCount int64
	users                    users
	durations                []int64 // for the row's digest
	first, last              time.Time
}

// users are the distinct users of a rollup row's events, for its sketch.
type users [][32]byte

// add adds u unless it is there. A row's events in one request come from
// few users, usually one.
func (us *users) add(u [32]byte) {
	if !slices.Contains(*us, u) {
		*us = append(*us, u)
	}
}

// addAll adds the users of o.
func (us *users) addAll(o users) {
	for _, u := range o {
		us.add(u)
	}
}

// The sums one transaction adds up in Go cannot overflow: a transaction
// holds at most maxGroupEvents events (or one request of at most
// wire.MaxEvents), each of at most wire.MaxDurationMS. This constant
// does not compile if that stops being true. The database's sums saturate
// (tk_add).
const _ = uint64(math.MaxInt64 - wire.MaxDurationMS*(maxGroupEvents+wire.MaxEvents))

// flagVal is what a daily_flag_counts row counts: flags, and their users.
type flagVal struct {
	events int64
	users  users
}

type flagKey struct {
	day                             int32
	service, version, command, flag string
	value                           string
	hasValue                        bool
	os, arch                        string
	ci                              bool
}

type userKey struct {
	day     int32
	service string
	user    [32]byte
}

// userVal is what daily_users keeps of a user's earliest event of a day.
type userVal struct {
	at                time.Time
	version, os, arch string
	ci                bool
}

// platKey is a row of daily_platform_counts: a projection of a row of
// daily_event_counts.
type platKey struct {
	day                                   int32
	service, version, os, arch, goVersion string
	ci                                    bool
}

type platVal struct {
	events, successes, outcomes, durSum, durCount int64
	users                                         users
}

// platforms returns the rows of daily_platform_counts that r's counts
// make, their keys in order of first appearance.
func (r *rollup) platforms() ([]platKey, map[platKey]*platVal) {
	var keys []platKey
	var m map[platKey]*platVal
	for _, k := range r.countKeys {
		v := r.counts[k]
		p := slot(&m, &keys, platKey{day: k.day, service: k.service, version: k.version, os: k.os, arch: k.arch,
			goVersion: k.goVersion, ci: k.ci})
		p.events += v.events
		if k.success >= 0 {
			p.outcomes += v.events
			if k.success == 1 {
				p.successes += v.events
			}
		}
		p.durSum += v.durSum
		p.durCount += v.durCount
		p.users.addAll(v.users)
	}
	return keys, m
}

// weekKey is a row of weekly_users: a user's week with one combination of
// the dimensions retention filters on. day is that of the events, for the
// caps' decisions on the service and version; folding zeroes it, and rows
// that differ only in it are stored once.
type weekKey struct {
	day, week                  int32 // week: the Monday
	user                       [32]byte
	service, version, os, arch string
	ci                         bool
}

type foldKey struct {
	day int32
	dim dim
}

// rollup is what some newly stored events add to the rollups, aggregated
// by rollup row (without the shard): event counts and durations, users,
// flags, and how many values the cardinality caps folded (see caps.go).
// Each map has its keys in order of first appearance beside it.
type rollup struct {
	counts    map[countKey]*countVal
	countKeys []countKey
	users     map[userKey]userVal
	userKeys  []userKey
	weeks     map[weekKey]struct{}
	weekKeys  []weekKey
	flags     map[flagKey]*flagVal
	flagKeys  []flagKey
	folds     map[foldKey]int64
	foldKeys  []foldKey
}

func newRollup() *rollup {
	return &rollup{counts: make(map[countKey]*countVal, 8), users: make(map[userKey]userVal, 8)}
}

// aggregate returns the rollup of events.
func aggregate(events []*server.Event) *rollup {
	r := newRollup()
	for _, e := range events {
		d := day(e.Timestamp)
		k := countKey{day: d, success: -1, service: e.ServiceName, version: e.ServiceVersion, eventType: e.EventType,
			name: e.Name, os: e.OS, arch: e.Arch, ci: e.CI, goVersion: e.GoVersion}
		if e.ErrorKind != nil {
			k.errorKind, k.hasErrorKind = *e.ErrorKind, true
		}
		if e.Success != nil {
			k.success = 0
			if *e.Success {
				k.success = 1
			}
		}
		v := countVal{events: 1, users: users{e.UserID}, first: e.Timestamp, last: e.Timestamp}
		if e.DurationMS != nil {
			v.durSum, v.durCount = *e.DurationMS, 1
			v.durations = []int64{*e.DurationMS}
		}
		r.addCount(k, v)
		r.addWeek(weekKey{day: d, week: monday(d), user: e.UserID, service: e.ServiceName, version: e.ServiceVersion, os: e.OS,
			arch: e.Arch, ci: e.CI})
		r.addUser(userKey{day: d, service: e.ServiceName, user: e.UserID},
			userVal{at: e.Timestamp, version: e.ServiceVersion, os: e.OS, arch: e.Arch, ci: e.CI})
		for _, f := range e.Flags {
			r.addFlag(flagKey{day: d, service: e.ServiceName, version: e.ServiceVersion, command: e.Name, flag: f.Name,
				value: f.Value, hasValue: f.HasValue, os: e.OS, arch: e.Arch, ci: e.CI},
				flagVal{events: 1, users: users{e.UserID}})
		}
	}
	return r
}

func (r *rollup) addCount(k countKey, v countVal) {
	c := slot(&r.counts, &r.countKeys, k)
	c.events += v.events
	c.durSum += v.durSum
	c.durCount += v.durCount
	c.users.addAll(v.users)
	c.durations = append(c.durations, v.durations...)
	if c.first.IsZero() || v.first.Before(c.first) {
		c.first = v.first
	}
	if v.last.After(c.last) {
		c.last = v.last
	}
}

// addUser keeps the earliest event of a user.
func (r *rollup) addUser(k userKey, v userVal) {
	first, ok := r.users[k]
	if !ok {
		r.userKeys = append(r.userKeys, k)
	} else if !v.at.Before(first.at) {
		return
	}
	r.users[k] = v
}

func (r *rollup) addFlag(k flagKey, v flagVal) {
	f := slot(&r.flags, &r.flagKeys, k)
	f.events += v.events
	f.users.addAll(v.users)
}

func (r *rollup) addFold(k foldKey, n int64) { addTo(&r.folds, &r.foldKeys, k, n) }

func (r *rollup) addWeek(k weekKey) {
	if r.weeks == nil {
		r.weeks = make(map[weekKey]struct{}, 4)
	}
	if _, ok := r.weeks[k]; !ok {
		r.weeks[k] = struct{}{}
		r.weekKeys = append(r.weekKeys, k)
	}
}

// monday returns the Monday of day d's ISO week (PostgreSQL binary dates:
// day 0, 2000-01-01, is a Saturday).
func monday(d int32) int32 {
	return d - ((d+5)%7+7)%7
}

// slot returns the value of k in *m, adding a zero one, and k to *keys,
// when k is new.
func slot[K comparable, V any](m *map[K]*V, keys *[]K, k K) *V {
	if *m == nil {
		*m = make(map[K]*V, 8)
	}
	v, ok := (*m)[k]
	if !ok {
		v = new(V)
		(*m)[k] = v
		*keys = append(*keys, k)
	}
	return v
}

// addTo adds n to the count of k in *m, and k to *keys when it is new.
func addTo[K comparable](m *map[K]int64, keys *[]K, k K, n int64) {
	if *m == nil {
		*m = make(map[K]int64, 8)
	}
	if _, ok := (*m)[k]; !ok {
		*keys = append(*keys, k)
	}
	(*m)[k] += n
}

// merge adds o to r.
func (r *rollup) merge(o *rollup) {
	for _, k := range o.countKeys {
		r.addCount(k, *o.counts[k])
	}
	for _, k := range o.userKeys {
		r.addUser(k, o.users[k])
	}
	for _, k := range o.weekKeys {
		r.addWeek(k)
	}
	for _, k := range o.flagKeys {
		r.addFlag(k, *o.flags[k])
	}
	for _, k := range o.foldKeys {
		r.addFold(k, o.folds[k])
	}
}

// rollupParams encodes r, the keys of the requests whose events it counts
// and dropped as the parameters of rollupSQL, in binary into buf. It
// returns the parameters (slices of the returned buffer).
func rollupParams(buf []byte, projectID int64, keyIDs []int64, r *rollup, dropped int64) ([][]byte, []byte) {
	w := arrayWriter{buf: buf[:0]}
	ends := make([]int, 0, len(rollupParamOIDs)) // where each parameter ends in w.buf
	next := func() { ends = append(ends, len(w.buf)) }
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(projectID))
	next()
	counted := func(elem uint32, f func(k countKey, v *countVal)) {
		array(&w, elem, r.countKeys, func(k countKey) { f(k, r.counts[k]) })
		next()
	}
	counted(oidDate, func(k countKey, _ *countVal) { w.int4(k.day) })
	counted(oidText, func(k countKey, _ *countVal) { w.text(k.service) })
	counted(oidText, func(k countKey, _ *countVal) { w.text(k.version) })
	counted(oidText, func(k countKey, _ *countVal) { w.text(k.eventType) })
	counted(oidText, func(k countKey, _ *countVal) { w.text(k.name) })
	counted(oidBool, func(k countKey, _ *countVal) {
		if k.success < 0 {
			w.null()
		} else {
			w.bool(k.success == 1)
		}
	})
	counted(oidInt8, func(_ countKey, v *countVal) { w.int8(v.events) })
	counted(oidInt8, func(_ countKey, v *countVal) { w.int8(v.durSum) })
	counted(oidInt8, func(_ countKey, v *countVal) { w.int8(v.durCount) })

	user := func(elem uint32, f func(k userKey, v userVal)) {
		array(&w, elem, r.userKeys, func(k userKey) { f(k, r.users[k]) })
		next()
	}
	user(oidDate, func(k userKey, _ userVal) { w.int4(k.day) })
	user(oidText, func(k userKey, _ userVal) { w.text(k.service) })
	user(oidBytea, func(k userKey, _ userVal) { w.bytes(k.user[:]) })
	user(oidText, func(_ userKey, v userVal) { w.text(v.version) })
	user(oidText, func(_ userKey, v userVal) { w.text(v.os) })
	user(oidText, func(_ userKey, v userVal) { w.text(v.arch) })
	user(oidBool, func(_ userKey, v userVal) { w.bool(v.ci) })

	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(dropped))
	next()
	array(&w, oidInt4, keyIDs, func(id int64) { w.int4(int32(id)) })
	next()

	flag := func(elem uint32, f func(k flagKey)) {
		array(&w, elem, r.flagKeys, f)
		next()
	}
	flag(oidDate, func(k flagKey) { w.int4(k.day) })
	flag(oidText, func(k flagKey) { w.text(k.service) })
	flag(oidText, func(k flagKey) { w.text(k.version) })
	flag(oidText, func(k flagKey) { w.text(k.command) })
	flag(oidText, func(k flagKey) { w.text(k.flag) })
	flag(oidText, func(k flagKey) {
		if k.hasValue {
			w.text(k.value)
		} else {
			w.null()
		}
	})
	flag(oidInt8, func(k flagKey) { w.int8(r.flags[k].events) })

	fold := func(elem uint32, f func(k foldKey)) {
		array(&w, elem, r.foldKeys, f)
		next()
	}
	fold(oidDate, func(k foldKey) { w.int4(k.day) })
	fold(oidText, func(k foldKey) { w.text(k.dim.String()) })
	fold(oidInt8, func(k foldKey) { w.int8(r.folds[k]) })

	counted(oidText, func(k countKey, _ *countVal) { w.text(k.os) })
	counted(oidText, func(k countKey, _ *countVal) { w.text(k.arch) })
	counted(oidBool, func(k countKey, _ *countVal) { w.bool(k.ci) })
	counted(oidText, func(k countKey, _ *countVal) {
		if k.hasErrorKind {
			w.text(k.errorKind)
		} else {
			w.null()
		}
	})

	// The users of each row, as pairs (the row's ordinal, the sketch of
	// its users; see sketch.go).
	var rowsOf []int32
	pairs := func(n int, us func(i int) users) {
		rowsOf = rowsOf[:0]
		for i := range n {
			rowsOf = append(rowsOf, int32(i+1))
		}
		array(&w, oidInt4, rowsOf, func(i int32) { w.int4(i) })
		next()
		array(&w, oidBytea, rowsOf, func(i int32) { w.sketch(us(int(i) - 1)) })
		next()
	}
	pairs(len(r.countKeys), func(i int) users { return r.counts[r.countKeys[i]].users })
	pairs(len(r.flagKeys), func(i int) users { return r.flags[r.flagKeys[i]].users })
	// The durations of each row, as pairs (the row's ordinal, a duration).
	rowsOf = rowsOf[:0]
	var durations []int64
	for i, k := range r.countKeys {
		for _, d := range r.counts[k].durations {
			rowsOf = append(rowsOf, int32(i+1))
			durations = append(durations, d)
		}
	}
	array(&w, oidInt4, rowsOf, func(i int32) { w.int4(i) })
	next()
	array(&w, oidInt8, durations, func(d int64) { w.int8(d) })
	next()
	counted(oidTimestamptz, func(_ countKey, v *countVal) { w.timestamptz(v.first) })
	counted(oidTimestamptz, func(_ countKey, v *countVal) { w.timestamptz(v.last) })
	counted(oidText, func(k countKey, _ *countVal) { w.text(k.goVersion) })
	week := func(elem uint32, f func(k weekKey)) {
		array(&w, elem, r.weekKeys, f)
		next()
	}
	week(oidDate, func(k weekKey) { w.int4(k.week) })
	week(oidBytea, func(k weekKey) { w.bytes(k.user[:]) })
	week(oidText, func(k weekKey) { w.text(k.service) })
	week(oidText, func(k weekKey) { w.text(k.version) })
	week(oidText, func(k weekKey) { w.text(k.os) })
	week(oidText, func(k weekKey) { w.text(k.arch) })
	week(oidBool, func(k weekKey) { w.bool(k.ci) })
	pkeys, pvals := r.platforms()
	plat := func(elem uint32, f func(k platKey, v *platVal)) {
		array(&w, elem, pkeys, func(k platKey) { f(k, pvals[k]) })
		next()
	}
	plat(oidDate, func(k platKey, _ *platVal) { w.int4(k.day) })
	plat(oidText, func(k platKey, _ *platVal) { w.text(k.service) })
	plat(oidText, func(k platKey, _ *platVal) { w.text(k.version) })
	plat(oidText, func(k platKey, _ *platVal) { w.text(k.os) })
	plat(oidText, func(k platKey, _ *platVal) { w.text(k.arch) })
	plat(oidBool, func(k platKey, _ *platVal) { w.bool(k.ci) })
	plat(oidText, func(k platKey, _ *platVal) { w.text(k.goVersion) })
	plat(oidInt8, func(_ platKey, v *platVal) { w.int8(v.events) })
	plat(oidInt8, func(_ platKey, v *platVal) { w.int8(v.successes) })
	plat(oidInt8, func(_ platKey, v *platVal) { w.int8(v.outcomes) })
	plat(oidInt8, func(_ platKey, v *platVal) { w.int8(v.durSum) })
	plat(oidInt8, func(_ platKey, v *platVal) { w.int8(v.durCount) })
	pairs(len(pkeys), func(i int) users { return pvals[pkeys[i]].users })
	flag(oidText, func(k flagKey) { w.text(k.os) })
	flag(oidText, func(k flagKey) { w.text(k.arch) })
	flag(oidBool, func(k flagKey) { w.bool(k.ci) })

	params := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		params[i] = w.buf[start:end:end]
		start = end
	}
	return params, w.buf
}

// arrayWriter writes one-dimensional arrays in PostgreSQL's binary format.
type arrayWriter struct {
	buf     []byte
	hasNull int     // where the has-nulls flag of the array being written is
	hashes  []int64 // scratch space of sketch
}

// array writes an array of elements of type elem, one per key, written by f.
func array[K any](w *arrayWriter, elem uint32, keys []K, f func(K)) {
	w.start(len(keys), elem)
	for _, k := range keys {
		f(k)
	}
}

// start writes the header of an array of n elements of type elem.
func (w *arrayWriter) start(n int, elem uint32) {
	if n == 0 {
		w.buf = binary.BigEndian.AppendUint32(w.buf, 0) // no dimensions
		w.buf = binary.BigEndian.AppendUint32(w.buf, 0)
		w.buf = binary.BigEndian.AppendUint32(w.buf, elem)
		return
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, 1)
	w.hasNull = len(w.buf)
	w.buf = binary.BigEndian.AppendUint32(w.buf, 0) // set by null
	w.buf = binary.BigEndian.AppendUint32(w.buf, elem)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(n))
	w.buf = binary.BigEndian.AppendUint32(w.buf, 1) // lower bound
}

// null writes a null element and marks the array as holding nulls.
func (w *arrayWriter) null() {
	binary.BigEndian.PutUint32(w.buf[w.hasNull:], 1)
	w.buf = appendNull(w.buf)
}
func (w *arrayWriter) int4(v int32) { w.buf = appendInt4(w.buf, v) }
func (w *arrayWriter) int8(v int64) { w.buf = appendInt8(w.buf, v) }
func (w *arrayWriter) bool(v bool)  { w.buf = appendBool(w.buf, v) }
func (w *arrayWriter) text(s string) {
	w.buf = appendText(w.buf, s)
}
func (w *arrayWriter) bytes(b []byte) { w.buf = appendBytes(w.buf, b) }

// timestamptz writes t as microseconds since 2000-01-01 UTC.
func (w *arrayWriter) timestamptz(t time.Time) {
	w.buf = appendInt8(w.buf, t.UnixMicro()-int64(postgresEpochDay)*86400*1_000_000)
}
