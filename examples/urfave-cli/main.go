//go:build !notelemetry

package main

import (
	"fmt"
	"os"

	tkurfave "github.com/telemetry-kit/telemetry-kit/adapters/urfave"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	cfg := tkurfave.Config{
		Config: core.Config{
			ServiceName:    "urfave-cli",
			ServiceVersion: version,
			// The author's own settings: where events go and the project's write key.
			Endpoint: os.Getenv("TK_ENDPOINT"),
			APIKey:   os.Getenv("TK_API_KEY"),
			Consent:  consent.OptOut,
		},
		// Environment names are not personal: record which one was deployed to.
		AllowFlagValues: []string{"target"},
	}
	if err := tkurfave.Instrument(newApp(), cfg).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
