package synth

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// Defaults of a zero [Config] field.
const (
	DefaultUsers       = 50_000
	DefaultDays        = 180
	DefaultEvents      = 10_000_000
	DefaultServiceName = "demo-cli"
	// MaxDays keeps the whole period within the server's default
	// retention (395 days) when it ends now.
	MaxDays = 390
)

// SDKName is the sdk.name of every generated event.
const SDKName = "telemetry-kit-go"

// Config describes a history. A zero field takes its default.
type Config struct {
	// Seed selects the history; the same Config gives the same events.
	Seed int64
	// Users is the number of users (machines) over the period;
	// default 50,000. Some may end up with no event when Events is small.
	Users int
	// Days is the length of the period in days of 24 hours; default 180,
	// at most MaxDays.
	Days int
	// End is the end of the period, exclusive: every timestamp is in
	// [End - Days×24h, End). Default: today's midnight, UTC, which makes the
	// history depend on the day it is made; set it for a reproducible one.
	End time.Time
	// Events is the exact number of events; default 10,000,000. Use a
	// negative value for none.
	Events int
	// ServiceName is the service_name of every event; default "demo-cli".
	ServiceName string
}

// withDefaults returns c with its zero fields set, or an error.
func (c Config) withDefaults() (Config, error) {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.Events < 0 {
		c.Events = 0
	}
	if c.End.IsZero() {
		c.End = time.Now().UTC().Truncate(24 * time.Hour)
	}
	c.End = c.End.UTC()
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	switch {
	case c.Users < 0 || c.Users > 1<<24:
		return c, fmt.Errorf("synth: %d users, want 1 to %d", c.Users, 1<<24)
	case c.Days < 0 || c.Days > MaxDays:
		return c, fmt.Errorf("synth: %d days, want 1 to %d", c.Days, MaxDays)
	case !wire.ValidServiceName(c.ServiceName):
		return c, fmt.Errorf("synth: invalid service name %q", c.ServiceName)
	}
	return c, nil
}

// Version is a release of the tool.
type Version struct {
	Name     string
	Released time.Time // before the period for the first release
	SDK      string    // the SDK version it is built with
	Go       string    // the Go version of its prebuilt binaries
}

// FlagSpec is a flag of a command.
type FlagSpec struct {
	Name string
	// P is the chance that a run of a command with this flag sets it.
	P float64
	// Values are the values the author collects (flag_values), nil when
	// only the flag's name is recorded.
	Values []string
	// ValueP are the values' chances, in the order of Values.
	ValueP []float64
}

// Command is a command of the tool.
type Command struct {
	Name     string  // metadata.command, e.g. "config get"
	Weight   float64 // its share of runs: rank^-1.1 over the sum
	MedianMS float64 // median duration of a successful run on linux
	Sigma    float64 // of the log-normal duration
	ArgsMean float64 // mean args_count
	FailRate float64 // base failure rate
	Flags    []FlagSpec
}

// Named is a feature or a method, with the releases that have it.
type Named struct {
	Name string
	// From is the index in [Versions] of the first release that has it.
	From int
	// Until is the index of the first release that no longer has it, or
	// 0 when every later release has it.
	Until int
	// Deprecated is the index of the first release in which it is
	// deprecated (used less), or 0.
	Deprecated int
}

// The release whose runs fail often on one OS, and the one that fixes it.
const (
	BadOS      = "windows"
	BadVersion = "1.4.0"
	FixVersion = "1.4.1"
	// MinSupportedVersion is the release that becomes the oldest
	// supported one at [Generator.SunsetDay].
	MinSupportedVersion = "1.5.0"
	// DeprecatedMethod is deprecated in 1.3.0 and removed in 1.5.0.
	DeprecatedMethod = "Client.FetchLegacy"
)

// Error kinds of failed runs.
const (
	KindExitError = "exit_error"
	KindUsage     = "usage"
	KindTimeout   = "timeout"
	KindNetwork   = "network"
	KindUnknown   = "unknown" // a crashed run: no success, duration or exit code
)

