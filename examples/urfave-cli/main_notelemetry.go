//go:build notelemetry

package main

import (
	"fmt"
	"os"
)

// main without telemetry: the same app, run as is. The benchmark compares
// the two builds.
func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
