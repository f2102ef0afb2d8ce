package postgres_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// history is a small generated history whose true answers the tests
// compute in Go, independently of the SQL under test.
type history struct {
	events []server.Event
	flags  [][]string          // per event: the flags set
	values []map[string]string // per event: the collected flag values
	from   time.Time           // first day
	days   int
}

var (
	histVersions = []string{"1.0.0", "1.1.0", "1.2.0-rc.1", "1.2.0", "1.10.0", "dev"}
	histOS       = []string{"linux", "darwin", "windows"}
	histCommands = []string{"build", "deploy", "init", "remote add", "status"}
	histFlags    = []string{"watch", "auth", "output", "v"}
	histAuth     = []string{"token", "oauth", "ssh", "'; DROP TABLE events; --"}
	histKinds    = []string{"exit_error", "usage", "timeout", "unknown"}
	histMethods  = []string{"Client.Do", "Client.DoLegacy", "Open"}
)

// genHistory makes n events over days days from from, by users users.
func genHistory(seed uint64, from time.Time, days, users, n int) *history {
	r := rand.New(rand.NewPCG(seed, 7))
	h := &history{from: from, days: days}
	for i := 0; i < n; i++ {
		day := r.IntN(days)
		at := from.AddDate(0, 0, day).Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
		switch i {
		case 0: // the first instant of the range
			at = from
		case 1: // the last millisecond of the last day
			at = from.AddDate(0, 0, days).Add(-time.Millisecond)
		}
		at = at.Truncate(time.Millisecond)
		u := r.IntN(users)
		e := eventAtUser(at, u)
		e.ServiceName = "cli"
		e.ServiceVersion = histVersions[r.IntN(len(histVersions))]
		e.OS = histOS[u%len(histOS)]
		e.Arch = []string{"amd64", "arm64"}[u%2]
		e.CI = u%5 == 0
		if e.CI {
			e.CIName = "github_actions"
		}
		e.GoVersion = "go1.23.4"
		e.SDKName, e.SDKVersion = "telemetry-kit-go", "0.1.0"
		var flags []string
		values := map[string]string{}
		md := map[string]any{}
		switch k := r.IntN(10); {
		case k < 7:
			e.EventType = "command_executed"
			// Zipf-like: build most, status least.
			e.Name = histCommands[min(len(histCommands)-1, int(r.ExpFloat64()*1.2))]
			ok := r.Float64() > 0.2
			if e.OS == "windows" && e.ServiceVersion == "1.1.0" {
				ok = r.Float64() > 0.7
			}
			if r.IntN(20) == 0 {
				// A run that never returned: outcome unknown.
				kind := "unknown"
				e.ErrorKind = &kind
			} else {
				e.Success = &ok
				d := int64(math.Exp(r.NormFloat64()+5)) + int64(r.IntN(3))
				e.DurationMS = &d
				code := int32(0)
				if !ok {
					code = 1
					kind := histKinds[r.IntN(3)]
					e.ErrorKind = &kind
				}
				e.ExitCode = &code
				md["success"], md["duration_ms"], md["exit_code"] = ok, d, code
			}
			for _, f := range histFlags {
				if r.IntN(4) == 0 || (f == "watch" && r.IntN(10) == 0) {
					flags = append(flags, f)
				}
			}
			if slices.Contains(flags, "auth") && r.IntN(3) > 0 {
				values["auth"] = histAuth[r.IntN(len(histAuth))]
			}
			md["command"], md["flags"] = e.Name, flags
			if len(values) > 0 {
				md["flag_values"] = values
			}
			if e.ErrorKind != nil {
				md["error_kind"] = *e.ErrorKind
			}
			for _, f := range flags {
				fl := server.Flag{Name: f}
				if v, ok := values[f]; ok {
					fl.Value, fl.HasValue = v, true
				}
				e.Flags = append(e.Flags, fl)
			}
		case k < 9:
			e.EventType = "method_called"
			e.Name = histMethods[r.IntN(len(histMethods))]
			if e.Name == "Client.DoLegacy" && day > days/2 {
				e.Name = "Client.Do" // the old method fades out
			}
			md["method"] = e.Name
		default:
			e.EventType = "feature_used"
			e.Name = "cache"
			md["feature"] = e.Name
		}
		e.Metadata, _ = json.Marshal(md)
		h.events = append(h.events, e)
		h.flags = append(h.flags, flags)
		h.values = append(h.values, values)
	}
	return h
}

func eventAtUser(t time.Time, user int) server.Event {
	e := eventAt(t, byte(user))
	e.UserID[1] = byte(user >> 8)
	id, _ := uuid.NewV7()
	copy(e.SessionID[:], id[:])
	e.SessionID[15] = byte(user) // a few sessions per user
	return e
}

