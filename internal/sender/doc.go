// Package sender delivers queued events to the collection server, as wire
// protocol v1 (docs/protocol.md) says, without ever making the host wait on
// the network.
//
// # Sending
//
// A [Sender] runs one send: [Sender.Run] loops Peek, POST and Ack on the
// local queue (package store) until the queue is empty, a request fails, or
// its context ends. The queue file is locked only for the short Peek and Ack
// transactions, never while a request is in flight, so the host's own writes
// never wait on the network. Requests go through go-retryablehttp with a
// small budget: at most [Config.Retries] quick retries of a network error or
// a 5xx (a timed-out attempt is not retried), each attempt bounded by
// [Config.AttemptTimeout]; its logger is the caller's, never stderr.
//
// An event leaves the queue only when the server accepted it, reported it as
// a duplicate, or rejected it as permanently invalid in a 200 response. A
// 413 halves the batch, a 400 or 415 splits it to isolate the bad event; a
// single event refused that way is dropped and counted, and the count goes
// to the server in the next request's "dropped" field with the queue's own.
// A 200 whose body is cut off or does not account for every event keeps the
// whole batch: the server de-duplicates the re-send by event_id.
//
// # Schedule
//
// The sender's [State] lives in the queue file under [StateKey], so it holds
// across process runs. A network error, a timeout, a 5xx or a 429/503 ends
// the run and schedules the next attempt: after Retry-After (clamped to
// [1s, 1h]) when the server gave one, else after an exponential backoff with
// jitter, from one minute doubling to 24 hours, cleared by a success. A 401
// or 403 pauses sending with the same key for 24 hours; the queue is kept.
// [Policy.Check] decides, with one read of the queue file, whether a send is
// due: at least MinEvents queued or the oldest MaxAge old, and no attempt
// scheduled later, no block, no sender just started.
//
// # Single flight
//
// At most one sender runs per queue: [TryLock] takes an exclusive,
// non-blocking lock on a file next to the queue (flock on Unix, LockFileEx on
// Windows), which the operating system releases when the holder exits, even
// by kill -9. A process that starts a detached sender marks the start in
// that file ([Lock.MarkStarted]) so that others do not start a second one
// before it takes the lock.
//
// # Detached sender
//
// [Detach] starts a process that outlives its parent and holds none of its
// pipes: standard streams on the null device, a session (Unix) or process
// group (Windows) of its own, released without being waited for. Package
// core uses it in CLI mode to run the sender out of band.
package sender
