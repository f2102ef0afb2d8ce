// Command cobrahost is a small cobra tool as a host has it before it adopts
// the SDK.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}
