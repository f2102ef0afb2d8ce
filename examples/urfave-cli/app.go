// Command urfave-cli is a small build tool written with urfave/cli v2,
// instrumented with telemetry-kit's tkurfave adapter. See README.md.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

const version = "0.3.0"

// newApp builds the tool's app. main runs it instrumented; built with
// -tags notelemetry it runs as is, which the benchmark compares.
func newApp() *cli.App {
	return &cli.App{
		Name:     "urfave-cli",
		Usage:    "Build, serve and deploy a small web project",
		Commands: []*cli.Command{buildCommand(), serveCommand(), deployCommand(), configCommand(), versionCommand()},
	}
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "Build the given targets (default: all)",
		ArgsUsage: "[TARGET...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "rebuild when files change"},
			&cli.BoolFlag{Name: "production", Usage: "minify and strip debug information"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: "dist", Usage: "output `DIR`"},
		},
		Action: func(c *cli.Context) error {
			targets := c.Args().Slice()
			if len(targets) == 0 {
				targets = []string{"all"}
			}
			mode := "development"
			if c.Bool("production") {
				mode = "production"
			}
			noun := "targets"
			if len(targets) == 1 {
				noun = "target"
			}
			fmt.Fprintf(c.App.Writer, "built %d %s (%s) into %s/ in %s mode\n",
				len(targets), noun, strings.Join(targets, ", "), strings.TrimSuffix(c.String("out"), "/"), mode)
			if c.Bool("watch") {
				fmt.Fprintln(c.App.Writer, "watching for changes (this example stops here)")
			}
			return nil
		},
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "Serve the build output locally",
		Flags: []cli.Flag{&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 8080, Usage: "port to listen on"}},
		Action: func(c *cli.Context) error {
			port := c.Int("port")
			if port < 1 || port > 65535 {
				return fmt.Errorf("invalid port %d", port)
			}
			fmt.Fprintf(c.App.Writer, "serving dist/ on http://localhost:%d (this example does not listen)\n", port)
			return nil
		},
	}
}

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:  "deploy",
		Usage: "Deploy the build output to an environment",
		Flags: []cli.Flag{&cli.StringFlag{Name: "target", Aliases: []string{"t"}, Required: true, Usage: "environment to deploy to"}},
		Action: func(c *cli.Context) error {
			target := c.String("target")
			if target == "fail" {
				return cli.Exit("Error: deploy to fail: the environment rejected the release", 1)
			}
			fmt.Fprintf(c.App.Writer, "deployed %s to %s\n", version, target)
			return nil
		},
	}
}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "Read and change settings",
		Subcommands: []*cli.Command{
			{
				Name:      "get",
				Usage:     "Print a setting",
				ArgsUsage: "KEY",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("config get takes 1 argument, got %d", c.NArg())
					}
					settings, err := loadSettings()
					if err != nil {
						return err
					}
					v, ok := settings[c.Args().First()]
					if !ok {
						return fmt.Errorf("%s is not set", c.Args().First())
					}
					fmt.Fprintln(c.App.Writer, v)
					return nil
				},
			},
			{
				Name:      "set",
				Usage:     "Change a setting",
				ArgsUsage: "KEY VALUE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return fmt.Errorf("config set takes 2 arguments, got %d", c.NArg())
					}
					settings, err := loadSettings()
					if err != nil {
						return err
					}
					settings[c.Args().Get(0)] = c.Args().Get(1)
					if err := saveSettings(settings); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s = %s\n", c.Args().Get(0), c.Args().Get(1))
					return nil
				},
			},
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "Print the version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "urfave-cli %s\n", version)
			return nil
		},
	}
}

// settingsPath is the tool's own settings file.
func settingsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "urfave-cli", "settings.json"), nil
}

func loadSettings() (map[string]string, error) {
	settings := map[string]string{"out": "dist", "port": "8080"}
	p, err := settingsPath()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return settings, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &settings); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return settings, nil
}

func saveSettings(settings map[string]string) error {
	p, err := settingsPath()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, append(data, '\n'), 0o600)
}