var versionNames = [...]string{"1.0.0", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.4.0", "1.4.1", "1.5.0", "1.6.0", "1.6.1", "1.7.0", "2.0.0"}

const (
	nVersions  = len(versionNames)
	badVer     = 5  // 1.4.0
	minSupVer  = 7  // 1.5.0
	breakVer   = 11 // 2.0.0
	deprecVer  = 4  // 1.3.0
	zipfCmd    = 1.1
	ciShare    = 0.075
	existShare = 0.12
)

func sdkVersion(v int) string { return [...]string{"0.1.0", "0.2.0", "0.3.0"}[v/4] }

func releaseGo(v int) string {
	return [...]string{"go1.24.4", "go1.24.6", "go1.25.1", "go1.25.4", "go1.26.0", "go1.26.2"}[v/2]
}

var flagSpecs = map[string]FlagSpec{
	"verbose":   {Name: "verbose", P: 0.12},
	"output":    {Name: "output", P: 0.22, Values: []string{"json", "yaml", "table"}, ValueP: []float64{0.45, 0.15, 0.40}},
	"auth":      {Name: "auth", P: 0.35, Values: []string{"token", "oauth", "ssh"}, ValueP: []float64{0.55, 0.30, 0.15}},
	"env":       {Name: "env", P: 0.4, Values: []string{"dev", "staging", "prod"}, ValueP: []float64{0.45, 0.30, 0.25}},
	"watch":     {Name: "watch", P: 0.015},
	"force":     {Name: "force", P: 0.07},
	"dry-run":   {Name: "dry-run", P: 0.1},
	"all":       {Name: "all", P: 0.12},
	"follow":    {Name: "follow", P: 0.3},
	"tail":      {Name: "tail", P: 0.2},
	"timeout":   {Name: "timeout", P: 0.05},
	"yes":       {Name: "yes", P: 0.25},
	"config":    {Name: "config", P: 0.06},
	"recursive": {Name: "recursive", P: 0.3},
	"fix":       {Name: "fix", P: 0.25},
}

// commandTable lists the commands by rank: name, median ms, sigma, mean
// args, base failure rate, flags.
var commandTable = []struct {
	name                string
	median, sigma, args float64
	fail                float64
	flags               []string
}{
	{"status", 180, 0.6, 0.2, 0.01, []string{"all", "output", "verbose", "watch"}},
	{"build", 8000, 0.9, 0.6, 0.07, []string{"env", "force", "verbose", "watch"}},
	{"run", 2500, 1.1, 1.5, 0.06, []string{"env", "verbose", "watch"}},
	{"test", 15000, 1.0, 0.8, 0.12, []string{"timeout", "verbose", "watch"}},
	{"deploy", 45000, 0.8, 0.5, 0.08, []string{"auth", "dry-run", "env", "force", "yes"}},
	{"logs", 1200, 1.2, 0.7, 0.03, []string{"env", "follow", "output", "tail"}},
	{"get", 400, 0.7, 1.0, 0.04, []string{"all", "env", "output", "watch"}},
	{"list", 350, 0.7, 0.3, 0.02, []string{"all", "output", "watch"}},
	{"login", 6000, 0.9, 0.1, 0.09, []string{"auth", "env"}},
	{"init", 900, 0.6, 0.7, 0.04, []string{"config", "force", "yes"}},
	{"config get", 60, 0.5, 1.0, 0.03, []string{"output"}},
	{"version", 25, 0.4, 0, 0.002, []string{"output"}},
	{"diff", 700, 0.8, 0.8, 0.03, []string{"all", "output"}},
	{"apply", 5000, 0.9, 0.8, 0.08, []string{"dry-run", "env", "force", "yes"}},
	{"config set", 70, 0.5, 2.0, 0.04, nil},
	{"describe", 450, 0.7, 1.0, 0.05, []string{"env", "output"}},
	{"remote list", 120, 0.5, 0, 0.01, []string{"output", "verbose"}},
	{"help", 20, 0.4, 0.6, 0.001, nil},
	{"push", 4000, 0.9, 1.0, 0.07, []string{"auth", "env", "force"}},
	{"pull", 3500, 0.9, 1.0, 0.05, []string{"auth", "env"}},
	{"exec", 3000, 1.3, 2.0, 0.07, []string{"env"}},
	{"remote add", 300, 0.6, 2.0, 0.06, []string{"auth"}},
	{"fmt", 600, 0.7, 1.0, 0.01, []string{"dry-run", "recursive"}},
	{"lint", 2200, 0.8, 1.0, 0.10, []string{"fix", "output", "recursive"}},
	{"clean", 800, 0.8, 0.2, 0.01, []string{"all", "dry-run", "force"}},
	{"logout", 150, 0.5, 0, 0.005, []string{"all"}},
	{"config list", 60, 0.5, 0, 0.005, []string{"output"}},
	{"rollback", 30000, 0.8, 1.0, 0.09, []string{"dry-run", "env", "yes"}},
	{"cache clear", 400, 0.6, 0, 0.01, []string{"all"}},
	{"env list", 150, 0.5, 0, 0.01, []string{"output"}},
	{"env set", 200, 0.5, 2, 0.03, []string{"env"}},
	{"completion", 30, 0.4, 1, 0.002, nil},
	{"upgrade", 12000, 0.8, 0, 0.05, []string{"yes"}},
	{"doctor", 3000, 0.7, 0, 0.02, []string{"output", "verbose"}},
	{"secrets get", 500, 0.6, 1, 0.05, []string{"env", "output"}},
	{"secrets set", 600, 0.6, 2, 0.05, []string{"env"}},
	{"remote remove", 200, 0.5, 1, 0.03, []string{"force"}},
	{"plugin install", 9000, 0.9, 1, 0.08, []string{"force"}},
	{"plugin list", 150, 0.5, 0, 0.01, []string{"output"}},
	{"migrate", 60000, 1.0, 0.5, 0.10, []string{"dry-run", "env", "yes"}},
}

var features = []Named{
	{Name: "color_output"},
	{Name: "cache"},
	{Name: "parallel"},
	{Name: "config_file"},
	{Name: "plugins", From: 2},
	{Name: "profiles", From: 3},
	{Name: "shell_completion"},
	{Name: "interactive_prompt", Until: breakVer},
	{Name: "proxy"},
	{Name: "remote_cache", From: 8},
	{Name: "env_override"},
	{Name: "tui", From: breakVer},
}

var methods = []Named{
	{Name: "Client.Get"},
	{Name: "Client.Do"},
	{Name: "Client.List"},
	{Name: "Config.Load"},
	{Name: DeprecatedMethod, Until: minSupVer, Deprecated: deprecVer},
	{Name: "Client.Upload"},
	{Name: "Client.Watch", From: 2},
	{Name: "Client.Stream", From: minSupVer},
	{Name: "Client.Delete"},
	{Name: "Client.Batch", From: 9},
}

var commands = func() []Command {
	cs := make([]Command, len(commandTable))
	var sum float64
	for i := range commandTable {
		sum += math.Pow(float64(i+1), -zipfCmd)
	}
	for i, c := range commandTable {
		fs := make([]FlagSpec, len(c.flags))
		for j, f := range c.flags {
			fs[j] = flagSpecs[f]
		}
		cs[i] = Command{Name: c.name, Weight: math.Pow(float64(i+1), -zipfCmd) / sum, MedianMS: c.median,
			Sigma: c.sigma, ArgsMean: c.args, FailRate: c.fail, Flags: fs}
	}
	return cs
}()

// Commands returns the tool's commands by rank, the most used first.
func Commands() []Command { return slices.Clone(commands) }

// Features returns the features the tool records, by rank.
func Features() []Named { return slices.Clone(features) }

// Methods returns the methods the tool records, by rank.
func Methods() []Named { return slices.Clone(methods) }

var (
	osNames   = [...]string{"linux", "darwin", "windows"}
	archNames = [...]string{"amd64", "arm64"}
	ciNames   = [...]string{"github_actions", "gitlab", "jenkins", "circleci", "buildkite", "azure_pipelines"}
	ciNameP   = []float64{0.58, 0.18, 0.09, 0.07, 0.04, 0.04}
	// Go versions of users who build the tool themselves.
	ownGo  = [...]string{"go1.23.9", "go1.24.4", "go1.24.9", "go1.25.3", "go1.25.6", "go1.26.1"}
	ownGoP = []float64{0.06, 0.14, 0.2, 0.25, 0.2, 0.15}
	// Time zones as offsets from UTC in minutes, with their shares.
	tzMinutes = [...]int{-480, -420, -300, -180, 0, 60, 120, 180, 330, 480, 540, 600}
	tzP       = []float64{0.12, 0.05, 0.16, 0.05, 0.08, 0.2, 0.08, 0.04, 0.1, 0.06, 0.04, 0.02}
	kindNames = [...]string{"", KindExitError, KindUsage, KindTimeout, KindNetwork, KindUnknown}
)

const (
	kindNone = iota
	kindExit
	kindUsage
	kindTimeout
	kindNetwork
	kindUnknown
)

// user is what the generator knows of one user.
type user struct {
	id       string // "anon_" + 64 hex
	arrival  int32  // day index of the first use
	life     int32  // days from arrival on which the user may be active
	install  int8   // the release installed on arrival
	os, arch uint8
	ciName   int8 // index in ciNames, -1 when not CI
	ownGo    int8 // index in ownGo, -1 for prebuilt binaries
	pinned   bool // never upgrades on their own
	rate     float64
	weight   float64
	lag      float64 // days after a release until an upgrade
	tz       int     // minutes east of UTC
	hour     float64 // preferred local hour
}

// Event types in records.
const (
	typeCommand = iota
	typeFeature
	typeMethod
)

// record is a compact generated event, before it becomes a wire.Event.
type record struct {
	ms       int64 // timestamp, Unix milliseconds
	sessMs   int64 // session start
	dur      int64 // duration_ms
	idBits   uint64
	idBits2  uint64
	sessBits uint64
	user     int32
	seq      int32
	typ      uint8
	name     uint8
	ver      uint8
	kind     uint8
	exit     uint8
	args     uint8
	flags    uint8  // bit i: the command's flag i is set
	vals     uint16 // 2 bits per flag: the index of its value
}

// Generator makes the events of one history, in timestamp order.
type Generator struct {
	cfg      Config
	start    time.Time // End - Days
	seed     uint64
	users    []user
	rel      []int // release day index of each version
	sunset   int   // day index from which versions < minSupVer are gone
	versions []Version

	// Allocation of Events over the active user-days.
	activeDays uint64 // number of active user-days
	totalW     uint64 // sum of their weights
	base       int    // events every active user-day gets first (0 or 1)
	rest       uint64 // events shared by weight
	cumW       uint64
	seen       uint64 // active user-days handled
	given      uint64 // events of the rest handed out

	day  int // next day to generate
	recs []record
	pos  int
}

// New returns a generator of the history cfg describes.
func New(cfg Config) (*Generator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, seed: uint64(cfg.Seed)*0x9e3779b97f4a7c15 + 0x2545f4914f6cdd1d}
	g.start = cfg.End.Add(-time.Duration(cfg.Days) * 24 * time.Hour)
	g.rel = make([]int, nVersions)
	g.versions = make([]Version, nVersions)
	for i := range g.rel {
		if i == 0 {
			g.rel[i] = -max(1, cfg.Days/6)
		} else {
			g.rel[i] = i * cfg.Days / nVersions
		}
		g.versions[i] = Version{Name: versionNames[i], Released: g.dayStart(g.rel[i]).Add(15 * time.Hour),
			SDK: sdkVersion(i), Go: releaseGo(i)}
	}
	g.sunset = g.rel[minSupVer] + max(1, cfg.Days/6)
	g.makeUsers()
	for d := range cfg.Days {
		for u := range g.users {
			if w := g.userDay(u, d); w > 0 {
				g.activeDays++
				g.totalW += w
			}
		}
	}
	n := uint64(cfg.Events)
	if n >= g.activeDays {
		g.base = 1
		g.rest = n - g.activeDays
	} else {
		g.rest = n
	}
	return g, nil
}