// ingestHistory stores h for key in batches, through the store's ingest.
func ingestHistory(t *testing.T, db *postgres.DB, key server.Key, h *history) {
	t.Helper()
	for i := 0; i < len(h.events); i += 500 {
		batch := h.events[i:min(i+500, len(h.events))]
		res, err := db.Ingest(context.Background(), key, batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != len(batch) {
			t.Fatalf("accepted %d of %d", res.Accepted, len(batch))
		}
	}
}

func mustQuery(t *testing.T, db *postgres.DB, project int64, body string) server.Result {
	t.Helper()
	q, err := server.ParseQuery([]byte(body), time.Now())
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	res, err := db.Query(context.Background(), project, q)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return res
}

// group computes, in Go, per key, the events and distinct users of the
// events keep selects.
type tally struct {
	events int64
	users  map[[32]byte]bool
	ok     int
	known  int
	durs   []float64
	last   time.Time
}

func groupBy(h *history, keep func(i int) bool, key func(i int) []string) map[string]*tally {
	out := map[string]*tally{}
	for i, e := range h.events {
		if !keep(i) {
			continue
		}
		for _, k := range keysOf(key(i)) {
			g := out[k]
			if g == nil {
				g = &tally{users: map[[32]byte]bool{}}
				out[k] = g
			}
			g.events++
			g.users[e.UserID] = true
			if e.Success != nil {
				g.known++
				if *e.Success {
					g.ok++
				}
			}
			if e.DurationMS != nil {
				g.durs = append(g.durs, float64(*e.DurationMS))
			}
			if e.Timestamp.After(g.last) {
				g.last = e.Timestamp
			}
		}
	}
	return out
}

// keysOf joins a key's parts; a part "a|b|c" (a run's flags) gives a key
// for each.
func keysOf(parts []string) []string {
	keys := []string{""}
	for _, p := range parts {
		var next []string
		alts := []string{p}
		if strings.HasPrefix(p, "\x00") {
			alts = strings.Split(p[1:], "\x00")
			if p == "\x00" {
				alts = nil
			}
		}
		for _, k := range keys {
			for _, a := range alts {
				next = append(next, k+a+"/")
			}
		}
		keys = next
	}
	return keys
}

func percentile(vals []float64, p float64) float64 {
	s := slices.Clone(vals)
	sort.Float64s(s)
	pos := p * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

func rowKey(r server.Row) string {
	var b strings.Builder
	for _, v := range r.Dimensions {
		switch x := v.(type) {
		case time.Time:
			b.WriteString(x.Format(time.DateOnly))
		case nil:
			b.WriteString("<nil>")
		default:
			fmt.Fprint(&b, x)
		}
		b.WriteString("/")
	}
	return b.String()
}

func inDays(h *history, i int, from, to time.Time) bool {
	ts := h.events[i].Timestamp
	return !ts.Before(from) && ts.Before(to.AddDate(0, 0, 1))
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestQueryAnswersMatchGeneratedHistory(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -39)
	h := genHistory(1, from, 40, 60, 4000)
	key := project(t, db, "answers")
	ingestHistory(t, db, key, h)
	// Another project's events, at the same times, must never show.
	other := project(t, db, "other")
	ingestHistory(t, db, other, genHistory(2, from, 40, 30, 1500))
	// As the hourly maintenance leaves them: the closed days compacted,
	// and their days, weeks and months built into period rollups.
	if _, err := db.CompactRollups(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BuildPeriods(context.Background()); err != nil {
		t.Fatal(err)
	}

	qFrom, qTo := from.AddDate(0, 0, 5), from.AddDate(0, 0, 34)
	rng := fmt.Sprintf(`["%s", "%s"]`, qFrom.Format(time.DateOnly), qTo.Format(time.DateOnly))
	in := func(i int) bool { return inDays(h, i, qFrom, qTo) }

	t.Run("usage per day, filtered by OS and version onward", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events", "users"], "dimensions": ["time:day"],
			"filters": [["is", "os", ["linux", "darwin"]], ["gte", "version", "1.2.0"]], "date_range": `+rng+`}`)
		onward := map[string]bool{"1.2.0": true, "1.10.0": true} // not 1.2.0-rc.1, not "dev"
		want := groupBy(h, func(i int) bool {
			e := h.events[i]
			return in(i) && e.OS != "windows" && onward[e.ServiceVersion]
		}, func(i int) []string { return []string{h.events[i].Timestamp.Format(time.DateOnly)} })
		if len(res.Rows) != 30 {
			t.Fatalf("%d rows, want one per day of the range (30)", len(res.Rows))
		}
		for _, r := range res.Rows {
			w := want[rowKey(r)]
			var we, wu int64
			if w != nil {
				we, wu = w.events, int64(len(w.users))
			}
			if r.Metrics[0] != we || r.Metrics[1] != wu {
				t.Errorf("%s: got %v, want events %d users %d", rowKey(r), r.Metrics, we, wu)
			}
		}
	})

	t.Run("range boundaries are UTC days, both included", func(t *testing.T) {
		day := func(d time.Time) string { return d.Format(time.DateOnly) }
		last := from.AddDate(0, 0, 39)
		for _, c := range []struct {
			from, to time.Time
			want     int64
		}{
			{from, from, 0}, {last, last, 0}, {from.AddDate(0, 0, -3), from.AddDate(0, 0, -1), 0},
		} {
			res := mustQuery(t, db, key.ProjectID, fmt.Sprintf(`{"metrics": ["events"], "date_range": ["%s", "%s"]}`, day(c.from), day(c.to)))
			var want int64
			for i := range h.events {
				if inDays(h, i, c.from, c.to) {
					want++
				}
			}
			if got := res.Rows[0].Metrics[0]; got != want {
				t.Errorf("%s..%s: %v events, want %d", day(c.from), day(c.to), got, want)
			}
			if c.from.Equal(from) && want == 0 {
				t.Error("the event at the range's first instant is missing from the history")
			}
		}
	})

	t.Run("top commands with success, failure and duration percentiles", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events", "users", "success_rate", "failure_rate",
			"duration_p50", "duration_p90", "duration_p99"], "dimensions": ["command"], "filters": [["is", "ci", [false]]],
			"date_range": `+rng+`}`)
		want := groupBy(h, func(i int) bool {
			return in(i) && h.events[i].EventType == "command_executed" && !h.events[i].CI
		}, func(i int) []string { return []string{h.events[i].Name} })
		if len(res.Rows) != len(want) {
			t.Fatalf("%d commands, want %d", len(res.Rows), len(want))
		}
		var prev int64 = math.MaxInt64
		for _, r := range res.Rows {
			w := want[rowKey(r)]
			if w == nil {
				t.Fatalf("unexpected command %s", rowKey(r))
			}
			ev := r.Metrics[0].(int64)
			if ev > prev {
				t.Error("commands are not ordered by runs, descending")
			}
			prev = ev
			rate := float64(w.ok) / float64(w.known)
			if ev != w.events || r.Metrics[1] != int64(len(w.users)) || !near(r.Metrics[2].(float64), rate) ||
				!near(r.Metrics[3].(float64), 1-rate) {
				t.Errorf("%s: got %v, want %d runs, %d users, success %.4f", rowKey(r), r.Metrics[:4], w.events, len(w.users), rate)
			}
			// From the rollup's t-digests, merged from many small ones
			// (a row's durations of one request): estimates, which lie
			// between the exact percentiles 5 points below and above
			// (docs/api.md; 2.9 points at most on this history).
			for j, p := range []float64{0.5, 0.9, 0.99} {
				got := r.Metrics[4+j].(float64)
				lo, hi := percentile(w.durs, max(p-0.05, 0)), percentile(w.durs, min(p+0.05, 1))
				if got < lo || got > hi {
					t.Errorf("%s: p%.0f %v, want within [%v, %v] (exact %v)", rowKey(r), p*100, got, lo, hi,
						percentile(w.durs, p))
				}
			}
		}
	})

	t.Run("error kinds per command", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events"], "dimensions": ["command", "error_kind"],
			"filters": [["is_not", "error_kind", ["timeout"]]], "date_range": `+rng+`}`)
		want := groupBy(h, func(i int) bool {
			e := h.events[i]
			return in(i) && e.EventType == "command_executed" && (e.ErrorKind == nil || *e.ErrorKind != "timeout")
		}, func(i int) []string {
			k := "<nil>"
			if p := h.events[i].ErrorKind; p != nil {
				k = *p
			}
			return []string{h.events[i].Name, k}
		})
		checkCounts(t, res, want)
	})

	t.Run("does anyone use --watch: runs and users per flag", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events", "users"], "dimensions": ["flag"],
			"filters": [["is", "command", ["build"]]], "date_range": `+rng+`}`)
		want := groupBy(h, func(i int) bool {
			return in(i) && h.events[i].Name == "build" && h.events[i].EventType == "command_executed"
		},
			func(i int) []string { return []string{"\x00" + strings.Join(h.flags[i], "\x00")} })
		checkCounts(t, res, want)
		if want["watch/"] == nil {
			t.Fatal("the history has no --watch")
		}
	})

	t.Run("which --auth is most popular: values of a collected flag", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events", "users"], "dimensions": ["flag", "flag_value"],
			"filters": [["is", "flag", ["--auth"]]], "date_range": `+rng+`}`)
		want := groupBy(h, func(i int) bool { return in(i) && slices.Contains(h.flags[i], "auth") },
			func(i int) []string {
				v, ok := h.values[i]["auth"]
				if !ok {
					v = "<nil>"
				}
				return []string{"auth", v}
			})
		checkCounts(t, res, want)
		if want["auth/'; DROP TABLE events; --/"] == nil {
			t.Fatal("the history lacks the SQL-looking value")
		}
	})

	t.Run("runs that set a flag, without grouping by flag", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events"], "filters": [["is", "flag", ["watch"]],
			["is", "flag_value", ["oauth"]]], "date_range": `+rng+`}`)
		var want int64
		for i := range h.events {
			if in(i) && slices.Contains(h.flags[i], "watch") && h.values[i]["auth"] == "oauth" {
				want++
			}
		}
		if got := res.Rows[0].Metrics[0]; got != want {
			t.Errorf("%v runs, want %d", got, want)
		}
	})

	t.Run("methods: runs, users and last used, by version", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["events", "users", "last_seen"], "dimensions": ["method", "version"],
			"date_range": `+rng+`, "order_by": [["method", "asc"], ["version", "asc"]]}`)
		want := groupBy(h, func(i int) bool { return in(i) && h.events[i].EventType == "method_called" },
			func(i int) []string { return []string{h.events[i].Name, h.events[i].ServiceVersion} })
		checkCounts(t, res, want)
		for _, r := range res.Rows {
			if w := want[rowKey(r)]; w != nil && !r.Metrics[2].(time.Time).Equal(w.last) {
				t.Errorf("%s: last used %v, want %v", rowKey(r), r.Metrics[2], w.last)
			}
		}
		if !slices.IsSortedFunc(res.Rows, func(a, b server.Row) int {
			if c := strings.Compare(a.Dimensions[0].(string), b.Dimensions[0].(string)); c != 0 {
				return c
			}
			return strings.Compare(a.Dimensions[1].(string), b.Dimensions[1].(string))
		}) {
			t.Error("rows are not in the asked order")
		}
	})

	t.Run("platforms and CI share", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["users", "events"], "dimensions": ["os", "arch", "ci"], "date_range": `+rng+`}`)
		want := groupBy(h, in, func(i int) []string {
			e := h.events[i]
			return []string{e.OS, e.Arch, fmt.Sprint(e.CI)}
		})
		if len(res.Rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(res.Rows), len(want))
		}
		for _, r := range res.Rows {
			w := want[rowKey(r)]
			if w == nil || r.Metrics[0] != int64(len(w.users)) || r.Metrics[1] != w.events {
				t.Errorf("%s: got %v", rowKey(r), r.Metrics)
			}
		}
	})

	t.Run("errors: failure rate per command, OS and version; Go versions", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["failure_rate", "events"], "dimensions": ["command", "os", "version"],
			"date_range": `+rng+`, "pagination": {"limit": 10000}}`)
		want := groupBy(h, func(i int) bool { return in(i) && h.events[i].EventType == "command_executed" },
			func(i int) []string { e := h.events[i]; return []string{e.Name, e.OS, e.ServiceVersion} })
		if len(res.Rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(res.Rows), len(want))
		}
		for _, r := range res.Rows {
			w := want[rowKey(r)]
			var rate any
			if w.known > 0 {
				rate = 1 - float64(w.ok)/float64(w.known)
			}
			got, _ := r.Metrics[0].(float64)
			if (rate == nil) != (r.Metrics[0] == nil) || (rate != nil && !near(got, rate.(float64))) || r.Metrics[1] != w.events {
				t.Errorf("%s: %v, want failure rate %v over %d runs", rowKey(r), r.Metrics, rate, w.events)
			}
		}
		gv := mustQuery(t, db, key.ProjectID, `{"metrics": ["users"], "dimensions": ["go_version"], "date_range": `+rng+`}`)
		all := groupBy(h, in, func(i int) []string { return []string{h.events[i].GoVersion} })
		if len(gv.Rows) != 1 || gv.Rows[0].Metrics[0] != int64(len(all["go1.23.4/"].users)) {
			t.Errorf("Go versions: %v", gv.Rows)
		}
	})

	t.Run("users against the previous period", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, fmt.Sprintf(`{"metrics": ["users", "events"], "date_range": ["%s", "%s"],
			"include": {"comparison": "previous_period"}}`, from.AddDate(0, 0, 20).Format(time.DateOnly), from.AddDate(0, 0, 39).Format(time.DateOnly)))
		cur := groupBy(h, func(i int) bool { return inDays(h, i, from.AddDate(0, 0, 20), from.AddDate(0, 0, 39)) },
			func(int) []string { return nil })[""]
		prev := groupBy(h, func(i int) bool { return inDays(h, i, from, from.AddDate(0, 0, 19)) },
			func(int) []string { return nil })[""]
		r := res.Rows[0]
		if r.Metrics[0] != int64(len(cur.users)) || r.Previous[0] != int64(len(prev.users)) || r.Previous[1] != prev.events {
			t.Errorf("got %v against %v, want users %d against %d (events %d)", r.Metrics, r.Previous, len(cur.users), len(prev.users), prev.events)
		}
	})

	t.Run("empty range: zero days, no rates", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, fmt.Sprintf(`{"metrics": ["events", "success_rate"], "dimensions": ["time:day"], "date_range": ["%s", "%s"]}`,
			from.AddDate(0, 0, -10).Format(time.DateOnly), from.AddDate(0, 0, -8).Format(time.DateOnly)))
		if len(res.Rows) != 3 {
			t.Fatalf("%d rows, want 3 days", len(res.Rows))
		}
		for _, r := range res.Rows {
			if r.Metrics[0] != int64(0) || r.Metrics[1] != nil {
				t.Errorf("%s: %v, want 0 events and no rate", rowKey(r), r.Metrics)
			}
		}
	})

	t.Run("pages and total rows", func(t *testing.T) {
		all := mustQuery(t, db, key.ProjectID, `{"metrics": ["events"], "dimensions": ["command", "version"], "date_range": `+rng+`}`)
		var paged []server.Row
		var total int64
		for off := 0; ; off += 7 {
			res := mustQuery(t, db, key.ProjectID, fmt.Sprintf(`{"metrics": ["events"], "dimensions": ["command", "version"],
				"date_range": %s, "pagination": {"limit": 7, "offset": %d}, "include": {"total_rows": true}}`, rng, off))
			if len(res.Rows) == 0 {
				break
			}
			total = res.TotalRows
			paged = append(paged, res.Rows...)
		}
		if len(paged) != len(all.Rows) || total != int64(len(all.Rows)) {
			t.Fatalf("pages gave %d rows (total_rows %d), one query %d", len(paged), total, len(all.Rows))
		}
		for i := range paged {
			if rowKey(paged[i]) != rowKey(all.Rows[i]) {
				t.Fatalf("row %d: %s in pages, %s at once", i, rowKey(paged[i]), rowKey(all.Rows[i]))
			}
		}
	})

	t.Run("versions as shares of each day's users", func(t *testing.T) {
		res := mustQuery(t, db, key.ProjectID, `{"metrics": ["users_share", "events_share", "users"], "dimensions": ["time:day", "version"],
			"filters": [["is", "ci", [false]]], "date_range": `+rng+`}`)
		keep := func(i int) bool { return in(i) && !h.events[i].CI }
		per := groupBy(h, keep, func(i int) []string {
			return []string{h.events[i].Timestamp.Format(time.DateOnly), h.events[i].ServiceVersion}
		})
		day := groupBy(h, keep, func(i int) []string { return []string{h.events[i].Timestamp.Format(time.DateOnly)} })
		if len(res.Rows) != len(per) {
			t.Fatalf("%d rows, want %d", len(res.Rows), len(per))
		}
		for _, r := range res.Rows {
			w, d := per[rowKey(r)], day[r.Dimensions[0].(time.Time).Format(time.DateOnly)+"/"]
			us, es := float64(len(w.users))/float64(len(d.users)), float64(w.events)/float64(d.events)
			if !near(r.Metrics[0].(float64), us) || !near(r.Metrics[1].(float64), es) || r.Metrics[2] != int64(len(w.users)) {
				t.Errorf("%s: %v, want shares %.4f %.4f", rowKey(r), r.Metrics, us, es)
			}
		}
	})

	t.Run("versions: first seen and days until half the users had it or later", func(t *testing.T) {
		keys := map[string][4]int{"1.0.0": {1, 0, 0, 1}, "1.1.0": {1, 1, 0, 1}, "1.2.0-rc.1": {1, 2, 0, 0},
			"1.2.0": {1, 2, 0, 1}, "1.10.0": {1, 10, 0, 1}}
		less := func(a, b [4]int) bool { return slices.Compare(a[:], b[:]) < 0 }
		vq := server.VersionsQuery{From: qFrom, To: qTo, Filters: []server.Filter{{Op: server.OpIs, Dimension: server.DimOS, Values: []any{"linux"}}}}
		got, err := db.Versions(context.Background(), key.ProjectID, vq)
		if err != nil {
			t.Fatal(err)
		}
		// The same from the events (a filter on the CI's name, which the
		// rollup lacks, that keeps every event), as the sketches answer it.
		vq2 := vq
		vq2.Filters = append(slices.Clone(vq.Filters), server.Filter{Op: server.OpIsNot, Dimension: server.DimCIName, Values: []any{"no such CI"}})
		fromEvents, err := db.Versions(context.Background(), key.ProjectID, vq2)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", fromEvents) != fmt.Sprintf("%+v", got) {
			t.Errorf("from the sketches:\n%+v\nfrom the events:\n%+v", got, fromEvents)
		}
		// Per day: each linux user's newest semantic version (none for "dev" only).
		type uk struct {
			day  string
			user [32]byte
		}
		newest := map[uk]*[4]int{}
		dayUsers := map[string]int{}
		first := map[string]time.Time{}
		for i, e := range h.events {
			// The first day is the version's, whatever the filters.
			if f, ok := first[e.ServiceVersion]; !ok || e.Timestamp.Before(f) {
				first[e.ServiceVersion] = e.Timestamp
			}
			if e.OS != "linux" {
				continue
			}
			if !in(i) {
				continue
			}
			k := uk{e.Timestamp.Format(time.DateOnly), e.UserID}
			if _, seen := newest[k]; !seen {
				newest[k] = nil
				dayUsers[k.day]++
			}
			if vk, ok := keys[e.ServiceVersion]; ok && (newest[k] == nil || less(*newest[k], vk)) {
				newest[k] = &vk
			}
		}
		want := groupBy(h, func(i int) bool { return in(i) && h.events[i].OS == "linux" },
			func(i int) []string { return []string{h.events[i].ServiceVersion} })
		if len(got) != len(want) {
			t.Fatalf("%d versions, want %d", len(got), len(want))
		}
		if got[0].Version != "1.10.0" || got[len(got)-1].Version != "dev" {
			t.Errorf("order: %s … %s, want newest (1.10.0) first and non-semantic (dev) last", got[0].Version, got[len(got)-1].Version)
		}
		reached := 0
		for _, v := range got {
			if v.HalfReached != nil {
				reached++
			}
		}
		if reached == 0 || reached == len(got) {
			t.Errorf("%d of %d versions reached half: the history does not tell the cases apart", reached, len(got))
		}
		for _, v := range got {
			w := want[v.Version+"/"]
			if v.Users != int64(len(w.users)) || v.Events != w.events || !v.FirstSeen.Equal(first[v.Version].Truncate(24*time.Hour)) {
				t.Errorf("%s: %+v, want users %d events %d first %v", v.Version, v, len(w.users), w.events, first[v.Version])
			}
			var half *time.Time
			if vk, ok := keys[v.Version]; ok {
				start := v.FirstSeen
				for d := qFrom; !d.After(qTo); d = d.AddDate(0, 0, 1) {
					if d.Before(start) {
						continue
					}
					n := 0
					for k, nv := range newest {
						if k.day == d.Format(time.DateOnly) && nv != nil && !less(*nv, vk) {
							n++
						}
					}
					if dayUsers[d.Format(time.DateOnly)] > 0 && 2*n >= dayUsers[d.Format(time.DateOnly)] {
						dd := d
						half = &dd
						break
					}
				}
			}
			if (half == nil) != (v.HalfReached == nil) || (half != nil && !half.Equal(*v.HalfReached)) {
				t.Errorf("%s: half reached %v, want %v", v.Version, v.HalfReached, half)
			}
		}
	})

	t.Run("the rollup answers as the events do", func(t *testing.T) {
		// The questions with no event type, name, outcome or error kind
		// come from the smallest rollup.
		platformWanted := map[string]bool{}
		for _, body := range []string{
			`{"metrics": ["events", "users", "success_rate"], "date_range": ` + rng + `, "include": {"comparison": "previous_period"}}`,
			`{"metrics": ["events", "users"], "dimensions": ["time:day"], "date_range": ` + rng + `, "filters": [["is", "os", ["linux", "darwin"]], ["gte", "version", "1.2.0"], ["is", "ci", [false]]]}`,
			`{"metrics": ["users", "users_share"], "dimensions": ["time:day", "version"], "date_range": ` + rng + `}`,
			`{"metrics": ["users", "events"], "dimensions": ["os", "arch", "ci"], "date_range": ` + rng + `}`,
			`{"metrics": ["users", "events"], "dimensions": ["go_version"], "date_range": ` + rng + `, "filters": [["is", "ci", [false]]]}`,
			`{"metrics": ["failure_rate", "duration_avg", "events_share"], "dimensions": ["time:week", "os"], "date_range": ` + rng + `}`,
		} {
			platformWanted[body] = true
		}
		for _, body := range []string{
			`{"metrics": ["failure_rate", "duration_avg", "events_share"], "dimensions": ["time:week", "os"], "date_range": ` + rng + `}`,
			`{"metrics": ["events", "success_rate", "failure_rate", "duration_avg"], "dimensions": ["time:day", "command"], "date_range": ` + rng + `}`,
			`{"metrics": ["events", "failure_rate"], "dimensions": ["command", "os", "version", "error_kind"], "date_range": ` + rng + `,
			  "filters": [["is", "ci", [false]], ["gte", "version", "1.1.0"], ["is_not", "os", ["windows"]]], "pagination": {"limit": 10000}}`,
			`{"metrics": ["events", "events_share"], "dimensions": ["time:week", "event_type", "arch"], "date_range": ` + rng + `}`,
			`{"metrics": ["events"], "dimensions": ["time:month", "success"], "date_range": ` + rng + `, "include": {"comparison": "previous_period"}}`,
			`{"metrics": ["events"], "dimensions": ["method"], "date_range": ` + rng + `, "filters": [["contains", "method", ["legacy"]]]}`,
			`{"metrics": ["events", "success_rate"], "date_range": ` + rng + `, "filters": [["is", "command", ["build", "deploy"]], ["lt", "version", "1.2.0"]]}`,
			// Users, from the rows' sketches.
			`{"metrics": ["events", "users", "success_rate"], "date_range": ` + rng + `, "include": {"comparison": "previous_period"}}`,
			`{"metrics": ["events", "users"], "dimensions": ["time:day"], "date_range": ` + rng + `, "filters": [["is", "os", ["linux", "darwin"]], ["gte", "version", "1.2.0"], ["is", "ci", [false]]]}`,
			`{"metrics": ["users", "users_share"], "dimensions": ["time:day", "version"], "date_range": ` + rng + `}`,
			`{"metrics": ["users", "events"], "dimensions": ["os", "arch", "ci"], "date_range": ` + rng + `}`,
			`{"metrics": ["events", "users", "failure_rate"], "dimensions": ["command"], "date_range": ` + rng + `, "pagination": {"limit": 10}}`,
			`{"metrics": ["events", "users"], "dimensions": ["time:week", "feature"], "date_range": ` + rng + `}`,
			// Go versions.
			`{"metrics": ["users", "events"], "dimensions": ["go_version"], "date_range": ` + rng + `, "filters": [["is", "ci", [false]]]}`,
			// First and last seen ("when was the old method last called?").
			`{"metrics": ["events", "first_seen", "last_seen"], "dimensions": ["method", "version"], "date_range": ` + rng + `}`,
			// Flags, from daily_flag_counts.
			`{"metrics": ["events", "users"], "dimensions": ["flag"], "date_range": ` + rng + `, "filters": [["is", "command", ["build"]]]}`,
			`{"metrics": ["events", "users", "users_share"], "dimensions": ["flag", "flag_value"], "date_range": ` + rng + `, "filters": [["is", "flag", ["auth"]]]}`,
			`{"metrics": ["events", "users"], "dimensions": ["time:week", "command", "flag"], "date_range": ` + rng + `, "filters": [["gte", "version", "1.1.0"]]}`,
			`{"metrics": ["events", "users"], "dimensions": ["flag", "os"], "date_range": ` + rng + `, "filters": [["is", "os", ["linux", "darwin"]], ["is", "ci", [false]], ["is", "command", ["build"]]]}`,
		} {
			q, err := server.ParseQuery([]byte(body), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !postgres.UsesRollup(q) {
				t.Fatalf("%.80s: answered from the events, want the rollup", body)
			}
			if platformWanted[body] && postgres.SourceOf(q) != "daily_platform_counts" {
				t.Errorf("%.80s: answered from %s, want daily_platform_counts", body, postgres.SourceOf(q))
			}
			got, err := db.Query(context.Background(), key.ProjectID, q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.QueryEvents(context.Background(), key.ProjectID, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Rows) == 0 || len(got.Rows) != len(want.Rows) {
				t.Fatalf("%.80s: %d rows from the rollup, %d from the events", body, len(got.Rows), len(want.Rows))
			}
			for i := range got.Rows {
				g, w := got.Rows[i], want.Rows[i]
				if rowKey(g) != rowKey(w) || !sameValues(g.Metrics, w.Metrics) || !sameValues(g.Previous, w.Previous) {
					t.Fatalf("%.80s: row %d\nrollup %s %v %v\nevents %s %v %v", body, i, rowKey(g), g.Metrics, g.Previous, rowKey(w), w.Metrics, w.Previous)
				}
			}
		}
		for _, body := range []string{
			`{"metrics": ["sessions"], "date_range": ` + rng + `}`,
			`{"metrics": ["events"], "dimensions": ["command"], "date_range": ` + rng + `, "filters": [["is", "flag", ["watch"]]]}`,
			`{"metrics": ["events"], "dimensions": ["flag"], "date_range": ` + rng + `, "filters": [["is", "go_version", ["go1.23.4"]]]}`,
			`{"metrics": ["events"], "dimensions": ["exit_code"], "date_range": ` + rng + `}`,
			`{"metrics": ["events"], "dimensions": ["ci_name"], "date_range": ` + rng + `}`,
		} {
			if q, _ := server.ParseQuery([]byte(body), time.Now()); postgres.UsesRollup(q) {
				t.Errorf("%s: answered from the rollup, which cannot", body)
			}
		}
	})

	t.Run("another time zone on the connection changes nothing", func(t *testing.T) {
		// The days are UTC days whatever the session's TimeZone, ahead of
		// UTC or behind it.
		for _, zone := range []string{"Pacific/Kiritimati", "Pacific/Pago_Pago"} {
			db2, err := postgres.Open(context.Background(), postgres.Config{URL: dbURLOf(t, db) + "&timezone=" + zone})
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			for _, body := range []string{
				`{"metrics": ["events", "users"], "dimensions": ["time:week", "os"], "date_range": ` + rng + `}`,
				`{"metrics": ["events", "failure_rate"], "dimensions": ["time:day", "os"], "date_range": ` + rng + `}`, // the rollup
			} {
				a, b := mustQuery(t, db, key.ProjectID, body), mustQuery(t, db2, key.ProjectID, body)
				if fmt.Sprint(a.Rows) != fmt.Sprint(b.Rows) {
					t.Errorf("%s session: %v\nUTC session: %v", zone, b.Rows, a.Rows)
				}
			}
		}
	})
}

func dbURLOf(t *testing.T, db *postgres.DB) string {
	t.Helper()
	return db.Pool().Config().ConnString()
}

// checkCounts compares events and, when asked, users per row with want,
// both ways.
func checkCounts(t *testing.T, res server.Result, want map[string]*tally) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range res.Rows {
		k := rowKey(r)
		seen[k] = true
		w := want[k]
		if w == nil {
			t.Errorf("unexpected row %s: %v", k, r.Metrics)
			continue
		}
		if r.Metrics[0] != w.events {
			t.Errorf("%s: %v events, want %d", k, r.Metrics[0], w.events)
		}
		if len(r.Metrics) > 1 {
			if u, ok := r.Metrics[1].(int64); ok && u != int64(len(w.users)) {
				t.Errorf("%s: %d users, want %d", k, u, len(w.users))
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("missing row %s", k)
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	db := openMaintained(t, postgres.Config{URL: pgtest.New(t), QueryTimeout: time.Millisecond})
	key := project(t, db, "slow")
	ingestHistory(t, db, key, genHistory(3, time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -9), 10, 50, 3000))
	q, err := server.ParseQuery([]byte(`{"metrics": ["users", "duration_p99"], "dimensions": ["flag", "flag_value", "time:day"], "date_range": "30d"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Query(context.Background(), key.ProjectID, q)
	var se *server.Error
	if !asError(err, &se) || se.Kind != server.KindUnavailable || !strings.Contains(se.Message, "took longer") {
		t.Fatalf("a query over the statement timeout: %v, want a 503 saying it took too long", err)
	}
}

