// Command cobra-cli is a small build tool written with cobra, instrumented
// with telemetry-kit's tkcobra adapter. See README.md.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

const version = "0.3.0"

// newRoot builds the tool's command tree. main runs it instrumented; built
// with -tags notelemetry it runs as is, which the benchmark compares.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "cobra-cli",
		Short:         "Build, serve and deploy a small web project",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newBuild(), newServe(), newDeploy(), newConfig(), newVersion())
	return root
}

func newBuild() *cobra.Command {
	var watch, production bool
	var out string
	cmd := &cobra.Command{
		Use:   "build [TARGET...]",
		Short: "Build the given targets (default: all)",
		RunE: func(cmd *cobra.Command, targets []string) error {
			if len(targets) == 0 {
				targets = []string{"all"}
			}
			mode := "development"
			if production {
				mode = "production"
			}
			noun := "targets"
			if len(targets) == 1 {
				noun = "target"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %d %s (%s) into %s/ in %s mode\n",
				len(targets), noun, strings.Join(targets, ", "), strings.TrimSuffix(out, "/"), mode)
			if watch {
				fmt.Fprintln(cmd.OutOrStdout(), "watching for changes (this example stops here)")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "rebuild when files change")
	cmd.Flags().BoolVar(&production, "production", false, "minify and strip debug information")
	cmd.Flags().StringVarP(&out, "out", "o", "dist", "output `DIR`")
	return cmd
}

func newServe() *cobra.Command {
	var port int
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the build output locally",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 1 || port > 65535 {
				return fmt.Errorf("invalid port %d", port)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving dist/ on http://localhost:%d (this example does not listen)\n", port)
			return nil
		},
	}
	cmd.Flags().IntVarP(&port, "port", "p", 8080, "port to listen on")
	return cmd
}

func newDeploy() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "deploy --target ENV",
		Short: "Deploy the build output to an environment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "fail" {
				return errors.New("deploy to fail: the environment rejected the release")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed %s to %s\n", version, target)
			return nil
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "environment to deploy to (required)")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

func newConfig() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Read and change settings"}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "get KEY",
			Short: "Print a setting",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				settings, err := loadSettings()
				if err != nil {
					return err
				}
				v, ok := settings[args[0]]
				if !ok {
					return fmt.Errorf("%s is not set", args[0])
				}
				fmt.Fprintln(cmd.OutOrStdout(), v)
				return nil
			},
		},
		&cobra.Command{
			Use:   "set KEY VALUE",
			Short: "Change a setting",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				settings, err := loadSettings()
				if err != nil {
					return err
				}
				settings[args[0]] = args[1]
				if err := saveSettings(settings); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", args[0], args[1])
				return nil
			},
		},
	)
	return cmd
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "cobra-cli %s\n", version)
		},
	}
}

// settingsPath is the tool's own settings file.
func settingsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "cobra-cli", "settings.json"), nil
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