// Config returns the generator's configuration, with the defaults set.
func (g *Generator) Config() Config { return g.cfg }

// Start returns the start of the period, End - Days.
func (g *Generator) Start() time.Time { return g.start }

// Versions returns the releases, oldest first.
func (g *Generator) Versions() []Version { return slices.Clone(g.versions) }

// SunsetDay returns the day from which releases before
// [MinSupportedVersion] are no longer used.
func (g *Generator) SunsetDay() time.Time { return g.dayStart(g.sunset) }

// ActiveUserDays returns how many (user, day) pairs have at least one
// event when Events allows one for each, as it does unless it is small.
func (g *Generator) ActiveUserDays() int { return int(g.activeDays) }

func (g *Generator) dayStart(d int) time.Time {
	return g.start.Add(time.Duration(d) * 24 * time.Hour)
}

// hash mixes the seed with a, b and c (splitmix64 steps).
func (g *Generator) hash(a, b, c uint64) uint64 {
	x := g.seed ^ a*0xbf58476d1ce4e5b9
	x = mix(x + b*0x94d049bb133111eb)
	return mix(x + c*0x9e3779b97f4a7c15)
}

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// Hash domains.
const (
	hUser = iota + 1
	hActive
	hWeight
	hLag
	hDay
	hPref
)

