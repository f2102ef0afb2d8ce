//go:build !notelemetry

package main

import (
	"os"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	cfg := tkcobra.Config{
		Config: core.Config{
			ServiceName:    "cobra-cli",
			ServiceVersion: version,
			// The author's own settings: where events go and the project's write key.
			Endpoint: os.Getenv("TK_ENDPOINT"),
			APIKey:   os.Getenv("TK_API_KEY"),
			Consent:  consent.OptOut,
		},
		// Environment names are not personal: record which one was deployed to.
		AllowFlagValues: []string{"target"},
	}
	if err := tkcobra.Instrument(newRoot(), cfg).Execute(); err != nil {
		os.Exit(1)
	}
}
