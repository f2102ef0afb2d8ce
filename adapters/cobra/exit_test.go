//go:build linux || darwin || freebsd

package tkcobra_test

import (
	"testing"

	"github.com/telemetry-kit/telemetry-kit/internal/adaptertest"
)

// A command that ends the process itself is still recorded, once (see
// adaptertest.RunsThatNeverReturn), for a tool built on this adapter
// (testdata/exittool).
func TestRunsThatNeverReturnAreRecorded(t *testing.T) { adaptertest.RunsThatNeverReturn(t) }
