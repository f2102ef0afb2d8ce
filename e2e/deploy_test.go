package e2e

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// root is the repository's root directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// compose.yaml loads with compose-go, the loader of Docker Compose itself,
// with .env.example as its .env: two services, the database healthy before
// tk-server starts, a named volume, health checks, the password from the
// env file; without a password it refuses to load.
func TestComposeFile(t *testing.T) {
	// As an operator sets it up: compose.yaml with .env copied from
	// .env.example beside it.
	src := root(t)
	dir := t.TempDir()
	for _, f := range [][2]string{{"compose.yaml", "compose.yaml"}, {".env.example", ".env"}} {
		b, err := os.ReadFile(filepath.Join(src, f[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f[1]), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func(envFiles ...string) (*types.Project, error) {
		opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
			cli.WithWorkingDirectory(dir), cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
		if err != nil {
			return nil, err
		}
		return opts.LoadProject(context.Background())
	}
	p, err := load(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "telemetry-kit" || len(p.Services) != 2 {
		t.Fatalf("project %q with %d services", p.Name, len(p.Services))
	}
	pg, tk := p.Services["postgres"], p.Services["tk-server"]
	if pg.Build == nil || pg.Build.Context != filepath.Join(dir, "deploy/postgres") || tk.Build == nil || tk.Build.Context != dir {
		t.Errorf("builds: %+v %+v", pg.Build, tk.Build)
	}
	if dep, ok := tk.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("tk-server depends on %+v", tk.DependsOn)
	}
	if pg.HealthCheck == nil || tk.HealthCheck == nil ||
		strings.Join(tk.HealthCheck.Test, " ") != "CMD /usr/local/bin/tk-server healthcheck" {
		t.Errorf("health checks: %+v %+v", pg.HealthCheck, tk.HealthCheck)
	}
	if url := tk.Environment["TK_DATABASE_URL"]; url == nil || *url != "postgres://telemetry:change-me@postgres:5432/telemetry?sslmode=disable" {
		t.Errorf("TK_DATABASE_URL %v", url)
	}
	if len(pg.Volumes) != 1 || pg.Volumes[0].Source != "pgdata" || pg.Volumes[0].Target != "/var/lib/postgresql/data" {
		t.Errorf("postgres volumes %+v", pg.Volumes)
	}
	if _, ok := p.Volumes["pgdata"]; !ok {
		t.Error("no named volume pgdata")
	}
	if len(tk.Ports) != 1 || tk.Ports[0].Target != 8080 || tk.Ports[0].Published != "8080" {
		t.Errorf("ports %+v", tk.Ports)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("TK_PORT=8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(filepath.Join(dir, ".env")); err == nil || !strings.Contains(err.Error(), "TK_POSTGRES_PASSWORD") {
		t.Errorf("without a password: %v", err)
	}
}

// Every TK_ variable that the example files set is one tk-server reads.
func TestDeployVariablesAreFlags(t *testing.T) {
	dir := root(t)
	help, err := exec.Command(filepath.Join(bins, "tk-server"), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	// Variables of compose.yaml itself, not of tk-server.
	composeOnly := map[string]bool{"TK_POSTGRES_PASSWORD": true, "TK_PORT": true}
	name := regexp.MustCompile(`(?m)^#?\s*(TK_[A-Z_]+)=`)
	for _, f := range []string{".env.example", "deploy/tk-server.env"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			if !composeOnly[m[1]] && !strings.Contains(string(help), "["+m[1]+"]") {
				t.Errorf("%s sets %s, which tk-server serve does not read", f, m[1])
			}
		}
	}
}

// The systemd unit passes systemd-analyze verify, with its ExecStart on a
// real tk-server binary.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/tk-server.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "tk-server.service")
	os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/tk-server", filepath.Join(bins, "tk-server"))), 0o644)
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	// Complaints about the machine's other units are not this unit's.
	var mine []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "tk-server.service") {
			mine = append(mine, line)
		}
	}
	if err != nil || len(mine) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(mine, "\n"))
	}
}

// The Dockerfile's build step, run here as it is written, makes a static
// binary (no dynamic loader), which the image's empty base needs.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	dir := root(t)
	b, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "cd cmd/tk-server && GOWORK=off CGO_ENABLED=0 go build") ||
		!strings.Contains(string(b), "FROM scratch") || !strings.Contains(string(b), "USER 65532:65532") {
		t.Fatal("the Dockerfile's build step or final stage changed: update this test")
	}
	out := filepath.Join(t.TempDir(), "tk-server")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = filepath.Join(dir, "cmd/tk-server")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build (GOWORK=off): %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary needs a dynamic loader: it would not run on an empty base image")
		}
	}
}

// docs/self-hosting.md's configuration table names every variable of
// tk-server serve.
func TestSelfHostingDocumentsEveryFlag(t *testing.T) {
	help, err := exec.Command(filepath.Join(bins, "tk-server"), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root(t), "docs/self-hosting.md"))
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`\[(TK_[A-Z_]+)\]`).FindAllStringSubmatch(string(help), -1)
	if len(vars) < 20 {
		t.Fatalf("%d variables in serve --help", len(vars))
	}
	for _, v := range vars {
		if !strings.Contains(string(doc), "`"+v[1]+"`") {
			t.Errorf("docs/self-hosting.md does not document %s", v[1])
		}
	}
}
