// Package app is the command tree of a small cobra tool like the Go CLIs
// that telemetry-kit instruments: one subcommand builds, another fetches a
// URL with net/http, so the tool links net/http whether or not it records
// telemetry.
package app

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// Root returns the tool's root command.
func Root() *cobra.Command {
	root := &cobra.Command{Use: "httpcli", Short: "Build targets and fetch URLs", SilenceUsage: true}
	var watch, production bool
	var out string
	build := &cobra.Command{
		Use:   "build [TARGET...]",
		Short: "Build the targets",
		RunE: func(cmd *cobra.Command, targets []string) error {
			if len(targets) == 0 {
				targets = []string{"all"}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s into %s (production=%v, watch=%v)\n",
				strings.Join(targets, ", "), out, production, watch)
			return nil
		},
	}
	build.Flags().BoolVarP(&watch, "watch", "w", false, "rebuild when files change")
	build.Flags().BoolVar(&production, "production", false, "minify")
	build.Flags().StringVarP(&out, "out", "o", "dist", "output directory")
	fetch := &cobra.Command{
		Use:   "fetch URL",
		Short: "Fetch a URL and print its size",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := http.Get(args[0])
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bytes\n", resp.Status, n)
			return err
		},
	}
	root.AddCommand(build, fetch)
	return root
}