func pick(r *rand.Rand, p []float64) int {
	x := r.Float64()
	for i, q := range p {
		if x < q {
			return i
		}
		x -= q
	}
	return len(p) - 1
}

func lognormal(r *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*r.NormFloat64())
}

func (g *Generator) makeUsers() {
	g.users = make([]user, g.cfg.Users)
	days := g.cfg.Days
	for i := range g.users {
		u := &g.users[i]
		r := rand.New(rand.NewPCG(g.hash(hUser, uint64(i), 0), g.hash(hUser, uint64(i), 1)))
		var idb [32]byte
		for j := 0; j < 32; j += 8 {
			x := r.Uint64()
			for k := range 8 {
				idb[j+k] = byte(x >> (8 * k))
			}
		}
		u.id = wire.UserIDPrefix + hex.EncodeToString(idb[:])
		existing := r.Float64() < existShare
		ci := r.Float64() < ciShare
		if existing {
			u.arrival = 0
		} else {
			// Density 1+2t on [0,1): the arrival rate triples over the period.
			x := r.Float64()
			t := (math.Sqrt(1+8*x) - 1) / 2
			u.arrival = int32(min(days-1, int(t*float64(days))))
		}
		switch {
		case existing:
			u.life = int32(math.Ceil(lognormal(r, 60, 1.2)))
		case r.Float64() < 0.45:
			u.life = 1
		default:
			u.life = int32(max(2, math.Ceil(lognormal(r, 20, 1.4))))
		}
		u.life = min(u.life, int32(days)+1)
		rate := lognormal(r, 0.18, 0.7)
		if existing {
			rate = lognormal(r, 0.35, 0.5)
		}
		if ci {
			rate = lognormal(r, 0.6, 0.4)
		}
		u.rate = min(0.9, max(0.02, rate))
		u.weight = lognormal(r, 1, 0.9)
		u.ciName = -1
		if ci {
			u.ciName = int8(pick(r, ciNameP))
			u.os = uint8(pick(r, []float64{0.85, 0.06, 0.09}))
			u.tz = 0
			u.hour = 12
		} else {
			u.os = uint8(pick(r, []float64{0.45, 0.38, 0.17}))
			u.tz = tzMinutes[pick(r, tzP)]
			if r.Float64() < 0.2 {
				u.hour = 21 + 1.5*r.NormFloat64() // evening users
			} else {
				u.hour = 13 + 2.5*r.NormFloat64()
			}
		}
		armP := [...]float64{0.15, 0.75, 0.05}[u.os]
		if r.Float64() < armP {
			u.arch = 1
		}
		u.ownGo = -1
		if !ci && r.Float64() < 0.25 {
			u.ownGo = int8(pick(r, ownGoP))
		}
		u.pinned = r.Float64() < 0.15
		u.lag = lognormal(r, 6, 1.0)
		u.install = int8(g.latestAt(int(u.arrival)))
	}
}

