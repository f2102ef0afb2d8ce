// Package httpapi is the HTTP edge of telemetry-kit's collection server.
// [New] builds a [Server] from a [Config] whose zero value, with a
// [server.Store], means the defaults, and [Server.Handler] returns the
// routes:
//
//	POST /v1/events   ingest a batch (write key)
//	GET  /healthz     the process is up
//	GET  /readyz      the database answers
//	GET  /metrics     Prometheus metrics
//
// # Hostile clients
//
// A write key ships inside public binaries, so every request that carries
// one is treated as hostile. Nothing one request contains may make a later
// valid event unstorable: numbers that are added up are bounded at
// validation ([wire.MaxDurationMS], [wire.MaxDropped]) and the store's sums
// saturate. Request bodies are held within one memory budget
// ([Config.DecodeMemory]); a body it cannot hold gets 503 at once. With a
// store that is a [server.KeyLister], [Server.WatchKeys] holds every valid
// write key in memory, listed at start and after each change; other keys
// are looked up within a budget per client address and in all, so that
// made-up keys cannot keep a valid one out. [NewConnLimiter] caps client
// connections and closes an idle one to make room for a new one. The store
// caps what one project can add to the rollups per day (see
// server/postgres).
package httpapi
