//go:build notelemetry

package main

import "os"

// main without telemetry: the same tree, run as is. The benchmark compares
// the two builds.
func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}
