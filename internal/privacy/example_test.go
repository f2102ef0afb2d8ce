package privacy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/internal/privacy"
)

func ExampleEnvVar() {
	fmt.Println(privacy.EnvVar("my-cli"))
	// Output: MY_CLI_TELEMETRY
}

func ExampleScrub() {
	fmt.Println(privacy.Scrub("build"))
	fmt.Println(privacy.Scrub("open /home/alice/.config/app.yaml: permission denied"))
	fmt.Println(privacy.Scrub("POST https://bob:hunter2@api.example.com/v1?token=abc&page=2"))
	fmt.Println(privacy.Scrub("contact alice@example.com from 10.0.0.7"))
	// Output:
	// build
	// open ~/.config/app.yaml: permission denied
	// POST https://<credentials>@api.example.com/v1?token=<secret>&page=2
	// contact <email> from <ip>
}

func ExampleResolve() {
	dir, _ := os.MkdirTemp("", "consent-example")
	defer os.RemoveAll(dir)
	env := map[string]string{"MY_CLI_TELEMETRY": "0"}
	o := privacy.Options{
		Service: "my-cli",
		Mode:    consent.OptOut,
		Dir:     filepath.Join(dir, "my-cli"),
		Getenv:  func(k string) string { return env[k] },
		Now:     func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) },
	}
	fmt.Println(privacy.Resolve(o))

	delete(env, "MY_CLI_TELEMETRY")
	fmt.Println(privacy.Resolve(o))

	privacy.Disable(o)
	fmt.Println(privacy.Resolve(o))

	env["DO_NOT_TRACK"] = "1"
	fmt.Println(privacy.Resolve(o))
	// Output:
	// off: MY_CLI_TELEMETRY=0
	// on: the author's default (opt-out)
	// off: you ran `my-cli telemetry disable` on 2026-11-25
	// off: DO_NOT_TRACK is set
}
