// Command plain is a trivial cobra command without telemetry: the baseline
// of the CLI-mode benchmark.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use: "trivial",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
