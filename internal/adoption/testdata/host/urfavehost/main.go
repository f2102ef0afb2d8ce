// Command urfavehost is a small urfave/cli tool as a host has it before it
// adopts the SDK.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
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
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
