// Package server holds the domain of telemetry-kit's collection server: the
// events it stores ([Event], decoded from the wire protocol v1 of package
// wire), the projects and their keys ([Project], [Key], [NewKey],
// [HashKey]), the storage it needs ([Store], [KeyLister]) and its errors,
// whose kinds are HTTP statuses ([Error], [Kind]).
//
// It depends on the standard library and package wire only. The other
// concerns each live in a package of their own:
//
//	server/decode    the request body → valid events and per-event rejections
//	server/httpapi   the HTTP edge: routes, keys, limits, metrics, connections
//	server/postgres  the Store on PostgreSQL: events, rollups, caps, partitions
//	server/pgtest    isolated PostgreSQL databases for tests
//
// cmd/tk-server wires them into one binary.
//
// # Keys
//
// Keys are "tk_w_" (write) or "tk_r_" (read) followed by 43 base64url
// characters (32 random bytes). Only their SHA-256 hash is stored; see
// [NewKey] and [HashKey]. Every transaction that stores events checks the
// key again, so a revoked key stops working at once.
//
// # Caveats
//
// The server acknowledges an event with 2xx only after the database commit.
// When the store fails, the request gets 503 with Retry-After; the client
// resends and the event id makes the retry idempotent.
package server