// latestAt returns the newest release out on day d.
func (g *Generator) latestAt(d int) int {
	v := 0
	for i, r := range g.rel {
		if r <= d {
			v = i
		}
	}
	return v
}

// version returns the release user u runs on day d.
func (g *Generator) version(ui int, d int) int {
	u := &g.users[ui]
	v := int(u.install)
	if !u.pinned {
		for i := v + 1; i < nVersions; i++ {
			lag := u.lag * (0.5 + unit(g.hash(hLag, uint64(ui), uint64(i))))
			if float64(g.rel[i])+lag <= float64(d) {
				v = i
			}
		}
	}
	if d >= g.sunset && v < minSupVer {
		v = g.latestAt(d)
	}
	return v
}

// userDay returns the weight of user u's day d, 0 when the user does not
// use the tool that day.
func (g *Generator) userDay(ui, d int) uint64 {
	u := &g.users[ui]
	a := int(u.arrival)
	if d < a || d >= a+int(u.life) {
		return 0
	}
	if d > a {
		p := u.rate
		if u.ciName < 0 {
			// Weekdays 1.15, weekends 0.35 (local time is near enough).
			if wd := g.dayStart(d).Weekday(); wd == time.Saturday || wd == time.Sunday {
				p *= 0.35
			} else {
				p *= 1.15
			}
		}
		if unit(g.hash(hActive, uint64(ui), uint64(d))) >= p {
			return 0
		}
	}
	f := -math.Log(1 - unit(g.hash(hWeight, uint64(ui), uint64(d))))
	return uint64(u.weight*f*4096) + 1
}

// share returns how many events of the rest the weights up to cum get.
func (g *Generator) share(cum uint64) uint64 {
	hi, lo := bits.Mul64(g.rest, cum)
	q, _ := bits.Div64(hi, lo, g.totalW)
	return q
}

// Next sets ev to the next event and reports whether there was one. It
// sets every field of ev and gives it a new Metadata map.
func (g *Generator) Next(ev *wire.Event) bool {
	for g.pos == len(g.recs) {
		if g.day >= g.cfg.Days {
			return false
		}
		g.fillDay(g.day)
		g.day++
	}
	g.event(&g.recs[g.pos], ev)
	g.pos++
	return true
}

// Batches calls fn with the request body of each batch of at most size
// events, as [wire.AppendBatch] makes it with a dropped count of 0, and
// the number of events in it. The body is reused after fn returns. It
// stops at fn's first error and returns it.
func (g *Generator) Batches(size int, fn func(body []byte, events int) error) error {
	if size < 1 || size > wire.MaxEvents {
		return fmt.Errorf("synth: batch size %d, want 1 to %d", size, wire.MaxEvents)
	}
	var (
		ev   wire.Event
		data []byte
		ends = make([]int, 0, size)
		evs  = make([][]byte, 0, size)
		body []byte
	)
	for {
		data, ends = data[:0], ends[:0]
		for len(ends) < size && g.Next(&ev) {
			var err error
			if data, err = wire.AppendEvent(data, &ev); err != nil {
				return err
			}
			ends = append(ends, len(data))
		}
		if len(ends) == 0 {
			return nil
		}
		evs = evs[:0]
		from := 0
		for _, e := range ends {
			evs = append(evs, data[from:e])
			from = e
		}
		body = wire.AppendBatch(body[:0], 0, evs...)
		if err := fn(body, len(ends)); err != nil {
			return err
		}
	}
}

// SDKBatches calls fn with the request bodies the SDK's command-line path
// would send for the history: each installation (user) sends its own
// queued events, at the run that finds at least minEvents queued or the
// oldest of them maxAge old, that run's event included (sender.Policy's
// MinEvents and MaxAge; 100 and an hour by default). The bodies come in
// the order they are sent, each with its number of events; the batches
// still open at the end of the history come last, by the time of their
// newest event. The body is reused after fn returns. It stops at fn's
// first error and returns it.
//
// Against [Generator.Batches], whose requests each hold the events of many
// users in one stretch of time, these are what a collection server
// receives from a tool's users: small requests (a few events each for
// most users), each from one user, platform and version.
func (g *Generator) SDKBatches(minEvents int, maxAge time.Duration, fn func(body []byte, events int) error) error {
	if minEvents < 1 || minEvents > wire.MaxEvents {
		return fmt.Errorf("synth: batch size %d, want 1 to %d", minEvents, wire.MaxEvents)
	}
	type queued struct {
		first, last time.Time
		data        []byte
		ends        []int
	}
	var (
		ev    wire.Event
		body  []byte
		evs   [][]byte
		open  = map[string]*queued{}
		spare []*queued
	)
	send := func(q *queued) error {
		evs = evs[:0]
		from := 0
		for _, e := range q.ends {
			evs = append(evs, q.data[from:e])
			from = e
		}
		body = wire.AppendBatch(body[:0], 0, evs...)
		return fn(body, len(q.ends))
	}
	for g.Next(&ev) {
		q := open[ev.UserID]
		if q == nil {
			if n := len(spare); n > 0 {
				q, spare = spare[n-1], spare[:n-1]
			} else {
				q = &queued{}
			}
			q.first, q.data, q.ends = ev.Timestamp.Time, q.data[:0], q.ends[:0]
			open[ev.UserID] = q
		}
		var err error
		if q.data, err = wire.AppendEvent(q.data, &ev); err != nil {
			return err
		}
		q.ends = append(q.ends, len(q.data))
		q.last = ev.Timestamp.Time
		if len(q.ends) >= minEvents || q.last.Sub(q.first) >= maxAge {
			if err := send(q); err != nil {
				return err
			}
			delete(open, ev.UserID)
			spare = append(spare, q)
		}
	}
	rest := slices.Collect(maps.Values(open))
	slices.SortFunc(rest, func(a, b *queued) int {
		if c := a.last.Compare(b.last); c != 0 {
			return c
		}
		return bytes.Compare(a.data, b.data)
	})
	for _, q := range rest {
		if err := send(q); err != nil {
			return err
		}
	}
	return nil
}

