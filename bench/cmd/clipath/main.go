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
// Run it from the bench module: go run ./cmd/clipath [-runs 61] [-cgo 0]
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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/telemetry-kit/telemetry-kit/wire"
)

func main() {
	runs := flag.Int("runs", 61, "interleaved runs of each binary")
	cgo := flag.String("cgo", "", "CGO_ENABLED for building the binaries (empty: the go command's default)")
	third := flag.Bool("thirdparty", false, "also measure cobra-cli v1.3.0 before and after the one-line change")
	flag.Parse()
	if err := run(*runs, *cgo, *third); err != nil {
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

type binary struct {
	name string
	path string
	args []string
	env  []string
}

func build(dir, name, pkg, cgo string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = os.Environ()
	if cgo != "" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED="+cgo)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

func run(runs int, cgo string, third bool) error {
	dir, err := os.MkdirTemp("", "tk-clipath")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var received atomic.Int64
	srv := collector(&received)
	defer srv.Close()

	paths := map[string]string{}
	for name, pkg := range map[string]string{
		"httpcli-plain": "./httpcli/plain", "httpcli-tracked": "./httpcli/tracked",
		"trivial-plain": "./trivial/plain", "trivial-tracked": "./trivial/tracked",
	} {
		if paths[name], err = build(dir, name, pkg, cgo); err != nil {
			return err
		}
	}
	home := filepath.Join(dir, "home")
	env := userEnv(home, "HTTPCLI_ENDPOINT="+srv.URL)
	dnt := append(slices.Clone(env), "DO_NOT_TRACK=1")
	buildArgs := []string{"build", "--production", "web"}
	bins := []binary{
		{"httpcli without the SDK", paths["httpcli-plain"], buildArgs, env},
		{"httpcli recording one event", paths["httpcli-tracked"], buildArgs, env},
		{"httpcli with DO_NOT_TRACK=1", paths["httpcli-tracked"], buildArgs, dnt},
		{"trivial cobra command (no net/http)", paths["trivial-plain"], nil, env},
		{"trivial command recording one event", paths["trivial-tracked"], nil, env},
	}
	times, err := interleave(bins, runs)
	if err != nil {
		return err
	}
	fmt.Printf("## The CLI path: median wall time of %d interleaved runs (CGO_ENABLED=%q)\n", runs, cgo)
	base, trivial := median(times[0]), median(times[3])
	targets := map[int]string{1: "1.05", 2: "1.02"}
	if cgo == "0" {
		targets = map[int]string{1: "1.10", 2: "1.05"}
	}
	for i, b := range bins {
		m := median(times[i])
		ref := base
		if i >= 3 {
			ref = trivial
		}
		line := fmt.Sprintf("%-40s %9.3fms", b.name, float64(m)/1e6)
		if i != 0 && i != 3 {
			line += fmt.Sprintf("  %.3fx", float64(m)/float64(ref))
			if t, ok := targets[i]; ok {
				line += " (target <= " + t + "x)"
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
		return thirdParty(dir, runs, cgo, srv.URL)
	}
	return nil
}

// interleave runs every binary once per round, rotating the order each
// round so that none always runs first, and returns the durations of each
// (the first two rounds warm the page cache and are not counted).
func interleave(bins []binary, runs int) ([][]time.Duration, error) {
	times := make([][]time.Duration, len(bins))
	for i := range runs + 2 {
		for k := range bins {
			j := (k + i) % len(bins)
			d, err := timeRun(bins[j])
			if err != nil {
				return nil, err
			}
			if i >= 2 {
				times[j] = append(times[j], d)
			}
		}
	}
	return times, nil
}

func timeRun(b binary) (time.Duration, error) {
	cmd := exec.Command(b.path, b.args...)
	cmd.Env = b.env
	cmd.Stdout = io.Discard
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s %v: %v", b.path, b.args, err)
	}
	return d, nil
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

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
