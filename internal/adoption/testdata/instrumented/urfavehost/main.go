// Command urfavehost is the host's urfave/cli tool after its one-line
// adoption of the SDK.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	tkurfave "github.com/telemetry-kit/telemetry-kit/adapters/urfave"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func newApp() *cli.App {
	return &cli.App{
		Name:  "urfavehost",
		Usage: "A host tool",
		Commands: []*cli.Command{{
			Name:  "build",
			Usage: "Build the targets",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "rebuild when files change"}},
			Action: func(c *cli.Context) error {
				fmt.Fprintf(c.App.Writer, "built %d targets (watch=%v)\n", c.NArg(), c.Bool("watch"))
				return nil
			},
		}},
	}
}

func main() {
	cfg := tkurfave.Config{Config: core.Config{ServiceName: "urfavehost", ServiceVersion: "1.0.0"}}
	if err := tkurfave.Instrument(newApp(), cfg).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