// Every statement of the query API is planned for its own parameters,
// never with a generic plan kept after five runs of a prepared statement
// (which read whole rollup tables), and under the statement timeout.
func TestQueriesArePlannedForTheirParameters(t *testing.T) {
	db := open(t, postgres.Config{QueryTimeout: 1234 * time.Millisecond})
	for name, want := range map[string]string{"plan_cache_mode": "force_custom_plan", "statement_timeout": "1234ms"} {
		if got, err := db.ReadOnlySetting(context.Background(), name); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, err, want)
		}
	}
}

func TestExportStreamsAndResumes(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -9)
	h := genHistory(4, from, 10, 40, 4700) // more than two pages
	key := project(t, db, "export")
	ingestHistory(t, db, key, h)
	ingestHistory(t, db, project(t, db, "export-other"), genHistory(5, from, 10, 40, 300))
	lo, hi := from.AddDate(0, 0, 1), from.AddDate(0, 0, 9) // [lo, hi)
	var want []string
	for _, e := range h.events {
		if !e.Timestamp.Before(lo) && e.Timestamp.Before(hi) {
			want = append(want, e.Timestamp.Format(time.RFC3339Nano)+uuid.UUID(e.EventID).String())
		}
	}
	sort.Strings(want)
	export := func(after [16]byte, stopAt int) ([]string, [16]byte) {
		var got []string
		var last [16]byte
		err := db.Export(context.Background(), key.ProjectID, lo, hi, after, func(e *server.ExportedEvent) error {
			if len(got) == stopAt {
				return errStop
			}
			if e.ServiceName != "cli" || e.ReceivedAt.IsZero() || len(e.Metadata) == 0 {
				t.Fatalf("incomplete event %+v", e)
			}
			got = append(got, e.Timestamp.Format(time.RFC3339Nano)+uuid.UUID(e.EventID).String())
			last = e.EventID
			return nil
		})
		if err != nil && err != errStop {
			t.Fatal(err)
		}
		return got, last
	}
	all, _ := export([16]byte{}, -1)
	if !slices.Equal(all, want) {
		t.Fatalf("export has %d events, want %d in (timestamp, event_id) order", len(all), len(want))
	}
	// Stop in the middle of the second page, then resume after the last
	// event received.
	head, last := export([16]byte{}, 2345)
	tail, _ := export(last, -1)
	if got := append(head, tail...); !slices.Equal(got, want) {
		t.Fatalf("resumed export: %d + %d events, want %d, exactly once each", len(head), len(tail), len(want))
	}
	// A cursor of another project is refused.
	otherID := h.events[0].EventID
	otherID[15] ^= 0xff
	err := db.Export(context.Background(), key.ProjectID, lo, hi, otherID, func(*server.ExportedEvent) error { return nil })
	var se *server.Error
	if !asError(err, &se) || se.Kind != server.KindBadRequest {
		t.Fatalf("unknown cursor: %v, want a 400", err)
	}
}

