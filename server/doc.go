// Package server is the collection server of telemetry-kit: the domain types
// it stores, the validation of the wire protocol v1 (docs/protocol.md) and the
// HTTP edge that ingests events.
//
// # Layout
//
// The HTTP side lives here: [New] builds a [Server] from a [Config] whose
// zero value means the defaults, and [Server.Handler] returns the routes:
//
//	POST /v1/events   ingest a batch (write key)
//	GET  /healthz     the process is up
//	GET  /readyz      the database answers
//	GET  /metrics     Prometheus metrics
//
// Storage is behind the [Store] interface; package server/postgres
// implements it on PostgreSQL.
//
// # Decoding
//
// [DecodeBatch] turns a request body into valid [Event] values and a list of
// [Rejection]s, one per invalid event. It never fails the whole batch for one
// bad event; it fails it (with an [*Error] of kind [KindBadRequest] or
// [KindTooLarge]) only when the body itself is not a batch.
//
// # Keys
//
// Keys are "tk_w_" (write) or "tk_r_" (read) followed by 43 base64url
// characters (32 random bytes). Only their SHA-256 hash is stored; see
// [NewKey] and [HashKey]. With a store that is a [KeyLister],
// [Server.WatchKeys] holds every valid write key in memory, listed at start
// and after each change; other keys are read from the database within a
// lookup budget per client and in all. Every transaction that stores
// events checks the key again, so a revoked key stops working at once.
//
// # Caveats
//
// The server acknowledges an event with 2xx only after the database commit.
// When the store fails, the request gets 503 with Retry-After; the client
// resends and the event id makes the retry idempotent.
package server
