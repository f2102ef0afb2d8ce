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
// [wire.Rejection]s, one per invalid event. It never fails the whole batch for one
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
// # Hostile clients
//
// A write key ships inside public binaries, so every request that carries
// one is treated as hostile. Nothing one request contains may make a later
// valid event unstorable: numbers that are added up are bounded at
// validation ([wire.MaxDurationMS], [wire.MaxDropped]) and the store's sums saturate.
// Request bodies are held within one memory budget
// ([Config.DecodeMemory]); a body it cannot hold gets 503 at once. Valid
// write keys are held in memory ([Server.WatchKeys]) and other keys are
// looked up within a budget per client address and in all, so that
// made-up keys cannot keep a valid one out. The store caps what one
// project can add to the rollups per day (see server/postgres).
//
// # Caveats
//
// The server acknowledges an event with 2xx only after the database commit.
// When the store fails, the request gets 503 with Retry-After; the client
// resends and the event id makes the retry idempotent.
package server
