// Command tracked is the trivial cobra command of package plain that also
// records one command_executed event durably in the local queue.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	tk, _ := core.New(core.Config{ServiceName: "trivial", Mode: core.CLIMode, Consent: consent.Silent})
	start := time.Now()
	root := &cobra.Command{
		Use: "trivial",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	err := root.Execute()
	tk.TrackCommand(core.Command{Args: 0, Err: err, Duration: time.Since(start)})
	tk.Close(context.Background())
	if err != nil {
		os.Exit(1)
	}
}
