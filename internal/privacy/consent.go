package privacy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/telemetry-kit/telemetry-kit/consent"
)

// Source tells which rule made a [Decision].
type Source int

const (
	// SourceDefault: the author's [consent.Mode] decided (nothing above applied).
	SourceDefault Source = iota
	// SourceDoNotTrack: DO_NOT_TRACK is set to a truthy value.
	SourceDoNotTrack
	// SourceEnv: the <SERVICE>_TELEMETRY environment variable is set.
	SourceEnv
	// SourceUser: the user's stored choice (telemetry enable/disable or
	// the answer to the opt-in prompt).
	SourceUser
	// SourceCI: running in CI and the author set [Options.DisableInCI].
	SourceCI
	// SourceNoTTY: opt-in, undecided, and nobody can be asked here.
	SourceNoTTY
	// SourceUnreadable: the stored choice exists but cannot be read or
	// understood; telemetry fails closed.
	SourceUnreadable
	// SourceConfig: the Options are unusable (no service name); telemetry
	// fails closed.
	SourceConfig
)

// String returns a short user-facing description of the rule. The
// [Decision.Detail] text is the precise one, naming the variable, value
// or date.
func (s Source) String() string {
	switch s {
	case SourceDefault:
		return "the author's default"
	case SourceDoNotTrack:
		return "DO_NOT_TRACK is set"
	case SourceEnv:
		return "the <SERVICE>_TELEMETRY environment variable"
	case SourceUser:
		return "your stored choice"
	case SourceCI:
		return "the author turns telemetry off in CI"
	case SourceNoTTY:
		return "nobody can be asked here (opt-in, not interactive)"
	case SourceUnreadable:
		return "the stored choice cannot be read"
	case SourceConfig:
		return "telemetry is not configured (no service name)"
	}
	return fmt.Sprintf("source(%d)", int(s))
}

// Decision is the outcome of [Resolve] or [Ensure].
type Decision struct {
	// Enabled reports whether events may be recorded and sent.
	Enabled bool
	// Source is the rule that decided.
	Source Source
	// Detail is a human-readable explanation, for example
	// "MY_CLI_TELEMETRY=0" or "you ran `my-cli telemetry disable` on 2026-11-25".
	// It may name local paths: show it to the user, never send it.
	Detail string
	// NeedsNotice is true in OptOut mode when the one-time notice has not
	// yet been shown for the current policy version (and we are not in CI,
	// where the notice is never printed). [Ensure] shows it when stderr is
	// a terminal. Still true after Ensure, it means that nobody has had the
	// chance to see the notice (stderr is a pipe or a file): events may be
	// recorded, but none may leave the machine until a later run has shown
	// it.
	NeedsNotice bool
	// CanPrompt is true in OptIn mode when the user has not decided for the
	// current policy version and can be asked (stdin and stderr are
	// terminals, not CI). [Ensure] asks.
	CanPrompt bool
}

// String returns "on: detail" or "off: detail".
func (d Decision) String() string {
	state := "off"
	if d.Enabled {
		state = "on"
	}
	if d.Detail == "" {
		return state + ": " + d.Source.String()
	}
	return state + ": " + d.Detail
}

// Options configures consent. The zero value of every field except Service
// means its default.
type Options struct {
	// Service is the tool's name, e.g. "my-cli". Required: with no service
	// name every decision is off ([SourceConfig]).
	Service string
	// Mode is the consent model. Zero: [consent.OptIn]. An unknown value is
	// treated as OptIn.
	Mode consent.Mode
	// PolicyVersion is the version of what is collected. Bumping it makes
	// the notice or prompt appear again, and an earlier "enable" (or an
	// earlier notice) no longer counts. An earlier "disable" always counts.
	// Zero (or negative): 1.
	PolicyVersion int
	// DisableInCI records nothing when a CI environment is detected, unless
	// the <SERVICE>_TELEMETRY variable explicitly turns telemetry on.
	// Zero: record in CI (events carry env.ci = true).
	DisableInCI bool
	// Dir is where the decision is kept (consent.json). Zero:
	// os.UserConfigDir()/<Service>.
	Dir string
	// Getenv reads the environment. Zero: os.Getenv.
	Getenv func(string) string
	// Stdin is used to detect a terminal and to read the prompt's answer.
	// Zero: os.Stdin.
	Stdin *os.File
	// Stderr receives the prompt and the notice (never stdout). It counts as
	// a terminal only if it is a file (a syscall.Conn or a type with an
	// Fd() uintptr method) whose descriptor is one. Zero: os.Stderr.
	Stderr io.Writer
	// IsTerminal reports whether a file descriptor is a terminal. Zero:
	// golang.org/x/term.IsTerminal.
	IsTerminal func(fd uintptr) bool
	// Now is the clock used to date stored decisions. Zero: time.Now.
	Now func() time.Time
	// Collects is one line saying what is collected, used in the notice and
	// the prompt. Zero: a default sentence (see [DefaultCollects]).
	Collects string
	// CommandHint is the command that manages telemetry; " enable" and
	// " disable" are appended to it in the texts. Zero: "<Service> telemetry".
	CommandHint string
	// FlagValues names the flags whose values the author collects, without
	// dashes. The default sentence of what is collected names them. Zero:
	// no flag value is collected.
	FlagValues []string
}

