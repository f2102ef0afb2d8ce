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
// configuration: every field, and every field of its groups, documents the
// default its zero value means.
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

	// ConfigDir holds the user's consent decision and the fallback machine ID.
	// Zero: os.UserConfigDir()/<ServiceName>.
	ConfigDir string

	// Policy is what users are told and asked, and when nothing is recorded.
	Policy Policy

	// Queue bounds the local queue.
	Queue Queue

	// Library tunes library mode: the in-memory buffer and sessions.
	Library Library

	// Send says when and how queued events are sent.
	Send Send

	// Logger receives the client's diagnostics. Zero: they are discarded.
	Logger *slog.Logger

	// Host is what the client reads from and writes to in its process.
	// Zero: the process's own.
	Host Host
}

// Policy is what users are told and asked about telemetry.
type Policy struct {
	// Version is the version of the author's data policy. Bumping it asks
	// users again: earlier decisions no longer count. Zero: 1.
	Version int

	// Collects is the one sentence the notice and prompt use to say what is
	// collected. Zero: a sentence describing the SDK's defaults.
	Collects string

	// CommandHint is the command a user types to manage telemetry, named in
	// the notice, the prompt and the status, e.g. "my-cli telemetry" (the
	// adapters set it to their generated command). Zero: "<ServiceName> telemetry".
	CommandHint string

	// DisableInCI records nothing when a CI environment is detected.
	// Zero: events are recorded in CI too, marked env.ci = true.
	DisableInCI bool

	// FlagValues names the flags (without dashes) whose values are
	// collected, so that the notice, the prompt and `telemetry status`
	// name them. Zero: the adapters fill it from their AllowFlagValues.
	FlagValues []string
}

// Queue configures the local queue.
type Queue struct {
	// Path is the queue's bbolt file.
	// Zero: os.UserCacheDir()/<ServiceName>/queue.db.
	Path string

	// MaxEvents and MaxBytes bound the queue; past them the oldest events
	// are dropped and counted. Zero: 10,000 events and 5 MiB.
	MaxEvents int
	MaxBytes  int64

	// LockTimeout is the longest any write waits for the queue's file lock
	// before it spools the event to a side file instead. Zero: 250ms.
	LockTimeout time.Duration

	// Fsync makes each CLI-mode run wait until its event is on disk. Zero:
	// the event is handed to the kernel, which survives the process being
	// killed (kill -9, a crash, os.Exit); only a power loss or a kernel
	// crash within the kernel's writeback window, seconds, can lose it,
	// and a record torn by one is detected and skipped (docs/protocol.md,
	// "Durability"). Library mode always syncs its batches.
	Fsync bool
}

// Library tunes library mode ([LibraryMode]); CLI mode ignores it.
type Library struct {
	// BufferSize is how many events are held in memory before Track starts
	// dropping (and counting) events. Zero: 4096.
	BufferSize int

	// PersistBatch and PersistInterval say when buffered events are written
	// to the queue: when PersistBatch are waiting or PersistInterval has
	// passed since the first of them. Zero: 100 events and 5 seconds.
	PersistBatch    int
	PersistInterval time.Duration

	// SessionTimeout ends a session after this long without events.
	// Zero: 30 minutes. CLI mode has one session per process.
	SessionTimeout time.Duration
}

// Send says when and how queued events are sent.
type Send struct {
	// MinEvents and MaxAge say when a send is due: when at least MinEvents
	// are queued or the oldest is MaxAge old. Zero: 100 events and 1 hour.
	MinEvents int
	MaxAge    time.Duration

	// BatchSize is the most events one request carries. Zero: 100.
	BatchSize int

	// Timeout is the hard lifetime limit of one send run (the detached
	// sender process in CLI mode). Zero: 30 seconds.
	Timeout time.Duration

	// SyncAtExit makes Close send due events itself, within its context's
	// deadline, instead of starting a detached sender process (CLI mode
	// only). Zero: sends happen out of band.
	SyncAtExit bool
}

// Host is what the client reads from and writes to in its process. A test
// of an instrumented tool sets it to control the environment and the clock.
type Host struct {
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
		{"Policy.Version", int64(c.Policy.Version)}, {"Queue.MaxEvents", int64(c.Queue.MaxEvents)},
		{"Queue.MaxBytes", c.Queue.MaxBytes}, {"Queue.LockTimeout", int64(c.Queue.LockTimeout)},
		{"Library.BufferSize", int64(c.Library.BufferSize)}, {"Library.PersistBatch", int64(c.Library.PersistBatch)},
		{"Library.PersistInterval", int64(c.Library.PersistInterval)}, {"Library.SessionTimeout", int64(c.Library.SessionTimeout)},
		{"Send.MinEvents", int64(c.Send.MinEvents)}, {"Send.MaxAge", int64(c.Send.MaxAge)},
		{"Send.BatchSize", int64(c.Send.BatchSize)}, {"Send.Timeout", int64(c.Send.Timeout)},
	} {
		if n.v < 0 {
			return fmt.Errorf("telemetry: %s must not be negative", n.name)
		}
	}
	if c.ServiceVersion == "" {
		c.ServiceVersion = mainModuleVersion()
	}
	if c.Policy.Version == 0 {
		c.Policy.Version = 1
	}
	if c.Queue.Path == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("telemetry: no cache directory for the queue (set Queue.Path): %w", err)
		}
		c.Queue.Path = filepath.Join(dir, c.ServiceName, "queue.db")
	}
	// Absolute, as the queue names itself: its files are found by this
	// path also before it is opened.
	abs, err := filepath.Abs(c.Queue.Path)
	if err != nil {
		return fmt.Errorf("telemetry: queue path: %w", err)
	}
	c.Queue.Path = abs
	if c.ConfigDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("telemetry: no config directory (set ConfigDir): %w", err)
		}
		c.ConfigDir = filepath.Join(dir, c.ServiceName)
	}
	setDefault(&c.Queue.LockTimeout, 250*time.Millisecond)
	setDefault(&c.Library.BufferSize, 4096)
	setDefault(&c.Library.PersistBatch, 100)
	setDefault(&c.Library.PersistInterval, 5*time.Second)
	setDefault(&c.Library.SessionTimeout, 30*time.Minute)
	setDefault(&c.Send.MinEvents, 100)
	setDefault(&c.Send.MaxAge, time.Hour)
	setDefault(&c.Send.BatchSize, 100)
	setDefault(&c.Send.Timeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = logutil.Discard()
	}
	if c.Host.Stderr == nil {
		c.Host.Stderr = os.Stderr
	}
	if c.Host.Stdin == nil {
		c.Host.Stdin = os.Stdin
	}
	if c.Host.Getenv == nil {
		c.Host.Getenv = os.Getenv
	}
	if c.Host.Now == nil {
		c.Host.Now = time.Now
	}
	return nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
