package adoption_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// sdkModule is the module a host adds.
const sdkModule = "github.com/telemetry-kit/telemetry-kit"

// serverModules are modules of the server that a host must never get: the
// SDK imports none of them.
var serverModules = []string{
	"github.com/jackc/pgx",
	"github.com/pressly/goose",
	"github.com/prometheus/",
	"github.com/klauspost/compress",
	"golang.org/x/time",
	"github.com/rogpeppe/go-internal",
}

// unlinkedPackages are packages the SDK must not link into its host: each
// costs every run of every instrumented tool its start-up work (see
// core/ids.go) and adds to the binary.
var unlinkedPackages = []string{"database/sql", "database/sql/driver", "github.com/google/uuid"}

// hostModules are the host's own requirements, which adopting the SDK must
// leave at the host's versions.
var hostModules = []string{"github.com/spf13/cobra", "github.com/urfave/cli/v2"}

// TestAdoption adopts the SDK in a host module pinned to older releases
// (testdata/host: go 1.23, cobra v1.8.1, urfave/cli v2.25.7) as an author
// would: one require, a replace to this checkout, go mod tidy. It checks
// that the host's go line and its cobra and urfave/cli versions are
// unchanged, that no server dependency reaches its go.mod or go.sum, that
// the host's own tools behave as before (help, completion), and that both
// adapters build against those versions and record a command.
//
// It needs the Go module proxy, as go mod tidy does.
func TestAdoption(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads the host's modules")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "host")
	copyDir(t, filepath.Join("testdata", "host"), host)

	// The host as it is: tidy, then its tools' own output.
	start := time.Now()
	goCmd(t, host, "mod", "tidy")
	t.Logf("host's first go mod tidy: %v", time.Since(start).Round(time.Millisecond))
	before := readMod(t, host)
	t.Logf("host go.mod before:\n%s", readFile(t, filepath.Join(host, "go.mod")))
	plainBefore := hostOutputs(t, host)

	// The one-line change: the instrumented tools, the SDK required.
	copyDir(t, filepath.Join("testdata", "instrumented"), filepath.Join(host, "instrumented"))
	goCmd(t, host, "mod", "edit", "-require="+sdkModule+"@v0.0.0-00010101000000-000000000000", "-replace="+sdkModule+"="+root)
	start = time.Now()
	goCmd(t, host, "mod", "tidy")
	t.Logf("go mod tidy after adding the SDK: %v", time.Since(start).Round(time.Millisecond))
	after := readMod(t, host)
	t.Logf("host go.mod after:\n%s", readFile(t, filepath.Join(host, "go.mod")))

	if after.Go != before.Go {
		t.Errorf("the host's go line moved from %s to %s", before.Go, after.Go)
	}
	if after.Toolchain != before.Toolchain {
		t.Errorf("the host's toolchain line moved from %q to %q", before.Toolchain, after.Toolchain)
	}
	for _, m := range hostModules {
		if b, a := before.version(m), after.version(m); b == "" || a != b {
			t.Errorf("%s moved from %s to %s", m, b, a)
		}
	}
	gosum := readFile(t, filepath.Join(host, "go.sum"))
	gomod := readFile(t, filepath.Join(host, "go.mod"))
	for _, m := range serverModules {
		if strings.Contains(gomod, m) || strings.Contains(gosum, m) {
			t.Errorf("the host's go.mod or go.sum names %s, a module of the server", m)
		}
	}
	var added []string
	for _, r := range after.Require {
		if before.version(r.Path) == "" {
			added = append(added, r.Path+" "+r.Version)
		} else if v := before.version(r.Path); v != r.Version {
			added = append(added, r.Path+" "+v+" → "+r.Version)
		}
	}
	t.Logf("modules the SDK added or raised: %s", strings.Join(added, ", "))

	// The host's own tools, rebuilt with the new go.mod, behave as before.
	plainAfter := hostOutputs(t, host)
	for name, out := range plainBefore {
		if plainAfter[name] != out {
			t.Errorf("%s changed after adopting the SDK:\nbefore:\n%s\nafter:\n%s", name, out, plainAfter[name])
		}
	}

	// What the SDK links into an instrumented tool.
	for _, tool := range []string{"./instrumented/cobrahost", "./instrumented/urfavehost"} {
		deps := strings.Fields(goCmd(t, host, "list", "-deps", tool))
		for _, p := range unlinkedPackages {
			if slices.Contains(deps, p) {
				t.Errorf("%s links %s", tool, p)
			}
		}
	}

	// Both adapters build against the host's versions and record.
	bin := t.TempDir()
	goCmd(t, host, "build", "-o", bin+string(filepath.Separator), "./instrumented/cobrahost", "./instrumented/urfavehost")
	for _, tool := range []string{"cobrahost", "urfavehost"} {
		t.Run(tool, func(t *testing.T) {
			exe := filepath.Join(bin, tool+exeSuffix())
			env := userEnv(t)
			run(t, exe, env, "telemetry", "enable")
			out := run(t, exe, env, "build", "--watch", "a", "b")
			if !strings.Contains(out, "built 2 targets (watch=true)") {
				t.Fatalf("build printed %q", out)
			}
			shown := run(t, exe, env, "telemetry", "show")
			var ev struct {
				EventType string         `json:"event_type"`
				Metadata  map[string]any `json:"metadata"`
			}
			var found bool
			for _, line := range strings.Split(strings.TrimSpace(shown), "\n") {
				if json.Unmarshal([]byte(line), &ev) == nil && ev.EventType == "command_executed" && ev.Metadata["command"] == "build" {
					found = true
					if flags, _ := ev.Metadata["flags"].([]any); len(flags) != 1 || flags[0] != "watch" {
						t.Errorf("flags recorded as %v, want [watch]", ev.Metadata["flags"])
					}
				}
			}
			if !found {
				t.Fatalf("no command_executed event for build in telemetry show:\n%s", shown)
			}
		})
	}
}

