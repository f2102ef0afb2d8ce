// End-to-end tests of the example tools: each is built as a user would
// build it and run by testscript scripts in an isolated home directory.
package examples_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// tools are the example command line tools; every script runs against each.
var tools = []string{"cobra-cli", "urfave-cli"}

var binDir string

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "ttyrun" {
		// The test binary started by a script as `ttyrun tool args...`.
		os.Exit(ttyrun(os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "tk-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := linkTTYRun(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// binary builds the example tool with the given build tags (once per test
// binary) and returns the path of the executable.
func binary(tb testing.TB, tool, tags string) string {
	tb.Helper()
	return buildBinary(tb, tool, tags, "")
}

// buildBinary is binary with cgo set to "0" or "1" (CGO_ENABLED), or ""
// for the go command's default.
func buildBinary(tb testing.TB, tool, tags, cgo string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := tool + "+" + tags + "+" + cgo
	if p, ok := built[key]; ok {
		return p
	}
	dir := filepath.Join(binDir, "tags-"+tags)
	if tags == "" {
		dir = filepath.Join(binDir, "default")
	}
	if cgo != "" {
		dir += "-cgo" + cgo
	}
	out := filepath.Join(dir, tool)
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, "./"+tool)...)
	if cgo != "" {
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", tool, err, b)
	}
	built[key] = out
	return out
}

// isolate points the tool's home, configuration and cache directories into
// dir and clears what would change its telemetry decision.
func isolate(setenv func(k, v string), dir string) {
	home := filepath.Join(dir, "home")
	setenv("HOME", home)
	setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	for _, k := range []string{"CI", "DO_NOT_TRACK", "TK_ENDPOINT", "TK_API_KEY", "GITHUB_ACTIONS",
		"COBRA_CLI_TELEMETRY", "URFAVE_CLI_TELEMETRY", "COBRA_CLI_TELEMETRY_DEBUG", "URFAVE_CLI_TELEMETRY_DEBUG"} {
		setenv(k, "")
	}
}

func TestScripts(t *testing.T) {
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			bin := binary(t, tool, "")
			testscript.Run(t, testscript.Params{
				Dir: "testdata/script",
				Cmds: map[string]func(*testscript.TestScript, bool, []string){
					"collector": collector,
					"collected": collected,
				},
				Setup: func(env *testscript.Env) error {
					isolate(env.Setenv, env.WorkDir)
					env.Values[collectorKey{}] = &collection{}
					env.Setenv("TOOL", tool)
					env.Setenv("PATH", filepath.Join(binDir, "tty")+string(os.PathListSeparator)+env.Getenv("PATH"))
					env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+env.Getenv("PATH"))
					return nil
				},
			})
		})
	}
}

// collectorKey holds a script's collection server.
type collectorKey struct{}

type collection struct {
	mu     sync.Mutex
	events []json.RawMessage
	auth   []string
}

// collector starts a collection server for the script that answers as
// docs/protocol.md says, and points TK_ENDPOINT and TK_API_KEY at it.
func collector(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: collector")
	}
	c, _ := ts.Value(collectorKey{}).(*collection)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
				return
			}
			body = zr
		}
		var batch struct {
			Events []json.RawMessage `json:"events"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/events" || json.NewDecoder(body).Decode(&batch) != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.events = append(c.events, batch.Events...)
		c.auth = append(c.auth, r.Header.Get("Authorization"))
		c.mu.Unlock()
		fmt.Fprintf(w, `{"accepted":%d,"duplicates":0,"rejected":[]}`, len(batch.Events))
	}))
	ts.Defer(srv.Close)
	ts.Setenv("TK_ENDPOINT", srv.URL)
	ts.Setenv("TK_API_KEY", "wk_e2e")
}

// collected checks how many events the script's collection server received,
// all with the write key as a bearer token.
func collected(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: collected N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	c, _ := ts.Value(collectorKey{}).(*collection)
	// A detached sender delivers in the background: wait for it a while.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		n := len(c.events)
		c.mu.Unlock()
		if n >= want {
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) != want {
		ts.Fatalf("collected %d events, want %d", len(c.events), want)
	}
	for _, a := range c.auth {
		if a != "Bearer wk_e2e" {
			ts.Fatalf("Authorization %q", a)
		}
	}
}
