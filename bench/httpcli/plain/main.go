// Command plain is the httpcli tool without telemetry.
package main

import (
	"os"

	"github.com/telemetry-kit/telemetry-kit/bench/httpcli/app"
)

func main() {
	if err := app.Root().Execute(); err != nil {
		os.Exit(1)
	}
}