// DefaultCollects is the sentence used when [Options.Collects] is empty.
const DefaultCollects = "which commands run, how long they take, whether they succeed, " +
	"and the operating system and architecture; never arguments, flag values, " +
	"file contents, error messages or personal data"

const consentFile = "consent.json"

func (o Options) getenv() func(string) string {
	if o.Getenv != nil {
		return o.Getenv
	}
	return os.Getenv
}

func (o Options) policy() int {
	if o.PolicyVersion < 1 {
		return 1
	}
	return o.PolicyVersion
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) stdin() *os.File {
	if o.Stdin != nil {
		return o.Stdin
	}
	return os.Stdin
}

func (o Options) stderr() io.Writer {
	if o.Stderr != nil {
		return o.Stderr
	}
	return os.Stderr
}

func (o Options) isTerminal(fd uintptr) bool {
	if o.IsTerminal != nil {
		return o.IsTerminal(fd)
	}
	return term.IsTerminal(int(fd))
}

func (o Options) hint() string {
	if o.CommandHint != "" {
		return o.CommandHint
	}
	return o.Service + " telemetry"
}

// CollectsText is the sentence the notice and the prompt use to say what
// is collected: [Options.Collects], or the default one for
// [Options.FlagValues].
func (o Options) CollectsText() string { return o.collects() }

func (o Options) collects() string {
	if c := strings.TrimSpace(o.Collects); c != "" {
		return strings.TrimRight(c, ".")
	}
	return Collects(o.FlagValues)
}

// Collects is the default sentence of what is collected, true for an author
// who collects the values of the flags named in flagValues (without
// dashes): [DefaultCollects] when there are none.
func Collects(flagValues []string) string {
	if len(flagValues) == 0 {
		return DefaultCollects
	}
	names := make([]string, len(flagValues))
	for i, f := range flagValues {
		names[i] = "--" + strings.TrimLeft(f, "-")
	}
	var list string
	switch len(names) {
	case 1:
		list = "the value of " + names[0]
	default:
		list = "the values of " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
	}
	return "which commands run, how long they take, whether they succeed, " + list +
		", and the operating system and architecture; never arguments, other flag values, " +
		"file contents, error messages or personal data"
}

// dir returns the directory holding consent.json.
func (o Options) dir() (string, error) {
	if o.Dir != "" {
		return o.Dir, nil
	}
	return DefaultDir(o.Service)
}

