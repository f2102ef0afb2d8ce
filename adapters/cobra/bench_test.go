package tkcobra_test

import (
	"io"
	"testing"

	"github.com/spf13/cobra"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
)

// BenchmarkExecute measures one run of a trivial command in process: the
// tree alone, and instrumented (client start, one durable write, close).
func BenchmarkExecute(b *testing.B) {
	tree := func() *cobra.Command {
		var log hookLog
		root := newTree(&log)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"version"})
		return root
	}
	b.Run("plain", func(b *testing.B) {
		b.ResetTimer()
		for range b.N {
			_ = tree().Execute()
		}
	})
	b.Run("instrumented", func(b *testing.B) {
		e := newEnv(b, nil)
		b.ResetTimer()
		for range b.N {
			_ = tkcobra.Instrument(tree(), e.cfg).Execute()
		}
	})
	b.Run("instrumented-do-not-track", func(b *testing.B) {
		e := newEnv(b, map[string]string{"DO_NOT_TRACK": "1"})
		b.ResetTimer()
		for range b.N {
			_ = tkcobra.Instrument(tree(), e.cfg).Execute()
		}
	})
}
