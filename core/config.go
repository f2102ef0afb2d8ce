package core

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/internal/logutil"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// RunMode says how the host process uses the client.
type RunMode int

const (
	// LibraryMode is for long-running hosts that track many events: Track
	// never blocks and never does I/O on the caller's goroutine; events are
	// buffered in memory and persisted in batches by size or time and at Close.
	LibraryMode RunMode = iota
	// CLIMode is for one short process per command: each Track writes its event
	// durably to the local queue before it returns, so the event survives an
	// os.Exit right after it.
	CLIMode
)

func (m RunMode) String() string {
	switch m {
	case LibraryMode:
		return "library"
	case CLIMode:
		return "cli"
	}
	return fmt.Sprintf("RunMode(%d)", int(m))
}

// Config configures a [Client]. Its zero value, with a ServiceName, is a valid
// configuration: every other field documents the default its zero value means.
type Config struct {
	// ServiceName names the tool or library: lower case letters, digits, '.',
	// '_' and '-'. Required. It names the queue and settings directories and the
	// <SERVICE>_TELEMETRY environment variable.
	ServiceName string

	// ServiceVersion is the tool's version, recorded in every event.
	// Zero: the main module's version from the build information, or "".
	ServiceVersion string

	// Endpoint is the collection server's base URL, e.g. https://t.example.com.
	// Zero: events are recorded in the local queue and never sent.
	Endpoint string

	// APIKey is the project's write key, sent as a bearer token.
	// Zero: no Authorization header.
	APIKey string

	// Mode says how the host uses the client. Zero: [LibraryMode].
	Mode RunMode

	// Consent is the author's choice of consent mode.
	// Zero: [consent.OptIn], nothing is recorded until the user agrees.
	Consent consent.Mode

	// PolicyVersion is the version of the author's data policy. Bumping it asks
	// users again: earlier decisions no longer count. Zero: 1.
	PolicyVersion int

	// DisableInCI records nothing when a CI environment is detected.
	// Zero: events are recorded in CI too, marked env.ci = true.
	DisableInCI bool

	// Collects is the one sentence the notice and prompt use to say what is
	// collected. Zero: a sentence describing the SDK's defaults.
	Collects string

	// CommandHint is the command a user types to manage telemetry, named in
	// the notice, the prompt and the status, e.g. "my-cli telemetry" (the
	// adapters set it to their generated command). Zero: "<ServiceName> telemetry".
	CommandHint string

	// QueuePath is the local queue's bbolt file.
	// Zero: os.UserCacheDir()/<ServiceName>/queue.db.
	QueuePath string

	// ConfigDir holds the user's consent decision and the fallback machine ID.
	// Zero: os.UserConfigDir()/<ServiceName>.
	ConfigDir string

	// MaxQueueEvents and MaxQueueBytes bound the local queue; past them the
	// oldest events are dropped and counted. Zero: 10,000 events and 5 MiB.
	MaxQueueEvents int
	MaxQueueBytes  int64

	// LockTimeout is the longest any write waits for the queue's file lock
	// before it spools the event to a side file instead. Zero: 250ms.
	LockTimeout time.Duration

	// BufferSize is how many events library mode holds in memory before Track
	// starts dropping (and counting) events. Zero: 4096.
	BufferSize int

	// PersistBatch and PersistInterval say when library mode writes buffered
	// events to the queue: when PersistBatch are waiting or PersistInterval has
	// passed since the first of them. Zero: 100 events and 5 seconds.
	PersistBatch    int
	PersistInterval time.Duration

	// SessionTimeout ends a library-mode session after this long without
	// events. Zero: 30 minutes. CLI mode has one session per process.
	SessionTimeout time.Duration

	// SendMinEvents and SendMaxAge say when a send is due: when at least
	// SendMinEvents are queued or the oldest is SendMaxAge old.
	// Zero: 100 events and 1 hour.
	SendMinEvents int
	SendMaxAge    time.Duration

	// SendBatchSize is the most events one request carries. Zero: 100.
	SendBatchSize int

	// SenderTimeout is the hard lifetime limit of one send run (the detached
	// sender process in CLI mode). Zero: 30 seconds.
	SenderTimeout time.Duration

	// SyncFlushAtExit makes Close send due events itself, within its context's
	// deadline, instead of starting a detached sender process (CLI mode only).
	// Zero: sends happen out of band.
	SyncFlushAtExit bool

	// Logger receives the client's diagnostics. Zero: they are discarded.
	Logger *slog.Logger

	// Stderr receives the opt-out notice, the opt-in prompt and, when
	// <SERVICE>_TELEMETRY_DEBUG is set, every event. Zero: os.Stderr.
	Stderr io.Writer

	// Stdin is read for the answer to the opt-in prompt. Zero: os.Stdin.
	Stdin *os.File

	// Getenv reads the environment. Zero: os.Getenv.
	Getenv func(string) string

	// Now tells the time. Zero: time.Now.
	Now func() time.Time
}

// withDefaults validates c and returns a copy with every zero field set to its default.
func (c *Config) withDefaults() error {
	if !wire.ValidServiceName(c.ServiceName) {
		return fmt.Errorf("telemetry: invalid ServiceName %q: want lower case letters, digits, '.', '_' or '-'", c.ServiceName)
	}
	if c.Mode != LibraryMode && c.Mode != CLIMode {
		return fmt.Errorf("telemetry: invalid Mode %v", c.Mode)
	}
	if c.Consent != consent.OptIn && c.Consent != consent.OptOut && c.Consent != consent.Silent {
		return fmt.Errorf("telemetry: invalid Consent mode %d", int(c.Consent))
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"PolicyVersion", int64(c.PolicyVersion)}, {"MaxQueueEvents", int64(c.MaxQueueEvents)},
		{"MaxQueueBytes", c.MaxQueueBytes}, {"LockTimeout", int64(c.LockTimeout)},
		{"BufferSize", int64(c.BufferSize)}, {"PersistBatch", int64(c.PersistBatch)},
		{"PersistInterval", int64(c.PersistInterval)}, {"SessionTimeout", int64(c.SessionTimeout)},
		{"SendMinEvents", int64(c.SendMinEvents)}, {"SendMaxAge", int64(c.SendMaxAge)},
		{"SendBatchSize", int64(c.SendBatchSize)}, {"SenderTimeout", int64(c.SenderTimeout)},
	} {
		if n.v < 0 {
			return fmt.Errorf("telemetry: %s must not be negative", n.name)
		}
	}
	if c.ServiceVersion == "" {
		c.ServiceVersion = mainModuleVersion()
	}
	if c.PolicyVersion == 0 {
		c.PolicyVersion = 1
	}
	if c.QueuePath == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("telemetry: no cache directory for the queue (set QueuePath): %w", err)
		}
		c.QueuePath = filepath.Join(dir, c.ServiceName, "queue.db")
	}
	if c.ConfigDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("telemetry: no config directory (set ConfigDir): %w", err)
		}
		c.ConfigDir = filepath.Join(dir, c.ServiceName)
	}
	setDefault(&c.LockTimeout, 250*time.Millisecond)
	setDefault(&c.BufferSize, 4096)
	setDefault(&c.PersistBatch, 100)
	setDefault(&c.PersistInterval, 5*time.Second)
	setDefault(&c.SessionTimeout, 30*time.Minute)
	setDefault(&c.SendMinEvents, 100)
	setDefault(&c.SendMaxAge, time.Hour)
	setDefault(&c.SendBatchSize, 100)
	setDefault(&c.SenderTimeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = logutil.Discard()
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