// fillDay generates the records of day d, sorted by time.
func (g *Generator) fillDay(d int) {
	g.recs, g.pos = g.recs[:0], 0
	dayMs := g.dayStart(d).UnixMilli()
	for ui := range g.users {
		w := g.userDay(ui, d)
		if w == 0 {
			continue
		}
		g.seen++
		before := g.given
		g.cumW += w
		if g.seen == g.activeDays {
			g.given = g.rest
		} else {
			g.given = g.share(g.cumW)
		}
		n := g.base + int(g.given-before)
		if n > 0 {
			g.userEvents(ui, d, dayMs, n)
		}
	}
	sort.Slice(g.recs, func(i, j int) bool {
		a, b := &g.recs[i], &g.recs[j]
		if a.ms != b.ms {
			return a.ms < b.ms
		}
		if a.user != b.user {
			return a.user < b.user
		}
		return a.seq < b.seq
	})
}

const (
	dayMillis = 24 * 3600 * 1000
	maxDurMs  = 3 * 3600 * 1000
)

// userEvents appends the n events of user ui on day d.
func (g *Generator) userEvents(ui, d int, dayMs int64, n int) {
	u := &g.users[ui]
	r := rand.New(rand.NewPCG(g.hash(hDay, uint64(ui), uint64(d)), uint64(ui)<<32|uint64(d)))
	ver := g.version(ui, d)
	// Bursts of work around the preferred hour, in UTC minutes of the day.
	nb := 1 + r.IntN(1+min(2, n/8))
	var centers [3]float64
	for i := range nb {
		if u.ciName >= 0 {
			centers[i] = r.Float64() * 24 * 60
		} else {
			centers[i] = (u.hour+2*r.NormFloat64())*60 - float64(u.tz)
		}
	}
	seq := int32(0)
	for n > 0 {
		nf, nm := poisson(r, 0.35), poisson(r, 0.2)
		nm = min(nm, n-1)
		nf = min(nf, n-1-nm)
		n -= 1 + nf + nm
		c := g.command(r, u, ver)
		minute := centers[r.IntN(nb)] + 45*r.NormFloat64()
		if u.ciName >= 0 {
			minute = r.Float64() * 24 * 60
		}
		off := int64(math.Mod(minute*60_000, dayMillis))
		if off < 0 {
			off += dayMillis
		}
		off += r.Int64N(60_000)
		span := max(c.dur, int64(nf+nm)) // the extra events need room
		if off+span >= dayMillis {
			off = dayMillis - 1 - span
		}
		off = max(off, 0)
		c.ms = dayMs + off
		c.sessMs = c.ms
		c.sessBits = r.Uint64()
		c.user, c.seq = int32(ui), seq
		c.idBits, c.idBits2 = r.Uint64(), r.Uint64()
		seq++
		g.recs = append(g.recs, c)
		for i := range nf + nm {
			e := record{typ: typeFeature, sessMs: c.sessMs, sessBits: c.sessBits, user: int32(ui), seq: seq, ver: c.ver}
			seq++
			if i >= nf {
				e.typ = typeMethod
				e.name = uint8(pickNamed(r, methods, ver))
			} else {
				e.name = uint8(pickNamed(r, features, ver))
			}
			e.ms = c.ms + 1 + r.Int64N(max(1, span-1))
			e.ms = min(e.ms, dayMs+dayMillis-1)
			e.idBits, e.idBits2 = r.Uint64(), r.Uint64()
			g.recs = append(g.recs, e)
		}
	}
}

