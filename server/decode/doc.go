// Package decode turns the body of an ingest request into valid events.
//
// [Batch] reads a batch of the wire protocol v1 (package wire) into
// [server.Event] values and a list of [wire.Rejection]s, one per invalid
// event. It never fails the whole batch for one bad event; it fails it
// (with a [*server.Error] of kind [server.KindBadRequest] or
// [server.KindTooLarge]) only when the body itself is not a batch.
//
// The body is scanned once by a small validating JSON scanner (scan.go):
// each element of "events" is validated as JSON and decoded in the same
// pass, its members found by name as the scanner meets them, and checked
// against the protocol's limits and rules (decode.go). A reference decoder
// built on encoding/json (decode_ref_test.go) is compared with it by a
// differential fuzz test, and a golden test sends what the SDK encodes
// through it.
package decode
