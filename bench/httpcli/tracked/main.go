// Command tracked is the httpcli tool after its one-line adoption of the
// SDK, with an endpoint configured (HTTPCLI_ENDPOINT).
package main

import (
	"os"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
	"github.com/telemetry-kit/telemetry-kit/bench/httpcli/app"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	cfg := tkcobra.Config{Config: core.Config{
		ServiceName: "httpcli", ServiceVersion: "1.0.0", Consent: consent.Silent,
		Endpoint: os.Getenv("HTTPCLI_ENDPOINT"), APIKey: "tk_w_bench",
	}}
	if err := tkcobra.Instrument(app.Root(), cfg).Execute(); err != nil {
		os.Exit(1)
	}
}
