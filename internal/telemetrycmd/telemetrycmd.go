package telemetrycmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
)

// Default names of what the adapters add to a command tree.
const (
	DefaultCommandName = "telemetry"
	DefaultShowFlag    = "show-telemetry"
)

// One-line descriptions of the telemetry subcommand and its children.
const (
	ShortCommand  = "Show or change what this tool records about its use"
	ShortStatus   = "Say whether telemetry is on and why, with the anonymous ID and queue size"
	ShortEnable   = "Turn telemetry on"
	ShortDisable  = "Turn telemetry off and delete the events queued on this machine"
	ShortShow     = "Print the queued events, exactly as they will be sent, one JSON object a line"
	ShortFlush    = "Send the queued events now and report the result"
	ShortDelete   = "Turn telemetry off and erase what it recorded, here and on the server"
	ShortShowFlag = "print to stderr the telemetry event this command records"
	ShortJSON     = "print the status as JSON"
)

// LongCommand is the longer help of the telemetry subcommand. hint is the
// command itself as a user types it, e.g. "my-cli telemetry"; showFlag the
// name of the show flag.
// flagValues names the flags whose values the author collects.
func LongCommand(service, hint, showFlag string, flagValues []string) string {
	// Concatenated rather than formatted: it is built on every start.
	return service + " records anonymous usage data: " + privacy.Collects(flagValues) + `.

  ` + hint + ` status     whether telemetry is on, and why
  ` + hint + ` show       the events waiting to be sent
  ` + hint + ` disable    turn it off and delete what is queued
  ` + hint + ` delete     turn it off and erase what was sent, on the server too
  ` + hint + ` enable     turn it on

Setting DO_NOT_TRACK=1 or ` + privacy.EnvVar(service) + `=0 also turns it off. Add --` + showFlag + ` to any
command to see the event it records.`
}

// flushTimeout bounds `telemetry flush`.
const flushTimeout = 30 * time.Second

// Controls carries out the telemetry subcommand's actions for a user.
type Controls struct {
	// Client is the run's client; nil when it could not start.
	Client *core.Client
	// Err says why Client is nil.
	Err error
	// Hint is the telemetry command as the user types it, e.g. "my-cli telemetry".
	Hint string
	// Service is the tool's service name.
	Service string
}

// unavailable returns the error that says why telemetry could not start;
// nil when it did. Like every error of the actions, it is printed by the
// tool, once, the way the tool prints its errors.
func (c Controls) unavailable() error {
	if c.Client != nil {
		return nil
	}
	if c.Err == nil {
		return errors.New("telemetry is off: it is not configured")
	}
	return fmt.Errorf("telemetry is off: it could not start: %w", c.Err)
}

// statusJSON is the `status --json` document.
type statusJSON struct {
	Enabled   bool   `json:"enabled"`
	Source    string `json:"source"`
	Reason    string `json:"reason"`
	UserID    string `json:"user_id"`
	Endpoint  string `json:"endpoint"`
	QueuePath string `json:"queue_path"`
	Queued    int    `json:"queued"`
	Dropped   uint64 `json:"dropped"`
	Debug     bool   `json:"debug"`
	Collects  string `json:"collects"`
	// NoticePending: nothing is sent before the notice was shown on a terminal.
	NoticePending bool `json:"notice_pending,omitempty"`

	LastSendResult string `json:"last_send_result,omitempty"`
	// Pointers, so that a zero time is left out with any Go release.
	NextSendAttempt     *time.Time `json:"next_send_attempt,omitempty"`
	SendingBlockedUntil *time.Time `json:"sending_blocked_until,omitempty"`
	// ErasurePending: `telemetry delete` asked at this time; the server has
	// not confirmed it yet.
	ErasurePending *time.Time `json:"erasure_pending,omitempty"`
}

