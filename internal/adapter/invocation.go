package adapter

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telemetry-kit/telemetry-kit/core"
)

// Error kinds the adapters record for failures that happen in the framework
// or in the author's hooks. An error returned by the author's action is
// recorded with the core's kind for it instead (see [core.Command]).
const (
	// KindUnknownCommand: the user named a subcommand that does not exist.
	KindUnknownCommand = "unknown_command"
	// KindUnknownFlag: the user passed a flag the command does not define.
	KindUnknownFlag = "unknown_flag"
	// KindInvalidFlag: a flag's value is missing or cannot be parsed, or
	// flags that must go together (or apart) were not.
	KindInvalidFlag = "invalid_flag"
	// KindMissingFlag: a required flag was not set.
	KindMissingFlag = "missing_flag"
	// KindInvalidArgs: the positional arguments were rejected (wrong count or
	// value) before the action ran.
	KindInvalidArgs = "invalid_args"
	// KindPreRun: a hook that runs before the action failed (cobra's
	// PersistentPreRunE and PreRunE, urfave's Before).
	KindPreRun = "pre_run_failed"
	// KindPostRun: a hook that runs after the action failed (cobra's
	// PostRunE and PersistentPostRunE, urfave's After).
	KindPostRun = "post_run_failed"
	// KindPanic: the author's code panicked. The panic goes on unchanged.
	KindPanic = "panic"
)

// PanicExitCode is the exit code of a Go program that dies of a panic.
const PanicExitCode = 2

// closeTimeout bounds Close at the end of a command: starting the detached
// sender, or sending synchronously when the author asked for it.
const closeTimeout = 2 * time.Second

// Invocation is one run of an instrumented tool. Create it with
// [NewInvocation] when the run starts; call [Invocation.Finish] or
// [Invocation.Skip] when its outcome is known. Every method is safe on a nil
// *Invocation.
type Invocation struct {
	client  *core.Client
	start   time.Time
	now     func() time.Time
	allow   []string
	done    atomic.Bool
	echo    io.Writer
	showSet bool
}

// NewInvocation starts timing a run recorded with client (which may be nil:
// then nothing is recorded). allow lists the flags whose values may be
// recorded; now is the clock (nil: time.Now).
func NewInvocation(client *core.Client, allow []string, now func() time.Time) *Invocation {
	if now == nil {
		now = time.Now
	}
	return &Invocation{client: client, start: now(), now: now, allow: allow}
}

// Client returns the invocation's client; nil when telemetry could not start.
func (inv *Invocation) Client() *core.Client {
	if inv == nil {
		return nil
	}
	return inv.client
}

// EchoTo makes [Invocation.Finish] also print the recorded event to w: the
// user passed the show flag. A nil w is ignored.
func (inv *Invocation) EchoTo(w io.Writer) {
	if inv == nil || w == nil {
		return
	}
	inv.echo = w
	inv.showSet = true
}

// Finished reports whether the outcome was already recorded (or skipped).
func (inv *Invocation) Finished() bool { return inv == nil || inv.done.Load() }

// Finish records cmd as this run's command_executed event, once: later calls
// do nothing. A zero cmd.Duration is measured from the start of the run. The
// client is closed afterwards, within a small bound.
func (inv *Invocation) Finish(cmd core.Command) {
	if inv == nil || !inv.done.CompareAndSwap(false, true) {
		return
	}
	defer func() { _ = recover() }() // telemetry never harms the host
	if cmd.Duration == 0 {
		cmd.Duration = inv.now().Sub(inv.start)
	}
	cmd.Flags = slices.Clone(cmd.Flags)
	slices.Sort(cmd.Flags)
	cmd.Flags = slices.Compact(cmd.Flags)
	if inv.showSet {
		if !inv.client.Enabled() {
			fmt.Fprintln(inv.echo, "telemetry is off: this command recorded nothing")
		}
		inv.client.EchoTo(inv.echo)
	}
	inv.client.TrackCommand(cmd)
	inv.client.EchoTo(nil)
	inv.close()
}

// Begin notes that cmd's own code is about to run, so that the run is
// recorded even if the process ends inside it (see
// [core.Client.BeginCommand]). Finish completes it.
func (inv *Invocation) Begin(cmd core.Command) {
	if inv == nil || inv.done.Load() {
		return
	}
	defer func() { _ = recover() }() // telemetry never harms the host
	cmd.Flags = slices.Clone(cmd.Flags)
	slices.Sort(cmd.Flags)
	cmd.Flags = slices.Compact(cmd.Flags)
	inv.client.BeginCommand(cmd)
}

// Skip ends the run without recording anything (the telemetry subcommand
// itself, shell completion). The client is left unclosed: in CLI mode
// closing it only starts a detached sender when a send is due, and a run
// of `telemetry show` or `status` must not send in the background what the
// user is looking at (`telemetry flush` sends by itself).
func (inv *Invocation) Skip() {
	if inv == nil {
		return
	}
	inv.done.Store(true)
}

func (inv *Invocation) close() {
	ctx := &lazyTimeout{deadline: time.Now().Add(closeTimeout)}
	defer ctx.stop()
	_ = inv.client.Close(ctx)
}

// lazyTimeout is context.WithTimeout(context.Background(), …) whose timer is
// started only when something first asks for Done or Err. Close in CLI mode
// waits on its context only when it sends synchronously; a timer in every
// run would also set up the runtime's network poller, which costs a short
// process more than the timer itself.
type lazyTimeout struct {
	deadline time.Time
	once     sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

func (l *lazyTimeout) arm() context.Context {
	l.once.Do(func() { l.ctx, l.cancel = context.WithDeadline(context.Background(), l.deadline) })
	return l.ctx
}

func (l *lazyTimeout) Deadline() (time.Time, bool) { return l.deadline, true }
func (l *lazyTimeout) Done() <-chan struct{}       { return l.arm().Done() }
func (l *lazyTimeout) Err() error                  { return l.arm().Err() }
func (l *lazyTimeout) Value(key any) any           { return nil }

// stop releases the timer if one was started. After stop the context is
// done (canceled) and starts no timer.
func (l *lazyTimeout) stop() {
	l.once.Do(func() { l.ctx, l.cancel = context.WithCancel(context.Background()) })
	l.cancel()
}

// FlagValues returns the values of the set flags that the author allowlisted,
// read with value; nil when there are none.
func (inv *Invocation) FlagValues(set []string, value func(name string) (string, bool)) map[string]string {
	if inv == nil || len(inv.allow) == 0 {
		return nil
	}
	var out map[string]string
	for _, name := range set {
		if !slices.Contains(inv.allow, name) {
			continue
		}
		v, ok := value(name)
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = v
	}
	return out
}

// ArgsHaveFlag reports whether args, a command line before the framework
// parsed it, turn on the boolean flag name: "--name", or "--name=" with a
// true value, before any "--".
func ArgsHaveFlag(args []string, name string) bool {
	if name == "" {
		return false
	}
	on := false
	for _, a := range args {
		if a == "--" {
			break
		}
		switch {
		case a == "--"+name:
			on = true
		case strings.HasPrefix(a, "--"+name+"="):
			v, err := strconv.ParseBool(strings.TrimPrefix(a, "--"+name+"="))
			on = err == nil && v
		}
	}
	return on
}