// The export hands each page to its callback once the page's transaction
// has ended: while a client reads slowly, the export holds no connection
// of the pool that ingest and the queries share, and no snapshot.
func TestExportWritesOutsideTransactions(t *testing.T) {
	db := openMaintained(t, postgres.Config{MaxConns: 1})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -9)
	key := project(t, db, "export")
	ingestHistory(t, db, key, genHistory(6, from, 10, 40, 4100)) // three pages
	n := 0
	err := db.Export(context.Background(), key.ProjectID, from, today.AddDate(0, 0, 1), [16]byte{}, func(*server.ExportedEvent) error {
		n++
		if held := db.Pool().Stat().AcquiredConns(); held != 0 {
			return fmt.Errorf("event %d written with %d database connections held", n, held)
		}
		if n%2000 == 1 {
			// With a pool of one connection, a query waits for the
			// export's unless the export holds none.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			q, _ := server.ParseQuery([]byte(`{"metrics": ["events"], "date_range": "30d"}`), time.Now())
			if _, err := db.Query(ctx, key.ProjectID, q); err != nil {
				return fmt.Errorf("a query during the export: %w", err)
			}
		}
		return nil
	})
	if err != nil || n != 4100 {
		t.Fatalf("export: %d events, %v", n, err)
	}
}

