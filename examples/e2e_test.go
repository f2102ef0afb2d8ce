// End-to-end tests of the example tools: each is built as a user would
// build it and run by testscript scripts in an isolated home directory.
package examples_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// tools are the example command line tools; every script runs against each.
var tools = []string{"cobra-cli", "urfave-cli"}

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tk-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
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
	buildMu.Lock()
	defer buildMu.Unlock()
	key := tool + "+" + tags
	if p, ok := built[key]; ok {
		return p
	}
	dir := filepath.Join(binDir, "tags-"+tags)
	if tags == "" {
		dir = filepath.Join(binDir, "default")
	}
	out := filepath.Join(dir, tool)
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, "./"+tool)...)
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
				Setup: func(env *testscript.Env) error {
					isolate(env.Setenv, env.WorkDir)
					env.Setenv("TOOL", tool)
					env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+env.Getenv("PATH"))
					return nil
				},
			})
		})
	}
}
