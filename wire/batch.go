package wire

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Request: where and how a batch is sent (docs/protocol.md, "Sending").
const (
	EventsPath      = "/v1/events"       // POST, with the write key as a Bearer token
	ContentType     = "application/json" // of the request and of every response
	ContentEncoding = "gzip"             // the only encoding accepted besides identity
)

// Batch is the body of a request: the events, as JSON objects, and how many
// events the client's queue dropped since the last batch the server
// acknowledged.
type Batch struct {
	Events  []json.RawMessage `json:"events"`
	Dropped uint64            `json:"dropped"`
}

// AppendBatch appends the body of a request to b: {"events":[…],"dropped":N}
// around events, each already the JSON encoding of one event. A dropped
// count above [MaxDropped] is sent as MaxDropped, which the server accepts.
func AppendBatch(b []byte, dropped uint64, events ...[]byte) []byte {
	b = append(b, `{"events":[`...)
	for i, ev := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
	}
	b = append(b, `],"dropped":`...)
	b = strconv.AppendUint(b, min(dropped, MaxDropped), 10)
	return append(b, '}')
}

// Response is the body of a 200 answer to a batch: every event of the
// request is counted once, as accepted, as a duplicate (an event the
// server already stored, or will never store) or as rejected. A client
// drops all of them from its queue. Erased counts the duplicates that are
// events of a user whose data was erased, recorded before the erasure:
// discarded, never stored. They are among the duplicates, so that clients
// that do not know this field account for every event all the same.
type Response struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Erased     int         `json:"erased,omitempty"`
	Rejected   []Rejection `json:"rejected"`
}

// Rejection reports one invalid event of a batch by its index in the
// request, with a reason such as [ReasonTimestampInFuture] or one made by
// [MissingField], [InvalidField] or [TooLong].
type Rejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

// ErrorResponse is the body of every answer but 200.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ParseResponse decodes the body of a 200 answer. Both counts must be
// there: a body without them is not a server's answer.
func ParseResponse(body []byte) (Response, error) {
	var r struct {
		Accepted   *int        `json:"accepted"`
		Duplicates *int        `json:"duplicates"`
		Erased     int         `json:"erased"`
		Rejected   []Rejection `json:"rejected"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Response{}, err
	}
	if r.Accepted == nil || r.Duplicates == nil {
		return Response{}, errors.New(`response without "accepted" and "duplicates"`)
	}
	return Response{Accepted: *r.Accepted, Duplicates: *r.Duplicates, Erased: r.Erased, Rejected: r.Rejected}, nil
}

// Reasons for rejecting one event (docs/protocol.md).
const (
	ReasonMetadataTooLarge  = "metadata_too_large"
	ReasonMetadataTooDeep   = "metadata_too_deep"
	ReasonTimestampInFuture = "timestamp_in_future"
	ReasonTimestampTooOld   = "timestamp_too_old"
	ReasonInvalidUTF8       = "invalid_utf8"
	ReasonNULByte           = "nul_byte"
	ReasonDuplicateInBatch  = "duplicate_in_batch"
	ReasonInvalidEvent      = "invalid_event"
)

// MissingField is the reason for an event without a required member, such
// as "missing_field:event_id".
func MissingField(field string) string { return "missing_field:" + field }

// InvalidField is the reason for an event whose member has a wrong type or
// form, such as "invalid_field:metadata.exit_code".
func InvalidField(field string) string { return "invalid_field:" + field }

// TooLong is the reason for an event whose string member is over its
// limit, such as "too_long:service_version".
func TooLong(field string) string { return "too_long:" + field }
