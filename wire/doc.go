// Package wire defines telemetry-kit's wire protocol v1 once, for the SDK
// and the server: the event and its JSON encoding ([Event], [AppendEvent]),
// the request body ([Batch], [AppendBatch]), the answers ([Response],
// [Rejection], [ErrorResponse]) and the reasons for rejecting an event, the
// limits, the name rules ([ValidEventType], [ValidServiceName]) and the
// UUIDv7 helpers that read an event_id's time.
//
// It uses the standard library only, so that any client can depend on it.
// docs/protocol.md describes the protocol in prose; where the two differ,
// this package is right.
package wire