// Status writes whether telemetry is on and why, the anonymous ID, the
// endpoint and the number of queued events to w, as text or as JSON.
func (c Controls) Status(ctx context.Context, w io.Writer, asJSON bool) error {
	if err := c.unavailable(); err != nil {
		return err
	}
	st, err := c.Client.Status(ctx)
	if err != nil {
		return err
	}
	reason := st.Reason
	if reason == "" {
		reason = st.Source.String()
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(statusJSON{
			Enabled: st.Enabled, Source: sourceName(st.Source), Reason: reason, UserID: st.UserID,
			Endpoint: st.Endpoint, QueuePath: st.QueuePath, Queued: st.Queued, Dropped: st.Dropped, Debug: st.Debug,
			LastSendResult: st.LastSendResult, NextSendAttempt: nonZero(st.NextSendAttempt), SendingBlockedUntil: nonZero(st.SendingBlockedUntil),
			Collects: st.Collects, NoticePending: st.NoticePending, ErasurePending: nonZero(st.ErasurePending),
		})
	}
	state := "off"
	if st.Enabled {
		state = "on"
	}
	// The reason follows a colon: it often has parentheses of its own.
	fmt.Fprintf(w, "Telemetry is %s: %s.\n", state, reason)
	fmt.Fprintf(w, "Anonymous ID: %s\n", st.UserID)
	fmt.Fprintf(w, "Collected: %s.\n", st.Collects)
	if st.Endpoint == "" {
		fmt.Fprintln(w, "Endpoint: none (events stay on this machine)")
	} else {
		fmt.Fprintf(w, "Endpoint: %s\n", st.Endpoint)
	}
	switch {
	case !st.SendingBlockedUntil.IsZero():
		fmt.Fprintf(w, "Sending paused until %s: the server refused the write key (%s).\n",
			localTime(st.SendingBlockedUntil), st.LastSendResult)
	case !st.NextSendAttempt.IsZero():
		fmt.Fprintf(w, "Last send failed (%s); the next attempt is not before %s.\n",
			st.LastSendResult, localTime(st.NextSendAttempt))
	}
	if st.NoticePending && st.Enabled {
		fmt.Fprintln(w, "Sending waits until the notice has been shown on a terminal: nothing has left this machine.")
	}
	if !st.ErasurePending.IsZero() {
		fmt.Fprintf(w, "Erasure pending: asked for at %s, not yet confirmed by the server; the next run of the tool sends it again.\n",
			localTime(st.ErasurePending))
	}
	fmt.Fprintf(w, "Queued events: %d\n", st.Queued)
	if st.Dropped > 0 {
		fmt.Fprintf(w, "Dropped events (queue full): %d\n", st.Dropped)
	}
	fmt.Fprintf(w, "Queue file: %s\n", st.QueuePath)
	if st.Debug {
		fmt.Fprintf(w, "Debug mode (%s_DEBUG): events are printed to stderr, not stored.\n", privacy.EnvVar(c.Service))
	}
	if st.Enabled {
		fmt.Fprintf(w, "Turn it off with `%s disable`; see what is sent with `%s show`.\n", c.Hint, c.Hint)
	} else {
		fmt.Fprintf(w, "Turn it on with `%s enable`.\n", c.Hint)
	}
	return nil
}

// localTime is t for a person: in local time, with the offset from UTC,
// e.g. "2026-12-03 07:55:00 +01:00".
func localTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 -07:00")
}

// sourceName is a stable machine-readable name for a consent source.
func sourceName(s privacy.Source) string {
	switch s {
	case privacy.SourceDefault:
		return "default"
	case privacy.SourceDoNotTrack:
		return "do_not_track"
	case privacy.SourceEnv:
		return "env"
	case privacy.SourceUser:
		return "user"
	case privacy.SourceCI:
		return "ci"
	case privacy.SourceNoTTY:
		return "no_tty"
	case privacy.SourceUnreadable:
		return "unreadable"
	case privacy.SourceConfig:
		return "config"
	}
	return s.String()
}

