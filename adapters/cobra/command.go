package tkcobra

import (
	"github.com/spf13/cobra"

	"github.com/telemetry-kit/telemetry-kit/internal/telemetrycmd"
)

// controls returns the actions of the run in progress.
func (r *Runner) controls(cmd *cobra.Command) telemetrycmd.Controls {
	var ctl telemetrycmd.Controls
	if st := r.current(); st != nil {
		ctl = st.ctl
	}
	ctl.Hint = r.root.Name() + " " + r.tele.Name()
	if ctl.Service == "" {
		ctl.Service = r.cfg.ServiceName
	}
	return ctl
}

// newCommand builds the telemetry subcommand.
func (r *Runner) newCommand(name string) *cobra.Command {
	t := &cobra.Command{
		Use:    name,
		Short:  telemetrycmd.ShortCommand,
		Long:   telemetrycmd.LongCommand(r.cfg.ServiceName, r.root.Name()+" "+name, r.showFlag, r.cfg.Policy.FlagValues),
		Args:   cobra.NoArgs,
		Hidden: r.cfg.HideCommand,
		// The author's persistent hooks set up the tool's own work; the
		// telemetry controls must work even when that setup fails.
		PersistentPreRun:  func(*cobra.Command, []string) {},
		PersistentPostRun: func(*cobra.Command, []string) {},
	}
	var asJSON bool
	status := &cobra.Command{
		Use:          "status",
		Short:        telemetrycmd.ShortStatus,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.controls(cmd).Status(cmd.Context(), cmd.OutOrStdout(), asJSON)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, telemetrycmd.ShortJSON)
	t.AddCommand(
		status,
		&cobra.Command{
			Use:          "enable",
			Short:        telemetrycmd.ShortEnable,
			Args:         cobra.NoArgs,
			SilenceUsage: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return r.controls(cmd).Enable(cmd.Context(), cmd.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:          "disable",
			Short:        telemetrycmd.ShortDisable,
			Args:         cobra.NoArgs,
			SilenceUsage: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return r.controls(cmd).Disable(cmd.Context(), cmd.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:          "delete",
			Short:        telemetrycmd.ShortDelete,
			Args:         cobra.NoArgs,
			SilenceUsage: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return r.controls(cmd).Delete(cmd.Context(), cmd.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:          "show",
			Short:        telemetrycmd.ShortShow,
			Args:         cobra.NoArgs,
			SilenceUsage: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return r.controls(cmd).Show(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		},
		&cobra.Command{
			Use:          "flush",
			Short:        telemetrycmd.ShortFlush,
			Args:         cobra.NoArgs,
			Hidden:       r.cfg.HideFlush,
			SilenceUsage: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return r.controls(cmd).Flush(cmd.Context(), cmd.OutOrStdout())
			},
		},
	)
	return t
}