// hostOutputs builds the host's own tools and returns what users see of
// them: help and the completion script.
func hostOutputs(t *testing.T, host string) map[string]string {
	t.Helper()
	bin := t.TempDir()
	goCmd(t, host, "build", "-o", bin+string(filepath.Separator), "./cobrahost", "./urfavehost")
	env := userEnv(t)
	cobra := filepath.Join(bin, "cobrahost"+exeSuffix())
	urfave := filepath.Join(bin, "urfavehost"+exeSuffix())
	return map[string]string{
		"cobrahost --help":            run(t, cobra, env, "--help"),
		"cobrahost build --help":      run(t, cobra, env, "build", "--help"),
		"cobrahost completion bash":   run(t, cobra, env, "completion", "bash"),
		"urfavehost --help":           run(t, urfave, env, "--help"),
		"urfavehost build --help":     run(t, urfave, env, "build", "--help"),
		"urfavehost build -w a (run)": run(t, urfave, env, "build", "-w", "a"),
	}
}

// module is what go mod edit -json says of a go.mod.
type module struct {
	Go        string
	Toolchain string
	Require   []struct{ Path, Version string }
}

func (m module) version(path string) string {
	for _, r := range m.Require {
		if r.Path == path {
			return r.Version
		}
	}
	return ""
}

func readMod(t *testing.T, dir string) module {
	t.Helper()
	var m module
	if err := json.Unmarshal([]byte(goCmd(t, dir, "mod", "edit", "-json")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// goCmd runs the go command in dir as an author outside this workspace
// would: no go.work, modules resolved and downloaded, the local toolchain.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// userEnv is the environment of a user of the host's tools: a home of its
// own, no CI, no DO_NOT_TRACK, no endpoint.
func userEnv(t *testing.T) []string {
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "USERPROFILE", k == "DO_NOT_TRACK", k == "CI", strings.HasPrefix(k, "XDG_"),
			strings.HasPrefix(k, "TK_"), strings.HasPrefix(k, "GITHUB_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "USERPROFILE="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
}

// run runs exe and returns its standard output; it fails t when exe fails.
func run(t *testing.T, exe string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(exe), strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyDir copies the files of the tree src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
