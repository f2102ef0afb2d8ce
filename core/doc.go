// Package core is the telemetry-kit SDK: the [Client] that records events
// for a Go command-line tool or library, and its [Config].
//
// Three lines instrument a program:
//
//	tk, _ := core.New(core.Config{ServiceName: "my-cli", Endpoint: "https://t.example.com", APIKey: key})
//	defer tk.Close(context.Background())
//	tk.TrackFeature("watch", core.Props{"interval_s": 5})
//
// Command-line tools built on cobra or urfave/cli get the same with one line
// from the adapters in adapters/cobra and adapters/urfave.
//
// # Events
//
// An event is the JSON object described in docs/protocol.md and defined by
// package wire ([wire.Event]): an event ID (a UUIDv7, the idempotency key),
// the service, the event type, a UTC timestamp with milliseconds, the
// anonymous user ID, the session, the SDK, a small environment and the
// metadata. [Client.TrackCommand] records
// command_executed, [Client.TrackFeature] feature_used, [Client.TrackMethod]
// method_called, and [Client.Track] an author's own snake_case type.
//
// # Running modes
//
// In [CLIMode] (one short process per command) each Track call writes its
// event durably to the local queue before it returns; the write waits for the
// queue's file lock at most Config.Queue.LockTimeout, then spools the event to a
// side file. In [LibraryMode] (a long-running host) Track
// never blocks and does no I/O on the caller's goroutine: events go to a
// bounded in-memory buffer, and one goroutine writes them to the queue in
// batches, by size or time, and at [Client.Close]. When the buffer is full,
// Track drops the event and counts it ([Client.Lost]).
//
// One session lasts for the whole process in CLI mode; in library mode a
// session ends after Config.Library.SessionTimeout (30 minutes) without events.
//
// # Sending
//
// When Config.Endpoint is set, queued events are sent out of band (see
// docs/protocol.md). In CLI mode, [Client.Close] starts a detached sender
// process when a send is due: the program's own executable, with only its
// argv[0] and the environment variable TELEMETRY_KIT_SENDER naming the
// queue. Its standard streams go to the null device, and the tool does not
// wait for it. [New] in that process sends, then exits instead of returning.
// So call New early in main, before the tool does any work, and take
// Endpoint and APIKey from the program or its environment, not from
// command-line arguments, which the sender process does not get (the cobra
// and urfave adapters call New before any command runs). The sender never
// prompts or prints, sends nothing if the user's consent no longer holds
// (e.g. DO_NOT_TRACK), starts no other sender, and exits after
// Config.Send.Timeout at the latest. At most one sender runs per queue.
// In library mode a goroutine sends instead; Close stops it within its
// context's deadline. [Client.Flush] sends now.
//
// # Privacy
//
// [New] resolves consent once: DO_NOT_TRACK, the
// <SERVICE>_TELEMETRY variable, the user's stored decision and the author's
// mode ([consent.Mode]), in that order. A client whose telemetry is off records nothing, and
// every Track method on it returns at once. Every string in an event's
// metadata passes the PII scrubber (docs/privacy.md) before it is stored;
// error messages are never recorded, only an error kind. With
// <SERVICE>_TELEMETRY_DEBUG=1 every event is printed to stderr as JSON and
// nothing is stored or sent.
//
// # Safety
//
// A client never panics into its host: every exported method recovers and
// logs. It never writes to stdout, and to stderr only the notice, the prompt
// and debug output described above. It logs to Config.Logger, which discards
// by default. Every method is a no-op on a nil *Client, so
// `tk, _ := core.New(cfg)` needs no error handling in a host that would
// rather go without telemetry than fail. After Close returns, no goroutine of
// the client is left running.
package core