// Show writes every queued event to w, one JSON object a line, exactly as
// it will be sent. When nothing is queued it says so on errW.
func (c Controls) Show(ctx context.Context, w, errW io.Writer) error {
	if err := c.unavailable(); err != nil {
		return err
	}
	n := 0
	err := c.Client.Queued(ctx, func(ev []byte) error {
		n++
		if _, err := w.Write(ev); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(errW, "No events are queued.")
	}
	return nil
}

// Enable stores the user's consent and says what it means.
func (c Controls) Enable(ctx context.Context, w io.Writer) error {
	if err := c.unavailable(); err != nil {
		return err
	}
	if err := c.Client.Enable(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Telemetry is on from the next command. Thank you.")
	if st, err := c.Client.Status(ctx); err == nil {
		switch st.Source {
		case privacy.SourceDoNotTrack, privacy.SourceEnv, privacy.SourceCI:
			fmt.Fprintf(w, "Note: it stays off while %s.\n", st.Reason)
		}
	}
	return nil
}

// Disable stores the user's refusal, deletes the local queue and says so.
func (c Controls) Disable(ctx context.Context, w io.Writer) error {
	if err := c.unavailable(); err != nil {
		return err
	}
	queued := 0
	if st, err := c.Client.Status(ctx); err == nil {
		queued = st.Queued
	}
	if err := c.Client.Disable(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "Telemetry is off. Deleted %d queued %s; nothing more will be recorded or sent.\n", queued, plural(queued, "event", "events"))
	return nil
}

// Delete turns telemetry off, deletes the local queue, asks the server to
// erase what was sent under the anonymous ID, and says what was erased,
// or that the request waits and will be sent by a later run.
func (c Controls) Delete(ctx context.Context, w io.Writer) error {
	if err := c.unavailable(); err != nil {
		return err
	}
	d, err := c.Client.Delete(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Telemetry is off. Deleted %d queued %s on this machine.\n", d.Queued, plural(d.Queued, "event", "events"))
	switch {
	case d.Server != nil:
		fmt.Fprintf(w, "The server erased %d %s and %d per-user %s of %s; events recorded before %s that reach it later are discarded.\n",
			d.Server.Events, plural(int(d.Server.Events), "event", "events"), d.Server.UserRows,
			plural(int(d.Server.UserRows), "row", "rows"), d.UserID, localTime(d.Server.ErasedBefore))
	case d.Pending:
		fmt.Fprintf(w, "The server could not be reached (%v): the erasure request is saved and the next run of the tool sends it; `%s status` shows it until the server confirms.\n",
			d.SendErr, c.Hint)
	default:
		fmt.Fprintln(w, "No endpoint is configured: nothing was ever sent from this machine.")
	}
	fmt.Fprintf(w, "Nothing more is recorded until you run `%s enable`.\n", c.Hint)
	return nil
}

// Flush sends the queued events now and reports how many went.
func (c Controls) Flush(ctx context.Context, w io.Writer) error {
	if err := c.unavailable(); err != nil {
		return err
	}
	if !c.Client.Enabled() {
		fmt.Fprintln(w, "Telemetry is off: nothing was sent.")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	before := queued(ctx, c.Client)
	err := c.Client.Flush(ctx)
	after := queued(ctx, c.Client)
	sent := max(before-after, 0)
	if err != nil {
		// Returned, not printed: the tool prints its errors itself.
		return fmt.Errorf("sending failed, %d sent and %d still queued: %w", sent, after, err)
	}
	fmt.Fprintf(w, "Sent %d %s; %d still queued.\n", sent, plural(sent, "event", "events"), after)
	return nil
}

func queued(ctx context.Context, c *core.Client) int {
	st, err := c.Status(ctx)
	if err != nil {
		return 0
	}
	return st.Queued
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// nonZero returns &t, or nil for the zero time.
func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
