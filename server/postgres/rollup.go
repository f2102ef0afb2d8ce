package postgres

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/telemetry-kit/telemetry-kit/server"
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
}

type countVal struct{ events, durSum, durCount int64 }

type flagKey struct {
	day                             int32
	service, version, command, flag string
	value                           string
	hasValue                        bool
}

type userKey struct {
	day     int32
	service string
	user    [32]byte
}

// rollupParams aggregates events (all newly stored) into the parameters of
// rollupSQL, encoded in binary into buf. It returns the parameters (slices
// of the returned buffer).
func rollupParams(buf []byte, projectID int64, keyIDs []int64, events []*server.Event, dropped int64) ([][]byte, []byte) {
	counts := make(map[countKey]*countVal, 8)
	var order []countKey
	users := make(map[userKey]*server.Event, 8) // the user's earliest event
	var userOrder []userKey
	var flags map[flagKey]int64
	var flagOrder []flagKey
	for _, e := range events {
		d := day(e.Timestamp)
		k := countKey{day: d, success: -1, service: e.ServiceName, version: e.ServiceVersion, eventType: e.EventType,
			name: e.Name}
		if e.Success != nil {
			k.success = 0
			if *e.Success {
				k.success = 1
			}
		}
		v, ok := counts[k]
		if !ok {
			v = &countVal{}
			counts[k] = v
			order = append(order, k)
		}
		v.events++
		if e.DurationMS != nil {
			v.durSum += *e.DurationMS
			v.durCount++
		}
		uk := userKey{day: d, service: e.ServiceName, user: e.UserID}
		if first, ok := users[uk]; !ok {
			users[uk] = e
			userOrder = append(userOrder, uk)
		} else if e.Timestamp.Before(first.Timestamp) {
			users[uk] = e
		}
		for _, f := range e.Flags {
			fk := flagKey{day: d, service: e.ServiceName, version: e.ServiceVersion, command: e.Name, flag: f.Name,
				value: f.Value, hasValue: f.HasValue}
			if flags == nil {
				flags = make(map[flagKey]int64, 8)
			}
			if _, ok := flags[fk]; !ok {
				flagOrder = append(flagOrder, fk)
			}
			flags[fk]++
		}
	}

	var ends [26]int
	w := arrayWriter{buf: buf[:0]}
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(projectID))
	ends[0] = len(w.buf)
	param := func(i int, elem uint32, hasNull bool, f func(k countKey, v *countVal)) {
		w.start(len(order), elem, hasNull)
		for _, k := range order {
			f(k, counts[k])
		}
		ends[i] = len(w.buf)
	}
	param(1, oidDate, false, func(k countKey, _ *countVal) { w.int4(k.day) })
	param(2, oidText, false, func(k countKey, _ *countVal) { w.text(k.service) })
	param(3, oidText, false, func(k countKey, _ *countVal) { w.text(k.version) })
	param(4, oidText, false, func(k countKey, _ *countVal) { w.text(k.eventType) })
	param(5, oidText, false, func(k countKey, _ *countVal) { w.text(k.name) })
	hasNull := false
	for _, k := range order {
		hasNull = hasNull || k.success < 0
	}
	param(6, oidBool, hasNull, func(k countKey, _ *countVal) {
		if k.success < 0 {
			w.null()
		} else {
			w.bool(k.success == 1)
		}
	})
	param(7, oidInt8, false, func(_ countKey, v *countVal) { w.int8(v.events) })
	param(8, oidInt8, false, func(_ countKey, v *countVal) { w.int8(v.durSum) })
	param(9, oidInt8, false, func(_ countKey, v *countVal) { w.int8(v.durCount) })

	user := func(i int, elem uint32, f func(k userKey, e *server.Event)) {
		w.start(len(userOrder), elem, false)
		for _, k := range userOrder {
			f(k, users[k])
		}
		ends[i] = len(w.buf)
	}
	user(10, oidDate, func(k userKey, _ *server.Event) { w.int4(k.day) })
	user(11, oidText, func(k userKey, _ *server.Event) { w.text(k.service) })
	user(12, oidBytea, func(k userKey, _ *server.Event) { w.bytes(k.user[:]) })
	user(13, oidText, func(_ userKey, e *server.Event) { w.text(e.ServiceVersion) })
	user(14, oidText, func(_ userKey, e *server.Event) { w.text(e.OS) })
	user(15, oidText, func(_ userKey, e *server.Event) { w.text(e.Arch) })
	user(16, oidBool, func(_ userKey, e *server.Event) { w.bool(e.CI) })

	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(dropped))
	ends[17] = len(w.buf)
	w.start(len(keyIDs), oidInt4, false)
	for _, id := range keyIDs {
		w.int4(int32(id))
	}
	ends[18] = len(w.buf)

	flag := func(i int, elem uint32, hasNull bool, f func(k flagKey)) {
		w.start(len(flagOrder), elem, hasNull)
		for _, k := range flagOrder {
			f(k)
		}
		ends[i] = len(w.buf)
	}
	flag(19, oidDate, false, func(k flagKey) { w.int4(k.day) })
	flag(20, oidText, false, func(k flagKey) { w.text(k.service) })
	flag(21, oidText, false, func(k flagKey) { w.text(k.version) })
	flag(22, oidText, false, func(k flagKey) { w.text(k.command) })
	flag(23, oidText, false, func(k flagKey) { w.text(k.flag) })
	hasNull = false
	for _, k := range flagOrder {
		hasNull = hasNull || !k.hasValue
	}
	flag(24, oidText, hasNull, func(k flagKey) {
		if k.hasValue {
			w.text(k.value)
		} else {
			w.null()
		}
	})
	flag(25, oidInt8, false, func(k flagKey) { w.int8(flags[k]) })

	params := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		params[i] = w.buf[start:end:end]
		start = end
	}
	return params, w.buf
}

// arrayWriter writes one-dimensional arrays in PostgreSQL's binary format.
type arrayWriter struct{ buf []byte }

// start writes the header of an array of n elements of type elem.
func (w *arrayWriter) start(n int, elem uint32, hasNull bool) {
	if n == 0 {
		w.buf = binary.BigEndian.AppendUint32(w.buf, 0) // no dimensions
		w.buf = binary.BigEndian.AppendUint32(w.buf, 0)
		w.buf = binary.BigEndian.AppendUint32(w.buf, elem)
		return
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, 1)
	flag := uint32(0)
	if hasNull {
		flag = 1
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, flag)
	w.buf = binary.BigEndian.AppendUint32(w.buf, elem)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(n))
	w.buf = binary.BigEndian.AppendUint32(w.buf, 1) // lower bound
}

func (w *arrayWriter) null()        { w.buf = appendNull(w.buf) }
func (w *arrayWriter) int4(v int32) { w.buf = appendInt4(w.buf, v) }
func (w *arrayWriter) int8(v int64) { w.buf = appendInt8(w.buf, v) }
func (w *arrayWriter) bool(v bool)  { w.buf = appendBool(w.buf, v) }
func (w *arrayWriter) text(s string) {
	w.buf = appendText(w.buf, s)
}
func (w *arrayWriter) bytes(b []byte) { w.buf = appendBytes(w.buf, b) }