func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// pickNamed picks a feature or method that release ver has, with
// weights 1/rank, a deprecated one at a third of its weight.
func pickNamed(r *rand.Rand, list []Named, ver int) int {
	var buf [16]float64
	w := buf[:len(list)]
	var sum float64
	for i, x := range list {
		if ver < x.From || x.Until != 0 && ver >= x.Until {
			continue
		}
		w[i] = 1 / float64(i+1)
		if x.Deprecated != 0 && ver >= x.Deprecated {
			w[i] /= 3
		}
		sum += w[i]
	}
	x := r.Float64() * sum
	last := 0
	for i, q := range w {
		if q == 0 {
			continue
		}
		last = i
		if x < q {
			return i
		}
		x -= q
	}
	return last
}

var cmdCum = func() []float64 {
	c := make([]float64, len(commands))
	var s float64
	for i, x := range commands {
		s += x.Weight
		c[i] = s
	}
	c[len(c)-1] = 1
	return c
}()

// command makes the record of one run by user u on release ver, without
// its times and ids.
func (g *Generator) command(r *rand.Rand, u *user, ver int) record {
	ci, _ := slices.BinarySearch(cmdCum, r.Float64())
	ci = min(ci, len(commands)-1)
	c := &commands[ci]
	rec := record{typ: typeCommand, name: uint8(ci), ver: uint8(ver)}
	watch := false
	for i, f := range c.Flags {
		if r.Float64() >= f.P {
			continue
		}
		rec.flags |= 1 << i
		if f.Name == "watch" {
			watch = true
		}
		if f.Values != nil {
			// Each user mostly sticks to one value.
			v := pickFrom(unit(g.hash(hPref, userKey(u), nameKey(f.Name))), f.ValueP)
			if r.Float64() < 0.15 {
				v = pick(r, f.ValueP)
			}
			rec.vals |= uint16(v) << (2 * i)
		}
	}
	rec.args = uint8(min(20, poisson(r, c.ArgsMean)))

	// Failure.
	p := c.FailRate * [...]float64{0.9, 1.0, 1.3}[u.os]
	if u.ciName >= 0 {
		p *= 1.2
	}
	x := r.Float64()
	switch {
	case x < p:
		rec.kind = uint8([...]int{kindExit, kindUsage, kindTimeout, kindNetwork, kindUnknown}[pick(r, []float64{0.55, 0.2, 0.07, 0.08, 0.1})])
	case ver == badVer && osNames[u.os] == BadOS && x < p+0.30:
		rec.kind = kindExit
		if r.Float64() < 0.4 {
			rec.kind = kindUnknown
		}
	case ver == breakVer && x < p+0.05:
		rec.kind = kindUsage
	}
	switch rec.kind {
	case kindUsage:
		rec.exit = 2
	case kindExit:
		rec.exit = 1
		if r.Float64() < 0.2 {
			rec.exit = uint8(2 + r.IntN(4))
		}
	case kindTimeout, kindNetwork:
		rec.exit = 1
	}

	// Duration.
	dur := lognormal(r, c.MedianMS, c.Sigma) * [...]float64{1.0, 0.9, 1.25}[u.os]
	if u.arch == 1 && u.os == 1 {
		dur *= 0.8
	}
	if u.ciName >= 0 {
		dur *= 1.3
	}
	if watch {
		dur *= 40
	}
	switch rec.kind {
	case kindUsage:
		dur = lognormal(r, 15, 0.5)
	case kindTimeout:
		dur = 30_000 + lognormal(r, 30_000, 0.8)
	case kindUnknown:
		dur *= r.Float64()
	}
	rec.dur = int64(min(float64(maxDurMs), dur))
	return rec
}

func userKey(u *user) uint64 {
	var k uint64
	for i := 5; i < 21; i++ {
		k = k<<4 | uint64(u.id[i]&0x0f)
	}
	return k
}

func nameKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func pickFrom(x float64, p []float64) int {
	for i, q := range p {
		if x < q {
			return i
		}
		x -= q
	}
	return len(p) - 1
}

// event makes the wire event of rec.
func (g *Generator) event(rec *record, ev *wire.Event) {
	u := &g.users[rec.user]
	ver := int(rec.ver)
	goVer := releaseGo(ver)
	if u.ownGo >= 0 {
		goVer = ownGo[u.ownGo]
	}
	*ev = wire.Event{
		EventID:        uuidV7(rec.ms, rec.idBits, rec.idBits2),
		SchemaVersion:  wire.SchemaVersion,
		ServiceName:    g.cfg.ServiceName,
		ServiceVersion: versionNames[ver],
		Timestamp:      wire.Timestamp{Time: time.UnixMilli(rec.ms).UTC()},
		UserID:         u.id,
		SessionID:      uuidV7(rec.sessMs, rec.sessBits, rec.sessBits>>17|rec.sessBits<<47),
		SDK:            wire.SDK{Name: SDKName, Version: sdkVersion(ver)},
		Env:            wire.Env{OS: osNames[u.os], Arch: archNames[u.arch], GoVersion: goVer},
	}
	if u.ciName >= 0 {
		ev.Env.CI, ev.Env.CIName = true, ciNames[u.ciName]
	}
	switch rec.typ {
	case typeFeature:
		ev.EventType = wire.EventFeatureUsed
		ev.Metadata = map[string]any{wire.MetaFeature: features[rec.name].Name}
	case typeMethod:
		ev.EventType = wire.EventMethodCalled
		ev.Metadata = map[string]any{wire.MetaMethod: methods[rec.name].Name}
	default:
		ev.EventType = wire.EventCommandExecuted
		c := &commands[rec.name]
		flags := []string{}
		var values map[string]any
		for i, f := range c.Flags {
			if rec.flags&(1<<i) == 0 {
				continue
			}
			flags = append(flags, f.Name)
			if f.Values != nil {
				if values == nil {
					values = map[string]any{}
				}
				values[f.Name] = f.Values[rec.vals>>(2*i)&3]
			}
		}
		m := map[string]any{
			wire.MetaCommand:   c.Name,
			wire.MetaFlags:     flags,
			"args_count":       int(rec.args),
			wire.MetaErrorKind: kindNames[rec.kind],
		}
		if values != nil {
			m[wire.MetaFlagValues] = values
		}
		if rec.kind != kindUnknown {
			m[wire.MetaSuccess] = rec.kind == kindNone
			m[wire.MetaDurationMS] = rec.dur
			m[wire.MetaExitCode] = int(rec.exit)
		}
		ev.Metadata = m
	}
}