var errStop = errors.New("stop")

func asError(err error, target **server.Error) bool { return errors.As(err, target) }

func TestQualityCountsWhatWasFolded(t *testing.T) {
	db := openMaintained(t, postgres.Config{Caps: postgres.Caps{Versions: 1}})
	key := project(t, db, "quality")
	now := time.Now().UTC()
	evs := []server.Event{command(now, "v1", "build"), command(now, "v2", "build"), command(now, "v3", "build")}
	if _, err := db.Ingest(context.Background(), key, evs, 5); err != nil {
		t.Fatal(err)
	}
	if err := db.CountRejections(context.Background(), key.ProjectID, map[string]int64{"timestamp_too_old": 2}); err != nil {
		t.Fatal(err)
	}
	today := now.Truncate(24 * time.Hour)
	days, err := db.Quality(context.Background(), key.ProjectID, server.QualityQuery{From: today.AddDate(0, 0, -1), To: today})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 2 || days[0].Dropped != 0 || len(days[0].Folded) != 0 {
		t.Fatalf("yesterday: %+v", days)
	}
	d := days[1]
	if d.Dropped != 5 || d.Folded["version"] != 2 || d.Rejected["timestamp_too_old"] != 2 {
		t.Fatalf("today: %+v, want 5 dropped, 2 folded versions, 2 rejected", d)
	}
}

