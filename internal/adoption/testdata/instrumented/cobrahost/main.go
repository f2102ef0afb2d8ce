// Command cobrahost is the host's cobra tool after its one-line adoption of
// the SDK.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{Use: "cobrahost", Short: "A host tool", SilenceUsage: true}
	var watch bool
	build := &cobra.Command{
		Use:   "build [TARGET...]",
		Short: "Build the targets",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "built %d targets (watch=%v)\n", len(args), watch)
			return nil
		},
	}
	build.Flags().BoolVarP(&watch, "watch", "w", false, "rebuild when files change")
	root.AddCommand(build)
	return root
}

func main() {
	cfg := tkcobra.Config{Config: core.Config{ServiceName: "cobrahost", ServiceVersion: "1.0.0"}}
	if err := tkcobra.Instrument(newRoot(), cfg).Execute(); err != nil {
		os.Exit(1)
	}
}
