package postgres

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// copyColumns is what follows the table name in the COPY statement whose
// binary data copyData writes.
var copyColumns = " (" + strings.Join(eventColumns, ", ") + ") FROM STDIN (FORMAT binary)"

// beginCopySQL starts a transaction and the COPY into events in one round
// trip.
var beginCopySQL = "BEGIN; COPY events" + copyColumns

// postgresEpoch is the zero of PostgreSQL's binary timestamps.
var postgresEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// copyMessages appends to buf the protocol messages that run copySQL (a
// COPY … FROM STDIN (FORMAT binary), after BEGIN) with events as its data:
// the simple query, one CopyData message holding copyData's encoding, and
// CopyDone.
func copyMessages(buf []byte, copySQL string, projectID int64, events []*server.Event) []byte {
	buf, _ = (&pgproto3.Query{String: copySQL}).Encode(buf)
	// CopyData: 'd', then the length of the message without the 'd',
	// filled in once the data is written.
	buf = append(buf, 'd', 0, 0, 0, 0)
	start := len(buf)
	buf = copyData(buf, projectID, events)
	binary.BigEndian.PutUint32(buf[start-4:], uint32(4+len(buf)-start))
	buf, _ = (&pgproto3.CopyDone{}).Encode(buf)
	return buf
}

// copyData encodes events as the binary COPY data of copySQL (PostgreSQL's
// binary copy format: a header, one tuple per event, a trailer), in the
// order of eventColumns.
func copyData(buf []byte, projectID int64, events []*server.Event) []byte {
	buf = append(buf, "PGCOPY\n\377\r\n\000"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension
	for _, e := range events {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(eventColumns)))
		buf = appendInt4(buf, int32(projectID))
		buf = appendBytes(buf, e.EventID[:])
		buf = appendInt8(buf, e.Timestamp.Sub(postgresEpoch).Microseconds())
		buf = appendText(buf, e.ServiceName)
		buf = appendText(buf, e.ServiceVersion)
		buf = appendText(buf, e.EventType)
		buf = appendText(buf, e.Name)
		if e.Success == nil {
			buf = appendNull(buf)
		} else {
			buf = appendBool(buf, *e.Success)
		}
		if e.DurationMS == nil {
			buf = appendNull(buf)
		} else {
			buf = appendInt8(buf, *e.DurationMS)
		}
		if e.ExitCode == nil {
			buf = appendNull(buf)
		} else {
			buf = appendInt4(buf, *e.ExitCode)
		}
		if e.ErrorKind == nil {
			buf = appendNull(buf)
		} else {
			buf = appendText(buf, *e.ErrorKind)
		}
		buf = appendBytes(buf, e.UserID[:])
		buf = appendBytes(buf, e.SessionID[:])
		buf = appendText(buf, e.SDKName)
		buf = appendText(buf, e.SDKVersion)
		buf = appendText(buf, e.OS)
		buf = appendText(buf, e.Arch)
		buf = appendBool(buf, e.CI)
		buf = appendText(buf, e.CIName)
		buf = appendText(buf, e.GoVersion)
		// jsonb: a version byte, then the JSON text.
		buf = binary.BigEndian.AppendUint32(buf, uint32(1+len(e.Metadata)))
		buf = append(buf, 1)
		buf = append(buf, e.Metadata...)
	}
	return binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
}

func appendNull(buf []byte) []byte { return binary.BigEndian.AppendUint32(buf, 0xffffffff) }

func appendInt4(buf []byte, v int32) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 4)
	return binary.BigEndian.AppendUint32(buf, uint32(v))
}

func appendInt8(buf []byte, v int64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

func appendBool(buf []byte, v bool) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 1)
	if v {
		return append(buf, 1)
	}
	return append(buf, 0)
}

func appendText(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

func appendBytes(buf []byte, b []byte) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
	return append(buf, b...)
}
