// Package store is the SDK's durable local event queue: a FIFO of events in a
// bbolt file that survives crashes, offline periods and many processes of the
// same tool running at once.
//
// [Open] prepares a [Queue] for a file path (core uses
// os.UserCacheDir()/<service>/queue.db). [Queue.Append] adds events;
// the sync layer reads a batch with [Queue.Peek], sends it, and deletes it
// with [Queue.Ack] only after the server confirmed it. [Queue.Len],
// [Queue.All], [Queue.Purge], [Queue.Summary] (what a sender reads to decide
// whether a send is due, in one open) and [Queue.GetMeta]/[Queue.PutMeta]
// (the sender's own state) complete the API. The store treats event data as
// opaque bytes and never parses it. A Queue needs no Close: it holds no file
// open between calls.
//
// # File layout
//
// The queue directory holds:
//
//	queue.db                 the bbolt file
//	queue.log                the journal (with Options.Journal)
//	queue.db.sum             the summary file: what Summary reads in queue.db
//	runs2.log, runs.log      the runs logs: CLI runs under way, and finished runs to queue (runs.go)
//	queue.db.corrupt-<unix>  damaged queue files moved aside (at most 2 kept)
//	spool/<event_id>.json    events written while the file's lock was busy
//	spool/_d<ts>-<pid>.drop  counts of events that could not be stored
//
// Inside queue.db, bucket "events" maps the bucket's NextSequence (8 bytes,
// big-endian, so key order is enqueue order) to uvarint(len(id)), the id and
// the data; bucket "ids" maps each event_id to its sequence key, so an ID is
// stored once; bucket "meta" keeps the event count, the sum of data sizes and
// the dropped counter, so that enforcing the limits never scans; bucket "kv"
// holds [Queue.PutMeta] values. Spool files whose event_id is not made of
// lower-case letters, digits and '-' (8 to 128 bytes) are named
// _h<sha256 of the id>.json instead; each holds the id, the data and a
// timestamp and process id that order it.
//
// # Concurrency
//
// A Queue never keeps the bbolt file open between operations: each
// operation opens it, runs one transaction and closes it, so the file lock
// is held for milliseconds. bbolt's lock wait is always bounded: no
// operation waits longer than Options.LockTimeout (default 250ms) for it,
// counting the wait for other goroutines of the same process, which take
// turns on a channel rather than polling the lock.
//
// When [Queue.Append] cannot have the lock in time (or the file cannot be
// opened at all), it writes each record to the spool directory instead, as
// spool/<event_id>.json: a temp file is written, fsynced and renamed into
// place, and the directory is fsynced, so the event is durable when Append
// returns nil. Every later operation that does get the lock first drains the
// spool into the queue file, in the records' original order and skipping
// IDs already queued, in the same transaction as its own work; the drained
// files are removed after the commit, while the lock is still held.
// Read operations ([Queue.Peek], [Queue.Len], [Queue.Dropped], [Queue.All],
// [Queue.GetMeta]) and the other writes return [ErrLocked] when the lock
// cannot be had in time; the caller tries again later. [Queue.Len] counts
// spooled records too.
//
// An event is lost only if even the spool write fails, or the spool already
// holds MaxEvents files (the queue file has been unavailable for long). Then
// Append returns an error wrapping [ErrNotStored], and the drop is also
// counted in a small drop file in the spool directory, which the next
// operation holding the lock adds to the dropped counter. If the drop file
// cannot be written either, the error (and an error-level log record) is
// the only report.
//
// # Journal
//
// A process that appends one event and exits (CLI mode) would pay for a
// whole bbolt transaction per event: opening and mapping the file, writing
// the changed pages and two fsyncs. With Options.Journal, [Queue.Append]
// instead appends the records to queue.log, an append-only file next to the
// queue file, in one write under the journal's own lock (held only for that
// write), and fsyncs it with the lock released; the event is durable when
// Append returns nil. Every operation that holds the queue file's lock and
// finds the journal non-empty takes the journal's lock too, moves its
// records into the queue file in the same transaction as its own work (in
// journal order, skipping IDs already queued, applying the limits), and
// truncates the journal after the commit. [Queue.Summary] reads the journal
// in place instead, so the sender's due check changes nothing; it counts
// records by their frame headers and checks only the first one (3 µs for a
// journal of 256 KiB, against 0.38 ms to check and copy every record).
//
// Nor does the due check open the queue file while it is unchanged: every
// process that writes queue.db leaves beside it queue.db.sum, with the
// count, the oldest record, the counters and the meta values Summary reads
// there, stamped with queue.db's size and modification time after the
// write. Summary uses it while queue.db still has that size and time, and
// otherwise reads queue.db in a read transaction and writes queue.db.sum
// afresh. A write removes queue.db.sum before it starts, so that a process
// killed between its commit and the new summary file leaves none behind. A
// CLI run with an endpoint thus decides whether to start a sender with a
// few small reads instead of opening the bbolt file, and answers even while
// another process holds the queue file.
//
// The journal is a sequence of frames, each with a magic number, a length
// and an FNV-1a checksum, so a write torn by a crash, or damage, costs only
// the record it hits: readers skip to the next frame that checks out. Such a
// record was never acknowledged by Append (it had not returned), so it is
// not counted as dropped. The first frame of an emptied journal names a
// random generation; the queue file records the generation and the offset
// it has taken in, in the transaction that takes the records in, so a
// journal whose truncation was lost to a crash is not taken in twice, even
// after its events were sent and acknowledged.
//
// A process's events keep their order across the journal and the spool. An
// Append that finds the journal busy past its lock timeout (another process
// moving it in) spools its records; until they are moved in, that
// process's later Appends go to the queue file (and so drain the spool
// first) or to the spool, not to the journal. An operation that drains the
// spool moves the journal in first, also [Queue.Summary]; if the journal's
// lock cannot be had then, the operation returns [ErrLocked] and an Append
// spools.
//
// From 256 KiB (or MaxBytes, if smaller) Append moves the journal in itself,
// with its own records, instead of adding to it; only if the queue file's
// lock cannot be had then does it add to the journal up to 1 MiB, and past
// that it spools. Many processes appending at once contend only for the
// journal's short write lock.
//
// # Durability
//
// bbolt's default fsync on commit is kept (NoSync is never set), and spool
// files are fsynced before they are renamed into place. A process killed at
// any point leaves a file that reopens; every record for which Append
// returned nil is in the queue file or the spool, and the ID index and the
// drain's dedup mean none is stored twice. An event whose Append had not
// returned may or may not be there, but never twice. Drained spool files
// are removed while the lock is still held, but the removal is not fsynced:
// after a power loss (not a process kill) a drained file may reappear. Its
// event is skipped if still queued; if it had already been sent and
// acknowledged it is queued again with the same event_id, which the server
// deduplicates.
//
// # Limits
//
// The queue keeps at most Options.MaxEvents events (default 10,000) and
// Options.MaxBytes of event data (default 5 MiB, the sum of Record.Data
// sizes). Past either limit the oldest events are dropped, in the same
// transaction as the append that went over. The number dropped is persisted
// and returned as [Batch.Dropped] with every batch until [Queue.Ack]
// subtracts the count the server received, so the author sees the loss. A
// record larger than MaxBytes by itself is dropped and counted, and Append
// returns an error wrapping [ErrTooLarge]. [Queue.Purge] resets the counter.
//
// # Corruption
//
// A queue file that cannot be used is moved aside to
// queue.db.corrupt-<unix> and a fresh one is started in its place, and the
// operation carries on with it; this is logged through Options.Logger at
// warning level. That covers garbage bytes, a truncated file (shorter than
// its own pages, checked on every open), any error from bbolt at open other
// than the lock timeout and transient resource errors, an unreadable file,
// and a panic or memory fault inside bbolt (faults on the mapped file are
// turned into panics for the operation's goroutine and recovered). After a
// panic in a transaction the file is read through; it is moved aside only if
// that check fails too. The file is renamed only while its lock is held and
// the path still names it, so a process never moves aside a file another
// one has just created. At most two moved-aside files are kept. A
// zero-length file is initialized as a new one by bbolt (under the lock), so
// it is not moved; if it was not new (older than a minute) a warning is
// logged.
//
// The events in a moved-aside file are not recovered. When the damaged file
// still records how many it held (a truncated file, a damaged page), that
// number is added to the dropped counter, so the author sees the loss;
// otherwise the log is the only report. Nothing in this package panics into
// the host or waits unbounded.
//
// Where an open file cannot be renamed (Windows), the damaged file is copied
// to queue.db.corrupt-<unix> under its lock and then emptied, and bbolt
// starts afresh in it. If even that fails (bbolt faulted while opening it
// and its memory map cannot be released), the failure is logged at error
// level, operations on the file fail, and Append keeps events in the spool
// (up to MaxEvents).
package store