// DefaultDir returns os.UserConfigDir()/<service>, the default place for
// the stored decision and the fallback machine identifier. A service name
// that is empty, "." or "..", or contains a path separator is refused.
func DefaultDir(service string) (string, error) {
	if service == "" || service == "." || service == ".." || strings.ContainsAny(service, `/\`) {
		return "", fmt.Errorf("consent: %q cannot name a configuration directory", service)
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, service), nil
}

// interactive reports whether stdin and stderr are both terminals.
func (o Options) interactive() bool {
	in, ok := fdOf(o.stdin())
	if !ok || !o.isTerminal(in) {
		return false
	}
	errFd, ok := fdOf(o.stderr())
	return ok && o.isTerminal(errFd)
}

// fdOf returns the descriptor behind w. For an *os.File it goes through
// SyscallConn, because (*os.File).Fd switches the host's file to blocking
// mode and disables its deadlines.
func fdOf(w any) (uintptr, bool) {
	if sc, ok := w.(syscall.Conn); ok {
		rc, err := sc.SyscallConn()
		if err != nil {
			return 0, false
		}
		var fd uintptr
		if err := rc.Control(func(f uintptr) { fd = f }); err != nil {
			return 0, false
		}
		return fd, true
	}
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		return f.Fd(), true
	}
	return 0, false
}

// EnvVar returns the name of the service's switch variable: the service
// name upper-cased, every character other than A–Z and 0–9 replaced by "_",
// followed by "_TELEMETRY". A name starting with a digit gets a leading "_"
// so that shells accept it. EnvVar("my-cli") == "MY_CLI_TELEMETRY".
func EnvVar(service string) string {
	return envPrefix(service) + "_TELEMETRY"
}

func envPrefix(service string) string {
	var b strings.Builder
	b.Grow(len(service) + 1)
	for i := 0; i < len(service); i++ {
		c := service[i]
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			if i == 0 && c <= '9' {
				b.WriteByte('_')
			}
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// DebugEnabled reports whether <SERVICE>_TELEMETRY_DEBUG is truthy
// (1, true, yes, on). In debug mode every event is printed as JSON to
// stderr and nothing is sent. getenv nil means os.Getenv.
func DebugEnabled(service string, getenv func(string) string) bool {
	if getenv == nil {
		getenv = os.Getenv
	}
	v, ok := parseSwitch(getenv(EnvVar(service) + "_DEBUG"))
	return ok && v
}

// parseSwitch parses an environment switch. ok is false when the value is
// empty or not one of the known words.
func parseSwitch(s string) (on, ok bool) {
	s = strings.TrimSpace(s)
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			// No word is understood but in ASCII (EqualFold alone would
			// take "yeſ" for "yes").
			return false, false
		}
	}
	for _, w := range switchWords[:] {
		if strings.EqualFold(s, w.word) {
			return w.on, true
		}
	}
	return false, false
}

// switchWords are the values parseSwitch understands, in any case.
var switchWords = [...]struct {
	word string
	on   bool
}{
	{"1", true}, {"true", true}, {"yes", true}, {"on", true},
	{"0", false}, {"false", false}, {"no", false}, {"off", false},
}

// notUnderstood is the decision for an environment switch with a value it
// does not understand.
func notUnderstood(name, raw string) Decision {
	return Decision{Source: SourceEnv, Detail: fmt.Sprintf("%s=%q is not understood (use 1 or 0); telemetry stays off", name, raw)}
}

// unreadable is the decision when the stored choice at path cannot be read.
func (o Options) unreadable(path string) Decision {
	return Decision{Source: SourceUnreadable, Detail: fmt.Sprintf("the stored choice (%s) cannot be read, so telemetry stays off; run `%s enable` or `%s disable` to replace it", path, o.hint(), o.hint())}
}

// Resolve computes the decision from the environment and the stored choice.
// It never prompts, never prints and never writes. Precedence, highest first:
//
//  1. DO_NOT_TRACK truthy → off.
//  2. <SERVICE>_TELEMETRY: falsy → off, truthy → on (consent, even in
//     OptIn mode and in CI), any other non-empty value → off.
//  3. CI detected and [Options.DisableInCI] → off.
//  4. The stored choice: unreadable → off; "disable" → off whatever policy
//     version it was given for; "enable" → on if given for the current
//     policy version (or a later one).
//  5. The mode: Silent → on; OptOut → on (notice pending unless shown for
//     this policy version); OptIn → off, with CanPrompt when interactive.
func Resolve(o Options) Decision {
	if strings.TrimSpace(o.Service) == "" {
		return Decision{Source: SourceConfig, Detail: "no service name is configured"}
	}
	getenv := o.getenv()
	if on, ok := parseSwitch(getenv("DO_NOT_TRACK")); ok && on {
		return Decision{Source: SourceDoNotTrack, Detail: "DO_NOT_TRACK is set"}
	}
	name := EnvVar(o.Service)
	if raw := strings.TrimSpace(getenv(name)); raw != "" {
		on, ok := parseSwitch(raw)
		if !ok {
			return notUnderstood(name, raw)
		}
		return Decision{Enabled: on, Source: SourceEnv, Detail: name + "=" + raw}
	}
	ciName, inCI := DetectCI(getenv)
	if inCI && o.DisableInCI {
		return Decision{Source: SourceCI, Detail: "running in CI (" + ciName + "), where the author turns telemetry off"}
	}
	rec, path, err := o.load()
	if err != nil {
		return o.unreadable(path)
	}
	pv := o.policy()
	switch {
	case rec.Decision == decisionDisabled:
		return Decision{Source: SourceUser, Detail: rec.describe(o)}
	case rec.Decision == decisionEnabled && rec.PolicyVersion >= pv:
		return Decision{Enabled: true, Source: SourceUser, Detail: rec.describe(o)}
	}
	switch o.Mode {
	case consent.Silent:
		return Decision{Enabled: true, Source: SourceDefault, Detail: "the author's default (silent)"}
	case consent.OptOut:
		return Decision{
			Enabled:     true,
			Source:      SourceDefault,
			Detail:      "the author's default (opt-out)",
			NeedsNotice: !inCI && rec.NoticePolicyVersion < pv,
		}
	}
	// OptIn, or an unknown mode (treated as OptIn: privacy first).
	if inCI {
		return Decision{Source: SourceNoTTY, Detail: "the author's default (opt-in), and nobody can be asked in CI (" + ciName + ")"}
	}
	if !o.interactive() {
		return Decision{Source: SourceNoTTY, Detail: "the author's default (opt-in), and nobody can be asked here (no terminal)"}
	}
	return Decision{Source: SourceDefault, Detail: "the author's default (opt-in); you have not been asked yet", CanPrompt: true}
}

// Ensure resolves the decision and then, at most once per policy version,
// either prints the opt-out notice to stderr (recording that it was shown)
// or asks the opt-in question and stores the answer. It never prints in CI,
// never asks unless stdin and stderr are terminals, and never replaces a
// stored choice it cannot read. Only an interactive prompt waits (for the
// user's answer, reading exactly one line from stdin); otherwise Ensure
// does not block.
func Ensure(o Options) Decision {
	d := Resolve(o)
	// The notice and the question are rare: kept out of this function, so
	// that its stack frame stays small for the common case of a CLI start.
	switch {
	case d.NeedsNotice:
		d = o.notice(d)
	case d.CanPrompt:
		d = o.ask()
	}
	return d
}

// notice shows the opt-out notice and records that it was shown, when
// stderr is a terminal: printed into a pipe or a file (a script's log, a
// shell-completion request) nobody sees it, and it does not count.
func (o Options) notice(d Decision) Decision {
	if fd, ok := fdOf(o.stderr()); !ok || !o.isTerminal(fd) {
		return d
	}
	fmt.Fprint(o.stderr(), noticeText(o))
	if err := o.update(func(r *record) {
		r.NoticePolicyVersion = o.policy()
		r.NoticeShownAt = o.now().UTC()
	}); err != nil {
		d.Detail += "; the notice could not be recorded and may be shown again"
	}
	d.NeedsNotice = false
	return d
}

// ask asks the opt-in question and stores the answer.
func (o Options) ask() Decision {
	fmt.Fprint(o.stderr(), promptText(o))
	yes := readYes(o.stdin())
	via := viaPrompt
	err := o.store(yes, via)
	d := Decision{Enabled: yes, Source: SourceUser}
	r := record{Decision: decisionDisabled, DecidedAt: o.now().UTC(), Via: via}
	if yes {
		r.Decision = decisionEnabled
		fmt.Fprintf(o.stderr(), "Thank you. Turn it off any time with `%s disable`.\n", o.hint())
	} else {
		fmt.Fprintf(o.stderr(), "Nothing will be collected. Turn it on any time with `%s enable`.\n", o.hint())
	}
	d.Detail = r.describe(o)
	if err != nil {
		d.Detail += "; the answer could not be saved and you may be asked again"
	}
	return d
}

// Enable stores the user's consent for the current policy version, dated
// with [Options.Now]. It replaces any previous choice, even an unreadable one.
func Enable(o Options) error { return o.store(true, viaCommand) }

// Disable stores the user's refusal, dated with [Options.Now]. A refusal
// stays in force across policy versions. Deleting the local queue is the
// caller's job (core and the adapters do it).
func Disable(o Options) error { return o.store(false, viaCommand) }

func noticeText(o Options) string {
	return fmt.Sprintf("%s collects anonymous usage data: %s.\n"+
		"To turn it off, run `%s disable` or set %s=0 (or DO_NOT_TRACK=1).\n"+
		"This notice is shown once.\n",
		o.Service, o.collects(), o.hint(), EnvVar(o.Service))
}

func promptText(o Options) string {
	return fmt.Sprintf("%s would like to collect anonymous usage data: %s.\n"+
		"Nothing is collected unless you agree. You can change your mind later with "+
		"`%s enable` or `%s disable`.\n"+
		"Share anonymous usage data with the authors of %s? [y/N] ",
		o.Service, o.collects(), o.hint(), o.hint(), o.Service)
}

// readYes reads one line (byte by byte, so nothing past the line is taken
// from the host's stdin) and reports whether it says yes. EOF and errors
// mean no.
func readYes(f *os.File) bool {
	var line []byte
	buf := make([]byte, 1)
	for {
		n, err := f.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			if len(line) < 16 {
				line = append(line, buf[0])
			}
		}
		if err != nil {
			break
		}
	}
	switch strings.ToLower(strings.TrimSpace(string(line))) {
	case "y", "yes":
		return true
	}
	return false
}
