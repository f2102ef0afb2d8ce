// Command linked is the httpcli tool linking the SDK without starting it:
// the instrumented main is reachable, so the linker keeps the SDK and its
// dependencies, but it runs only with HTTPCLI_INSTRUMENT=1, which the
// benchmark never sets. Against the plain tool it measures what linking
// the SDK costs a run before any of its code runs: a larger binary, and
// its dependencies' package initializers.
package main

import (
	"os"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
	"github.com/telemetry-kit/telemetry-kit/bench/httpcli/app"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	if os.Getenv("HTTPCLI_INSTRUMENT") == "1" {
		cfg := tkcobra.Config{Config: core.Config{
			ServiceName: "httpcli", ServiceVersion: "1.0.0", Consent: consent.Silent,
			Endpoint: os.Getenv("HTTPCLI_ENDPOINT"), APIKey: "tk_w_bench",
		}}
		if err := tkcobra.Instrument(app.Root(), cfg).Execute(); err != nil {
			os.Exit(1)
		}
		return
	}
	if err := app.Root().Execute(); err != nil {
		os.Exit(1)
	}
}
