package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/telemetry-kit/telemetry-kit/bench"
)

// cobraCLI is the real third-party tool measured: cobra's own generator,
// built from its module as a user builds it.
const cobraCLI = "github.com/spf13/cobra-cli@v1.3.0"

// thirdParty builds cobra-cli from its module before and after the
// one-line change (its root's Execute through tkcobra.Instrument), and
// times `cobra-cli help init` of each, interleaved.
func thirdParty(dir string, runs, copies int, cgo, endpoint string) error {
	sdk, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	out, err := exec.Command("go", "mod", "download", "-json", cobraCLI).Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %v", cobraCLI, err)
	}
	src := between(string(out), `"Dir": "`, `"`)
	if src == "" {
		return fmt.Errorf("no directory for %s", cobraCLI)
	}
	before := filepath.Join(dir, "cobra-cli-before")
	after := filepath.Join(dir, "cobra-cli-after")
	for _, d := range []string{before, after} {
		if err := exec.Command("cp", "-r", src, d).Run(); err != nil {
			return err
		}
		exec.Command("chmod", "-R", "u+w", d).Run()
	}
	// The one-line change.
	root := filepath.Join(after, "cmd", "root.go")
	b, err := os.ReadFile(root)
	if err != nil {
		return err
	}
	s := string(b)
	const call = "return rootCmd.Execute()"
	if !strings.Contains(s, call) {
		return fmt.Errorf("%s: no %q", root, call)
	}
	s = strings.Replace(s, call, `return tkcobra.Instrument(rootCmd, tkcobra.Config{Config: core.Config{ServiceName: "cobra-cli", Consent: consent.Silent, Endpoint: os.Getenv("HTTPCLI_ENDPOINT")}}).Execute()`, 1)
	s = strings.Replace(s, "import (", "import (\n\ttkcobra \"github.com/telemetry-kit/telemetry-kit/adapters/cobra\"\n\t\"github.com/telemetry-kit/telemetry-kit/consent\"\n\t\"github.com/telemetry-kit/telemetry-kit/core\"\n", 1)
	if !strings.Contains(s, "\t\"os\"\n") {
		s = strings.Replace(s, "import (", "import (\n\t\"os\"\n", 1)
	}
	if err := os.WriteFile(root, []byte(s), 0o644); err != nil {
		return err
	}
	gocmd := func(d string, args ...string) error {
		cmd := exec.Command("go", args...)
		cmd.Dir = d
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if cgo != "" {
			cmd.Env = append(cmd.Env, "CGO_ENABLED="+cgo)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s in %s: %v\n%s", strings.Join(args, " "), d, err, out)
		}
		return nil
	}
	if err := gocmd(after, "mod", "edit", "-require=github.com/telemetry-kit/telemetry-kit@v0.0.0-00010101000000-000000000000", "-replace=github.com/telemetry-kit/telemetry-kit="+sdk); err != nil {
		return err
	}
	for _, d := range []string{before, after} {
		if d == after {
			if err := gocmd(d, "mod", "tidy"); err != nil {
				return err
			}
		}
		if err := gocmd(d, "build", "-o", filepath.Join(d, "cobra-cli.linked"), "."); err != nil {
			return err
		}
		if err := bench.Install(filepath.Join(d, "cobra-cli.linked"), filepath.Join(d, "cobra-cli")); err != nil {
			return err
		}
	}
	plain, err := bench.InstallCopies(filepath.Join(before, "cobra-cli"), copies)
	if err != nil {
		return err
	}
	tracked, err := bench.InstallCopies(filepath.Join(after, "cobra-cli"), copies)
	if err != nil {
		return err
	}
	env := userEnv(filepath.Join(dir, "home3"), "HTTPCLI_ENDPOINT="+endpoint)
	args := []string{"help", "init"}
	bins := []bench.Run{
		{Name: "cobra-cli v1.3.0", Path: filepath.Join(before, "cobra-cli"), Args: args, Env: env, Copies: plain},
		{Name: "cobra-cli v1.3.0 recording one event", Path: filepath.Join(after, "cobra-cli"), Args: args, Env: env,
			Copies: tracked},
		{Name: "the same with DO_NOT_TRACK=1", Path: filepath.Join(after, "cobra-cli"), Args: args,
			Env: append(env, "DO_NOT_TRACK=1"), Copies: tracked},
	}
	times, err := bench.Interleave(bins, runs)
	if err != nil {
		return err
	}
	fmt.Printf("\n## A real tool: %s, `cobra-cli help init`, median of %d interleaved runs\n", cobraCLI, runs)
	base := bench.Median(times[0])
	for i, b := range bins {
		m := bench.Median(times[i])
		line := fmt.Sprintf("%-40s %9.3fms", b.Name, float64(m)/1e6)
		if i > 0 {
			line += fmt.Sprintf("  %.3fx", float64(m)/float64(base))
		}
		fmt.Println(line)
	}
	a, z := size(bins[0].Path), size(bins[1].Path)
	fmt.Printf("binary %6.2f MiB -> %6.2f MiB (+%.2f MiB)\n", float64(a)/(1<<20), float64(z)/(1<<20), float64(z-a)/(1<<20))
	return nil
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}
