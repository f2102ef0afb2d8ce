// Command clipath measures what telemetry adds to a command-line tool's run:
// the median wall time of a cobra tool that links net/http anyway
// (bench/httpcli: a `fetch` subcommand calls http.Get) running its `build`
// subcommand, instrumented with the SDK and an endpoint configured, against
// the same tool without the SDK, in interleaved runs:
//
//   - recording one event (target ≤ 1.05×, ≤ 1.10× with CGO_ENABLED=0);
//   - with DO_NOT_TRACK=1 (target ≤ 1.02×, ≤ 1.05× with CGO_ENABLED=0).
//
// It also reports, without a target, the trivial cobra command that links no
// net/http (bench/trivial) with and without one recorded event, the binaries'
// sizes, and, with -thirdparty, a real cobra tool (cobra-cli v1.3.0, built
// from its module) before and after the one-line change.
//
// Two more rows frame the targets' rows. The plain tool again, through
// copies of its own, is the control: its ratio to the plain tool is what
// identical binaries differ by in the same run. The tool linking the SDK
// without starting it (bench/httpcli/linked) shows what the SDK costs a
// run before any of its code runs: a larger binary and its dependencies'
// package initializers. Each ratio is given twice: of the medians, as the
// targets are defined, and paired, the median of each round's own ratio.
//
// Each binary is installed as -copies copies, run in turn, so that where
// one copy's pages happen to land in the page cache does not move its
// figures.
//
// Run it from the bench module: go run ./cmd/clipath [-runs 61] [-copies 3] [-cgo 0]
package main

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/telemetry-kit/telemetry-kit/bench"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func main() {
	runs := flag.Int("runs", 61, "interleaved runs of each binary")
	cgo := flag.String("cgo", "", "CGO_ENABLED for building the binaries (empty: the go command's default)")
	third := flag.Bool("thirdparty", false, "also measure cobra-cli v1.3.0 before and after the one-line change")
	copies := flag.Int("copies", 3, "installed copies of each binary, run in turn")
	flag.Parse()
	if *runs < 1 || *copies < 1 {
		fmt.Fprintln(os.Stderr, "clipath: -runs and -copies must be at least 1")
		os.Exit(2)
	}
	if err := run(*runs, *copies, *cgo, *third); err != nil {
		fmt.Fprintln(os.Stderr, "clipath:", err)
		os.Exit(1)
	}
}

// collector is a stand-in collection server: it acknowledges every event.
func collector(received *atomic.Int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == wire.ContentEncoding {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
				return
			}
			body = zr
		}
		var b wire.Batch
		if err := json.NewDecoder(body).Decode(&b); err != nil {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		n := len(b.Events)
		received.Add(int64(n))
		w.Header().Set("Content-Type", wire.ContentType)
		_ = json.NewEncoder(w).Encode(wire.Response{Accepted: n, Rejected: []wire.Rejection{}})
	}))
}

