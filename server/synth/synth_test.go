package synth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/server/synth"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

var end = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

// small is a history for the tests that look at every event.
var small = synth.Config{Seed: 7, Users: 200, Days: 30, Events: 20_000, End: end}

// mid is a history large enough for the distributions to show.
var mid = synth.Config{Seed: 42, Users: 2000, Days: 90, Events: 200_000, End: end}

func newGen(t testing.TB, c synth.Config) *synth.Generator {
	t.Helper()
	g, err := synth.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// streamHash returns the SHA-256 of every batch body of c's history.
func streamHash(t *testing.T, c synth.Config, size int) ([32]byte, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	err := newGen(t, c).Batches(size, func(body []byte, events int) error {
		h.Write(body)
		n += events
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil)), n
}

func TestDeterministic(t *testing.T) {
	a, n := streamHash(t, small, 100)
	if n != small.Events {
		t.Fatalf("%d events, want %d", n, small.Events)
	}
	if b, _ := streamHash(t, small, 100); a != b {
		t.Fatal("the same config gave different batches")
	}
	other := small
	other.Seed++
	if b, _ := streamHash(t, other, 100); a == b {
		t.Fatal("another seed gave the same batches")
	}
	// The events do not depend on how they are batched.
	var x, y bytes.Buffer
	collect := func(buf *bytes.Buffer, size int) {
		g := newGen(t, small)
		err := g.Batches(size, func(body []byte, events int) error {
			var b wire.Batch
			if err := json.Unmarshal(body, &b); err != nil {
				return err
			}
			if len(b.Events) != events {
				t.Fatalf("batch of %d events says %d", len(b.Events), events)
			}
			for _, e := range b.Events {
				buf.Write(e)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	collect(&x, 1000)
	g := newGen(t, small)
	var ev wire.Event
	for g.Next(&ev) {
		b, err := wire.AppendEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		y.Write(b)
	}
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Fatal("Batches and Next differ")
	}
}

// TestDecodes sends the small history through the server's decoder: no
// event is rejected, and each decodes to what ServerEvent says.
func TestDecodes(t *testing.T) {
	g := newGen(t, small)
	ref := newGen(t, small)
	now := end // the server's clock when the last event has just been made
	total := 0
	err := g.Batches(wire.MaxEvents, func(body []byte, events int) error {
		if len(body) > wire.MaxDecodedBytes {
			t.Fatalf("body of %d bytes", len(body))
		}
		b, err := decode.Batch(body, now, server.DefaultRetention)
		if err != nil {
			return err
		}
		if len(b.Rejected) != 0 || b.Total != events || len(b.Events) != events {
			t.Fatalf("decoded %d of %d events, rejected %+v", len(b.Events), events, b.Rejected[:min(5, len(b.Rejected))])
		}
		for i := range b.Events {
			var ev wire.Event
			if !ref.Next(&ev) {
				t.Fatal("the reference stream ended early")
			}
			want, err := synth.ServerEvent(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.Events[i], want) {
				t.Fatalf("event %d decodes to\n%+v\nServerEvent gives\n%+v", total+i, b.Events[i], want)
			}
		}
		total += events
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != small.Events {
		t.Fatalf("%d events, want %d", total, small.Events)
	}
}

// TestCountAndWindow checks the exact count, the period and the order of
// the stream, including counts below the number of active user-days.
func TestCountAndWindow(t *testing.T) {
	belowActive := false
	for _, c := range []synth.Config{
		small,
		{Seed: 1, Users: 300, Days: 20, Events: 1, End: end},
		{Seed: 2, Users: 300, Days: 20, Events: 137, End: end},
		{Seed: 3, Users: 1, Days: 1, Events: 1000, End: end.Add(90 * time.Minute)},
		{Seed: 4, Users: 50, Days: 7, Events: -1, End: end},
		{Seed: 5, Users: 500, Days: 14, Events: 5_003, End: end, ServiceName: "other.tool"},
	} {
		g := newGen(t, c)

		if c.Events > 1 && c.Events < g.ActiveUserDays() {
			belowActive = true
		}
		start := c.End.Add(-time.Duration(c.Days) * 24 * time.Hour)
		if !g.Start().Equal(start) {
			t.Fatalf("Start %v, want %v", g.Start(), start)
		}
		var ev wire.Event
		var last time.Time
		n := 0
		ids := map[string]bool{}
		for g.Next(&ev) {
			n++
			ts := ev.Timestamp.Time
			if ts.Before(start) || !ts.Before(c.End) {
				t.Fatalf("%+v: timestamp %v outside [%v, %v)", c, ts, start, c.End)
			}
			if ts.Before(last) {
				t.Fatalf("%+v: %v after %v", c, ts, last)
			}
			if idt, ok := wire.EventIDTime(ev.EventID); !ok || !idt.Equal(ts) {
				t.Fatalf("event_id %s carries %v, timestamp %v", ev.EventID, idt, ts)
			}
			if ids[ev.EventID] {
				t.Fatalf("event_id %s twice", ev.EventID)
			}
			ids[ev.EventID] = true
			if want := c.ServiceName; want != "" && ev.ServiceName != want {
				t.Fatalf("service %q", ev.ServiceName)
			}
			last = ts
		}
		if want := max(c.Events, 0); n != want {
			t.Fatalf("%+v: %d events, want %d", c, n, want)
		}
		if g.Next(&ev) {
			t.Fatal("Next after the end")
		}
	}
	if !belowActive {
		t.Error("no config with fewer events than active user-days")
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []synth.Config{
		{Users: -1}, {Days: -3}, {Days: synth.MaxDays + 1}, {ServiceName: "Bad Name"},
	} {
		if _, err := synth.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	g := newGen(t, synth.Config{})
	c := g.Config()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if c.Users != synth.DefaultUsers || c.Days != synth.DefaultDays || c.Events != synth.DefaultEvents ||
		c.ServiceName != synth.DefaultServiceName || !(c.End.Equal(today) || c.End.Equal(today.Add(-24*time.Hour))) {
		t.Fatalf("defaults: %+v", c)
	}
	vs := g.Versions()
	if len(vs) != 12 || !vs[0].Released.Before(g.Start()) {
		t.Fatalf("versions %+v", vs)
	}
	for i := 1; i < len(vs); i++ {
		if !vs[i].Released.After(vs[i-1].Released) || !vs[i].Released.Before(c.End) {
			t.Fatalf("release %d at %v", i, vs[i].Released)
		}
	}
	if n := len(synth.Commands()); n != 40 {
		t.Fatalf("%d commands", n)
	}
	if v := vs[slices.IndexFunc(vs, func(v synth.Version) bool { return v.Name == synth.MinSupportedVersion })]; !g.SunsetDay().After(v.Released) {
		t.Fatalf("sunset %v before %v", g.SunsetDay(), v.Released)
	}
}

// tally is what the distribution tests read from the mid history.
type tally struct {
	gen      *synth.Generator
	events   int
	types    map[string]int
	commands map[string]int
	os       map[string]int
	ci       int
	ciNames  map[string]int
	// days[user] lists the day indexes on which the user has an event.
	days map[string]map[int]bool
	// byWeek[week][version] counts events.
	byWeek [][]int
	// runs and fails by os and version.
	runs, fails map[[2]string]int
	kinds       map[string]int
	// durations of successful runs on linux, outside CI, without --watch.
	durations map[string][]float64
	flags     map[string]int
	values    map[[2]string]int
	sortedOK  bool
	// methods and features by version; deprecated: the last call of DeprecatedMethod.
	named       map[[2]string]int
	lastDeprec  time.Time
	lastOld     time.Time // the last event of a release before MinSupportedVersion
	sessions    map[string]*session
	noOutcome   int
	badEnvelope []string
}

type session struct {
	user     string
	commands int
	events   int
}

var (
	midOnce  sync.Once
	midTally *tally
)

func midHistory(t *testing.T) *tally {
	t.Helper()
	midOnce.Do(func() {
		g := newGen(t, mid)
		vIndex := map[string]int{}
		for i, v := range g.Versions() {
			vIndex[v.Name] = i
		}
		tl := &tally{gen: g, types: map[string]int{}, commands: map[string]int{}, os: map[string]int{},
			ciNames: map[string]int{}, days: map[string]map[int]bool{}, runs: map[[2]string]int{},
			fails: map[[2]string]int{}, kinds: map[string]int{}, durations: map[string][]float64{},
			flags: map[string]int{}, values: map[[2]string]int{}, sortedOK: true, named: map[[2]string]int{},
			sessions: map[string]*session{}}
		weeks := (mid.Days + 6) / 7
		tl.byWeek = make([][]int, weeks)
		for i := range tl.byWeek {
			tl.byWeek[i] = make([]int, len(vIndex))
		}
		var ev wire.Event
		for g.Next(&ev) {
			tl.events++
			day := int(ev.Timestamp.Sub(g.Start()) / (24 * time.Hour))
			tl.types[ev.EventType]++
			tl.os[ev.Env.OS]++
			if ev.Env.CI != (ev.Env.CIName != "") {
				tl.badEnvelope = append(tl.badEnvelope, "ci without ci_name")
			}
			if ev.Env.CI {
				tl.ci++
				tl.ciNames[ev.Env.CIName]++
			}
			if tl.days[ev.UserID] == nil {
				tl.days[ev.UserID] = map[int]bool{}
			}
			tl.days[ev.UserID][day] = true
			tl.byWeek[day/7][vIndex[ev.ServiceVersion]]++
			if vIndex[ev.ServiceVersion] < vIndex[synth.MinSupportedVersion] && ev.Timestamp.After(tl.lastOld) {
				tl.lastOld = ev.Timestamp.Time
			}
			s := tl.sessions[ev.SessionID]
			if s == nil {
				s = &session{user: ev.UserID}
				tl.sessions[ev.SessionID] = s
			}
			s.events++
			if s.user != ev.UserID {
				tl.badEnvelope = append(tl.badEnvelope, "session of two users")
			}
			m := ev.Metadata
			switch ev.EventType {
			case wire.EventCommandExecuted:
				s.commands++
				name := m[wire.MetaCommand].(string)
				tl.commands[name]++
				key := [2]string{ev.Env.OS, ev.ServiceVersion}
				tl.runs[key]++
				kind := m[wire.MetaErrorKind].(string)
				tl.kinds[kind]++
				success, hasOutcome := m[wire.MetaSuccess].(bool)
				if !hasOutcome {
					tl.noOutcome++
					if kind != synth.KindUnknown {
						tl.badEnvelope = append(tl.badEnvelope, "no outcome, kind "+kind)
					}
				}
				if success != (kind == "") || hasOutcome && success != (m[wire.MetaExitCode].(int) == 0) {
					tl.badEnvelope = append(tl.badEnvelope, "success disagrees with error_kind or exit_code")
				}
				if !success {
					tl.fails[key]++
				}
				flags := m[wire.MetaFlags].([]string)
				if !slices.IsSorted(flags) {
					tl.sortedOK = false
				}
				for _, f := range flags {
					tl.flags[f]++
				}
				if fv, ok := m[wire.MetaFlagValues].(map[string]any); ok {
					for k, v := range fv {
						tl.values[[2]string{k, v.(string)}]++
						if !slices.Contains(flags, k) {
							tl.badEnvelope = append(tl.badEnvelope, "a value for a flag not set")
						}
					}
				}
				if success && ev.Env.OS == "linux" && !ev.Env.CI && !slices.Contains(flags, "watch") {
					tl.durations[name] = append(tl.durations[name], float64(m[wire.MetaDurationMS].(int64)))
				}
			case wire.EventFeatureUsed:
				tl.named[[2]string{m[wire.MetaFeature].(string), ev.ServiceVersion}]++
			case wire.EventMethodCalled:
				name := m[wire.MetaMethod].(string)
				tl.named[[2]string{name, ev.ServiceVersion}]++
				if name == synth.DeprecatedMethod && ev.Timestamp.After(tl.lastDeprec) {
					tl.lastDeprec = ev.Timestamp.Time
				}
			}
		}
		midTally = tl
	})
	if midTally == nil {
		t.Fatal("the mid history failed")
	}
	return midTally
}

func TestEnvelope(t *testing.T) {
	tl := midHistory(t)
	if tl.events != mid.Events {
		t.Fatalf("%d events, want %d", tl.events, mid.Events)
	}
	if len(tl.badEnvelope) > 0 {
		t.Fatalf("%d inconsistencies, first: %s", len(tl.badEnvelope), tl.badEnvelope[0])
	}
	if !tl.sortedOK {
		t.Fatal("metadata.flags not sorted")
	}
	share := func(n int) float64 { return float64(n) / float64(tl.events) }
	if s := share(tl.types[wire.EventCommandExecuted]); s < 0.55 || s > 0.75 {
		t.Errorf("command_executed share %.3f", s)
	}
	if s := share(tl.types[wire.EventFeatureUsed]); s < 0.12 || s > 0.3 {
		t.Errorf("feature_used share %.3f", s)
	}
	if s := share(tl.types[wire.EventMethodCalled]); s < 0.06 || s > 0.2 {
		t.Errorf("method_called share %.3f", s)
	}
	t.Logf("types %v, os %v, CI share %.3f", tl.types, tl.os, share(tl.ci))
	if s := share(tl.ci); s < 0.07 || s > 0.25 { // ~15%, from 150 CI machines or so
		t.Errorf("CI share %.3f", s)
	}
	if tl.ciNames["github_actions"] <= tl.ciNames["gitlab"] || len(tl.ciNames) < 4 {
		t.Errorf("ci names %v", tl.ciNames)
	}
	for os, r := range map[string][2]float64{"linux": {0.4, 0.65}, "darwin": {0.2, 0.45}, "windows": {0.08, 0.3}} {
		if s := share(tl.os[os]); s < r[0] || s > r[1] {
			t.Errorf("%s share %.3f, want %v", os, s, r)
		}
	}
	// Sessions: one run each, with its feature and method events.
	for id, s := range tl.sessions {
		if s.commands != 1 {
			t.Fatalf("session %s has %d commands", id, s.commands)
		}
	}
	if r := float64(tl.events) / float64(len(tl.sessions)); r < 1.3 || r > 1.9 {
		t.Errorf("%.2f events per session", r)
	}
}

func TestCommandsZipf(t *testing.T) {
	tl := midHistory(t)
	cmds := synth.Commands()
	total := tl.types[wire.EventCommandExecuted]
	counts := make([]float64, len(cmds))
	for i, c := range cmds {
		counts[i] = float64(tl.commands[c.Name])
		if counts[i] == 0 {
			t.Errorf("%s never run", c.Name)
		}
	}
	if len(tl.commands) != len(cmds) {
		t.Errorf("%d commands run, want %d", len(tl.commands), len(cmds))
	}
	if top := counts[0] / float64(total); top < 0.2 || top > 0.35 {
		t.Errorf("top command share %.3f", top)
	}
	for i := 1; i < 6; i++ {
		if counts[i] >= counts[i-1] {
			t.Errorf("rank %d run %v times, rank %d %v", i+1, counts[i], i, counts[i-1])
		}
	}
	for i := 8; i < len(counts); i += 8 { // groups of 8 ranks
		var a, b float64
		for j := range 8 {
			a += counts[i-8+j]
			b += counts[i+j]
		}
		if b >= a {
			t.Errorf("ranks %d-%d run %v times, ranks %d-%d %v", i+1, i+8, b, i-7, i, a)
		}
	}
	// The slope of log count over log rank, by least squares.
	var sx, sy, sxx, sxy float64
	for i, c := range counts {
		x, y := math.Log(float64(i+1)), math.Log(c)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(counts))
	if slope := (n*sxy - sx*sy) / (n*sxx - sx*sx); slope < -1.3 || slope > -0.9 {
		t.Errorf("Zipf slope %.3f, want about -1.1", slope)
	}
}

// TestRetention: of the users who start in the first weeks, a minority
// come back in their second week, fewer in their ninth, and most never
// come back after their first day.
func TestRetention(t *testing.T) {
	tl := midHistory(t)
	var cohort, oneDay, week1, week8 int
	for _, days := range tl.days {
		first := math.MaxInt
		for d := range days {
			first = min(first, d)
		}
		if first == 0 || first > mid.Days-63 { // day 0 mixes in the users from before the period
			continue
		}
		cohort++
		if len(days) == 1 {
			oneDay++
		}
		in := func(from, to int) bool {
			for d := from; d < to; d++ {
				if days[first+d] {
					return true
				}
			}
			return false
		}
		if in(7, 14) {
			week1++
		}
		if in(56, 63) {
			week8++
		}
	}
	if cohort < 200 {
		t.Fatalf("cohort of %d users", cohort)
	}
	w1, w8, once := float64(week1)/float64(cohort), float64(week8)/float64(cohort), float64(oneDay)/float64(cohort)
	t.Logf("cohort %d: one day only %.3f, week 1 %.3f, week 8 %.3f", cohort, once, w1, w8)
	if w1 < 0.2 || w1 > 0.6 {
		t.Errorf("week-1 return share %.3f", w1)
	}
	if w8 >= w1*0.7 || w8 < 0.02 {
		t.Errorf("week-8 return share %.3f, week 1 %.3f", w8, w1)
	}
	if once < 0.35 || once > 0.7 {
		t.Errorf("share of one-day users %.3f", once)
	}
	// Active users per week grow as users arrive, without exploding.
	if len(tl.days) < mid.Users*8/10 {
		t.Errorf("%d of %d users have events", len(tl.days), mid.Users)
	}
}

// TestVersionAdoption: each release's share grows in the weeks after it
// comes out, and the releases are adopted in order.
func TestVersionAdoption(t *testing.T) {
	tl := midHistory(t)
	vs := tl.gen.Versions()
	weeks := len(tl.byWeek)
	share := func(w, v int) float64 {
		var n int
		for _, c := range tl.byWeek[w] {
			n += c
		}
		return float64(tl.byWeek[w][v]) / float64(n)
	}
	mean := make([]float64, weeks)
	for w := range weeks {
		var n, s float64
		for v, c := range tl.byWeek[w] {
			n += float64(c)
			s += float64(v * c)
		}
		mean[w] = s / n
	}
	for w := 1; w < weeks-1; w++ { // the last week may be short
		if mean[w] < mean[w-1]-0.05 {
			t.Errorf("mean release index fell from %.2f in week %d to %.2f", mean[w-1], w-1, mean[w])
		}
	}
	for v := 1; v < len(vs); v++ {
		rw := int(vs[v].Released.Sub(tl.gen.Start()) / (7 * 24 * time.Hour))
		if rw > 0 && share(rw-1, v) != 0 {
			t.Errorf("%s used before its release", vs[v].Name)
		}
		if rw+1 < weeks {
			if a, b := share(rw, v), share(rw+1, v); b <= a {
				t.Errorf("%s: share %.3f in its release week, %.3f the next", vs[v].Name, a, b)
			}
		}
	}
	newest := len(vs) - 1
	if s := share(weeks-1, newest); s < 0.15 {
		t.Errorf("newest release share in the last week %.3f", s)
	}
	if !tl.lastOld.Before(tl.gen.SunsetDay()) {
		t.Errorf("a release before %s used at %v, after %v", synth.MinSupportedVersion, tl.lastOld, tl.gen.SunsetDay())
	}
}

func TestFailures(t *testing.T) {
	tl := midHistory(t)
	rate := func(os, v string) float64 {
		k := [2]string{os, v}
		if tl.runs[k] < 100 {
			t.Fatalf("%d runs of %s on %s", tl.runs[k], v, os)
		}
		return float64(tl.fails[k]) / float64(tl.runs[k])
	}
	bad := rate(synth.BadOS, synth.BadVersion)
	fixed := rate(synth.BadOS, synth.FixVersion)
	linux := rate("linux", synth.BadVersion)
	t.Logf("%s on %s fails %.3f, %s %.3f, on linux %.3f", synth.BadVersion, synth.BadOS, bad, synth.FixVersion, fixed, linux)
	if bad < 3*fixed || bad < 3*linux || bad < 0.2 {
		t.Errorf("bad release fails %.3f, the fix %.3f, linux %.3f", bad, fixed, linux)
	}
	if rate(synth.BadOS, synth.FixVersion) <= rate("linux", synth.FixVersion) {
		t.Errorf("windows fails less than linux")
	}
	var runs, fails int
	for k, n := range tl.runs {
		runs += n
		fails += tl.fails[k]
	}
	if r := float64(fails) / float64(runs); r < 0.02 || r > 0.12 {
		t.Errorf("overall failure rate %.3f", r)
	}
	for _, k := range []string{synth.KindExitError, synth.KindUsage, synth.KindTimeout, synth.KindNetwork, synth.KindUnknown} {
		if tl.kinds[k] == 0 {
			t.Errorf("no %s", k)
		}
	}
	if tl.kinds[synth.KindExitError] <= tl.kinds[synth.KindUsage] || tl.noOutcome != tl.kinds[synth.KindUnknown] {
		t.Errorf("kinds %v, %d without outcome", tl.kinds, tl.noOutcome)
	}
}

func TestDurations(t *testing.T) {
	tl := midHistory(t)
	for _, c := range synth.Commands() {
		d := tl.durations[c.Name]
		if len(d) < 30 {
			continue
		}
		sort.Float64s(d)
		median := d[len(d)/2]
		if median < c.MedianMS/1.6 || median > c.MedianMS*1.6 {
			t.Errorf("%s: median %.0f ms, want about %.0f", c.Name, median, c.MedianMS)
		}
		// Log-normal: the log durations spread by about sigma.
		var s, ss float64
		for _, x := range d {
			l := math.Log(max(x, 1))
			s, ss = s+l, ss+l*l
		}
		n := float64(len(d))
		sd := math.Sqrt(ss/n - (s/n)*(s/n))
		if len(d) > 500 && (sd < c.Sigma*0.7 || sd > c.Sigma*1.4) {
			t.Errorf("%s: log sd %.2f, sigma %.2f", c.Name, sd, c.Sigma)
		}
	}
}

func TestFlags(t *testing.T) {
	tl := midHistory(t)
	runs := float64(tl.types[wire.EventCommandExecuted])
	if w := float64(tl.flags["watch"]) / runs; w == 0 || w > 0.01 {
		t.Errorf("--watch in %.4f of runs", w)
	}
	specs := map[string]synth.FlagSpec{}
	for _, c := range synth.Commands() {
		for _, f := range c.Flags {
			specs[f.Name] = f
		}
	}
	for k, n := range tl.values {
		if !slices.Contains(specs[k[0]].Values, k[1]) {
			t.Errorf("--%s=%s %d times", k[0], k[1], n)
		}
	}
	for _, name := range []string{"auth", "output", "env"} {
		var n int
		for _, v := range specs[name].Values {
			n += tl.values[[2]string{name, v}]
			if tl.values[[2]string{name, v}] == 0 {
				t.Errorf("--%s=%s never set", name, v)
			}
		}
		if n != tl.flags[name] {
			t.Errorf("--%s set %d times, with a value %d", name, tl.flags[name], n)
		}
	}
	if tl.values[[2]string{"auth", "token"}] <= tl.values[[2]string{"auth", "ssh"}] {
		t.Errorf("auth values %v", tl.values)
	}
}

// TestFeaturesAndMethods: each is used only on the releases that have it,
// and the deprecated method fades out.
func TestFeaturesAndMethods(t *testing.T) {
	tl := midHistory(t)
	vs := tl.gen.Versions()
	for _, list := range [][]synth.Named{synth.Features(), synth.Methods()} {
		for _, x := range list {
			var total int
			for v, ver := range vs {
				n := tl.named[[2]string{x.Name, ver.Name}]
				total += n
				if n > 0 && (v < x.From || x.Until != 0 && v >= x.Until) {
					t.Errorf("%s used %d times on %s", x.Name, n, ver.Name)
				}
			}
			if total == 0 {
				t.Errorf("%s never used", x.Name)
			}
		}
	}
	if tl.lastDeprec.IsZero() || !tl.lastDeprec.Before(tl.gen.SunsetDay()) {
		t.Errorf("%s last called at %v, sunset %v", synth.DeprecatedMethod, tl.lastDeprec, tl.gen.SunsetDay())
	}
}

func BenchmarkGenerate(b *testing.B) {
	c := synth.Config{Seed: 1, Users: 5000, Days: 60, Events: 100_000, End: end}
	var n int
	for b.Loop() {
		g, _ := synth.New(c)
		g.Batches(wire.MaxEvents, func(body []byte, events int) error { n += events; return nil })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

// SDKBatches sends each user's events as the SDK's command-line path does:
// every event once, each request from one user, closed by the event that
// makes the batch due (minEvents queued, or the oldest maxAge old), and
// the requests in the order they are sent.
func TestSDKBatches(t *testing.T) {
	const minEvents, maxAge = 20, time.Hour
	want := map[[16]byte][32]byte{} // event id: user id
	g := newGen(t, small)
	var ev wire.Event
	for g.Next(&ev) {
		se, err := synth.ServerEvent(&ev)
		if err != nil {
			t.Fatal(err)
		}
		want[se.EventID] = se.UserID
	}
	seen := map[[16]byte]bool{}
	var lastSent time.Time
	requests, atEnd := 0, false
	err := newGen(t, small).SDKBatches(minEvents, maxAge, func(body []byte, events int) error {
		b, err := decode.Batch(body, end, server.DefaultRetention)
		if err != nil {
			return err
		}
		if len(b.Rejected) != 0 || len(b.Events) != events || events < 1 || events > minEvents {
			t.Fatalf("request %d: %d events decoded of %d, rejected %v", requests, len(b.Events), events, b.Rejected)
		}
		first, last := b.Events[0], b.Events[len(b.Events)-1]
		due := events == minEvents || last.Timestamp.Sub(first.Timestamp) >= maxAge
		if !due {
			atEnd = true // the batches left open at the end of the history
		} else if atEnd {
			t.Fatalf("request %d is due by count or age after the ones left open", requests)
		}
		if due && last.Timestamp.Before(lastSent) {
			t.Fatalf("request %d sent at %v, before the one before it (%v)", requests, last.Timestamp, lastSent)
		}
		if due {
			lastSent = last.Timestamp
		}
		for i, e := range b.Events {
			user, ok := want[e.EventID]
			if !ok || seen[e.EventID] {
				t.Fatalf("request %d: event %x unknown or sent twice", requests, e.EventID)
			}
			seen[e.EventID] = true
			if user != first.UserID {
				t.Fatalf("request %d mixes users", requests)
			}
			if i > 0 && e.Timestamp.Before(b.Events[i-1].Timestamp) {
				t.Fatalf("request %d out of time order", requests)
			}
			// Only the event that made the batch due may be maxAge or
			// more after the first.
			if i < len(b.Events)-1 && e.Timestamp.Sub(first.Timestamp) >= maxAge {
				t.Fatalf("request %d held on to an event past the age that made it due", requests)
			}
		}
		requests++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("%d events sent, want %d", len(seen), len(want))
	}
	if requests*2 > len(want) {
		t.Errorf("%d requests for %d events: batches of fewer than two events on average", requests, len(want))
	}
}