// sameValues compares metric values, floats to rounding.
func sameValues(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, oka := a[i].(float64)
		fb, okb := b[i].(float64)
		if oka && okb {
			if !near(fa, fb) {
				return false
			}
			continue
		}
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A version comparison over the events matches every stored version, also
// those the rollup's caps folded.
func TestVersionFilterIgnoresFolding(t *testing.T) {
	db := openMaintained(t, postgres.Config{Caps: postgres.Caps{Versions: 1}})
	key := project(t, db, "versions-folded")
	now := time.Now().UTC()
	evs := []server.Event{command(now, "1.0.0", "build"), command(now, "1.1.0", "build"), command(now, "2.0.0", "build")}
	if res, err := db.Ingest(context.Background(), key, evs, 0); err != nil || res.Folded["version"] != 2 {
		t.Fatalf("%+v %v, want 2 versions folded", res, err)
	}
	res := mustQuery(t, db, key.ProjectID, `{"metrics": ["sessions", "events"], "date_range": "day", "filters": [["gte", "version", "1.1.0"]]}`)
	if res.Rows[0].Metrics[1] != int64(2) {
		t.Errorf("from 1.1.0 onward: %v events, want 2", res.Rows[0].Metrics[1])
	}
	vs, err := db.Versions(context.Background(), key.ProjectID, server.VersionsQuery{From: now.Truncate(24 * time.Hour), To: now.Truncate(24 * time.Hour)})
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions: %+v %v, want all 3", vs, err)
	}
}