func run(runs, copies int, cgo string, third bool) error {
	dir, err := os.MkdirTemp("", "tk-clipath")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var received atomic.Int64
	srv := collector(&received)
	defer srv.Close()

	paths := map[string]string{}
	others := map[string][]string{}
	for name, pkg := range map[string]string{
		"httpcli-plain": "./httpcli/plain", "httpcli-tracked": "./httpcli/tracked", "httpcli-linked": "./httpcli/linked",
		"trivial-plain": "./trivial/plain", "trivial-tracked": "./trivial/tracked",
	} {
		if paths[name], err = bench.Build(dir, name, pkg, cgo); err != nil {
			return err
		}
		n := copies
		if name == "httpcli-plain" {
			n = 2 * copies // a second set for the control row
		}
		if others[name], err = bench.InstallCopies(paths[name], n); err != nil {
			return err
		}
	}
	// The control: the plain tool again, through copies of its own. Its
	// ratio to the plain tool is what identical binaries differ by in this
	// run, the noise floor of the others.
	plainCopies := others["httpcli-plain"]
	others["httpcli-plain"] = plainCopies[:copies-1]
	paths["httpcli-plain-again"], others["httpcli-plain-again"] = plainCopies[copies-1], plainCopies[copies:]
	home := filepath.Join(dir, "home")
	env := userEnv(home, "HTTPCLI_ENDPOINT="+srv.URL)
	dnt := append(slices.Clone(env), "DO_NOT_TRACK=1")
	buildArgs := []string{"build", "--production", "web"}
	bin := func(name, binary string, args, env []string) bench.Run {
		return bench.Run{Name: name, Path: paths[binary], Copies: others[binary], Args: args, Env: env}
	}
	rows := []struct {
		run    bench.Run
		ref    int    // the row it is compared with; -1: none
		target string // the target, if any
		note   string
	}{
		{run: bin("httpcli without the SDK", "httpcli-plain", buildArgs, env), ref: -1},
		{run: bin("httpcli without the SDK, other copies", "httpcli-plain-again", buildArgs, env), ref: 0, note: "(control: the noise floor)"},
		{run: bin("httpcli linking the SDK, not starting it", "httpcli-linked", buildArgs, env), ref: 0, note: "(what linking it costs)"},
		{run: bin("httpcli recording one event", "httpcli-tracked", buildArgs, env), ref: 0, target: "1.05"},
		{run: bin("httpcli with DO_NOT_TRACK=1", "httpcli-tracked", buildArgs, dnt), ref: 0, target: "1.02"},
		{run: bin("trivial cobra command (no net/http)", "trivial-plain", nil, env), ref: -1},
		{run: bin("trivial command recording one event", "trivial-tracked", nil, env), ref: 5},
	}
	if cgo == "0" {
		rows[3].target, rows[4].target = "1.10", "1.05"
	}
	bins := make([]bench.Run, len(rows))
	for i, r := range rows {
		bins[i] = r.run
	}
	times, err := bench.Interleave(bins, runs)
	if err != nil {
		return err
	}
	fmt.Printf("## The CLI path: median wall time of %d interleaved runs, %d copies of each binary (CGO_ENABLED=%q)\n", runs, copies, cgo)
	fmt.Println("ratio: of the medians (the target's measure); paired: the median of the rounds' own ratios")
	for i, r := range rows {
		line := fmt.Sprintf("%-42s %9.3fms", r.run.Name, float64(bench.Median(times[i]))/1e6)
		if r.ref >= 0 {
			line += fmt.Sprintf("  %.3fx  paired %.3fx", float64(bench.Median(times[i]))/float64(bench.Median(times[r.ref])),
				bench.PairedRatio(times[i], times[r.ref]))
			if r.target != "" {
				line += " (target <= " + r.target + "x)"
			}
			if r.note != "" {
				line += " " + r.note
			}
		}
		fmt.Println(line)
	}
	fmt.Printf("events the collector received: %d\n", received.Load())
	fmt.Println("\n## Binary sizes")
	for _, pair := range [][2]string{{"httpcli-plain", "httpcli-tracked"}, {"trivial-plain", "trivial-tracked"}} {
		a, b := size(paths[pair[0]]), size(paths[pair[1]])
		fmt.Printf("%-16s %6.2f MiB -> %6.2f MiB (+%.2f MiB, %.2fx)\n", strings.TrimSuffix(pair[0], "-plain"),
			float64(a)/(1<<20), float64(b)/(1<<20), float64(b-a)/(1<<20), float64(b)/float64(a))
	}
	if third {
		return thirdParty(dir, runs, copies, cgo, srv.URL)
	}
	return nil
}

// userEnv is the environment of a user of the tool: a home of its own,
// telemetry variables unset.
func userEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "DO_NOT_TRACK" || k == "CI" || strings.HasPrefix(k, "XDG_") || strings.HasSuffix(k, "_TELEMETRY") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	return append(env, extra...)
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