// uuidV7 formats a version 7 UUID with the time ms and random bits.
func uuidV7(ms int64, a, b uint64) string {
	var id [16]byte
	for i := range 6 {
		id[i] = byte(uint64(ms) >> (40 - 8*i))
	}
	id[6] = 0x70 | byte(a>>8)&0x0f
	id[7] = byte(a)
	for i := 8; i < 16; i++ {
		id[i] = byte(b >> (8 * (15 - i)))
	}
	id[8] = 0x80 | id[8]&0x3f
	return formatUUID(id)
}

func formatUUID(id [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], id[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], id[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], id[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], id[8:10])
	s[23] = '-'
	hex.Encode(s[24:], id[10:])
	return string(s[:])
}

// ServerEvent returns the [server.Event] that the server's decoder makes
// of a generated event: its ids parsed, its metadata encoded as it is
// sent, and the fields the server reads from the metadata. It fails on an
// event this package does not generate, such as one whose ids are not in
// canonical form.
func ServerEvent(ev *wire.Event) (server.Event, error) {
	var s server.Event
	var ok bool
	if s.EventID, ok = wire.ParseUUID(ev.EventID); !ok || !wire.IsUUIDv7(s.EventID) {
		return s, errors.New("synth: invalid event_id")
	}
	if s.UserID, ok = wire.ParseUserID(ev.UserID); !ok {
		return s, errors.New("synth: invalid user_id")
	}
	if s.SessionID, ok = wire.ParseUUID(ev.SessionID); !ok {
		return s, errors.New("synth: invalid session_id")
	}
	s.Timestamp = ev.Timestamp.UTC().Truncate(time.Millisecond)
	s.ServiceName, s.ServiceVersion, s.EventType = ev.ServiceName, ev.ServiceVersion, ev.EventType
	s.SDKName, s.SDKVersion = ev.SDK.Name, ev.SDK.Version
	s.OS, s.Arch, s.CI, s.CIName, s.GoVersion = ev.Env.OS, ev.Env.Arch, ev.Env.CI, ev.Env.CIName, ev.Env.GoVersion
	meta := ev.Metadata
	if meta == nil {
		s.Metadata = []byte("{}")
	} else {
		b, err := json.Marshal(meta)
		if err != nil {
			return s, err
		}
		s.Metadata = b
	}
	str := func(k string) string { v, _ := meta[k].(string); return v }
	switch ev.EventType {
	case wire.EventFeatureUsed:
		s.Name = str(wire.MetaFeature)
	case wire.EventMethodCalled:
		s.Name = str(wire.MetaMethod)
	case wire.EventCommandExecuted:
		s.Name = str(wire.MetaCommand)
		if v, ok := meta[wire.MetaSuccess].(bool); ok {
			s.Success = &v
		}
		if v, ok := meta[wire.MetaDurationMS].(int64); ok {
			s.DurationMS = &v
		}
		if v, ok := meta[wire.MetaExitCode].(int); ok {
			c := int32(v)
			s.ExitCode = &c
		}
		if v, ok := meta[wire.MetaErrorKind].(string); ok {
			s.ErrorKind = &v
		}
		flags, _ := meta[wire.MetaFlags].([]string)
		values, _ := meta[wire.MetaFlagValues].(map[string]any)
		for _, f := range flags {
			if f == "" || len(f) > wire.MaxFlagChars || len(s.Flags) == wire.MaxRollupFlags ||
				slices.ContainsFunc(s.Flags, func(x server.Flag) bool { return x.Name == f }) {
				continue
			}
			fl := server.Flag{Name: f}
			if v, ok := values[f].(string); ok && v != "" && len(v) <= wire.MaxFlagChars {
				fl.Value, fl.HasValue = v, true
			}
			s.Flags = append(s.Flags, fl)
		}
	}
	return s, nil
}