// Users past a sketch's exact range are estimated closely, and a user
// active on several days, in several rows or in several requests counts
// once.
func TestSketchUsersMerge(t *testing.T) {
	db := openMaintained(t, postgres.Config{})
	key := project(t, db, "sketches")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := today.AddDate(0, 0, -1)
	// Users 0–1499 yesterday, 500–1999 today: 2,000 users, 1,000 of them on
	// both days; each user's event in a request of 100, the requests sent
	// twice over.
	var evs []server.Event
	add := func(at time.Time, from, to int) {
		for u := from; u < to; u++ {
			e := command(at.Add(time.Duration(u)*time.Second), "1.0.0", "build", "watch")
			binary.BigEndian.PutUint32(e.UserID[:], uint32(u))
			evs = append(evs, e)
		}
	}
	add(yesterday, 0, 1500)
	add(today, 500, 2000)
	for round := 0; round < 2; round++ {
		for i := 0; i < len(evs); i += 100 {
			if _, err := db.Ingest(context.Background(), key, evs[i:i+100], 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	within := func(what string, got any, want float64) {
		t.Helper()
		n, _ := got.(int64)
		if math.Abs(float64(n)-want) > 0.05*want {
			t.Errorf("%s: %v users, want %.0f ± 5%%", what, got, want)
		}
	}
	rng := fmt.Sprintf(`["%s", "%s"]`, yesterday.Format(time.DateOnly), today.Format(time.DateOnly))
	res := mustQuery(t, db, key.ProjectID, `{"metrics": ["users", "events"], "date_range": `+rng+`}`)
	within("both days", res.Rows[0].Metrics[0], 2000)
	if res.Rows[0].Metrics[1] != int64(3000) {
		t.Errorf("%v events, want 3000 (the repeated requests stored nothing)", res.Rows[0].Metrics[1])
	}
	res = mustQuery(t, db, key.ProjectID, `{"metrics": ["users"], "dimensions": ["time:day"], "date_range": `+rng+`}`)
	within("yesterday", res.Rows[0].Metrics[0], 1500)
	within("today", res.Rows[1].Metrics[0], 1500)
	res = mustQuery(t, db, key.ProjectID, `{"metrics": ["users"], "dimensions": ["flag"], "date_range": `+rng+`}`)
	within("--watch", res.Rows[0].Metrics[0], 2000)
}
