package tkurfave

import (
	"github.com/urfave/cli/v2"

	"github.com/telemetry-kit/telemetry-kit/internal/telemetrycmd"
)

// controls returns the actions of the run in progress.
func (r *Runner) controls() telemetrycmd.Controls {
	var ctl telemetrycmd.Controls
	if st := r.current(); st != nil {
		ctl = st.ctl
	}
	ctl.Hint = r.appName() + " " + r.tele.Name
	if ctl.Service == "" {
		ctl.Service = r.cfg.ServiceName
	}
	return ctl
}

func (r *Runner) appName() string {
	if r.app.Name != "" {
		return r.app.Name
	}
	return r.cfg.ServiceName
}

// newCommand builds the telemetry subcommand.
func (r *Runner) newCommand(name string) *cli.Command {
	action := func(f func(*cli.Context, telemetrycmd.Controls) error) cli.ActionFunc {
		return func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cli.Exit("telemetry "+cCtx.Command.Name+" takes no arguments", 1)
			}
			if err := f(cCtx, r.controls()); err != nil {
				// urfave prints an exit error once and exits non-zero, whatever
				// the app's main does with the error Run returns.
				return cli.Exit(err, 1)
			}
			return nil
		}
	}
	return &cli.Command{
		Name:        name,
		Usage:       telemetrycmd.ShortCommand,
		Description: telemetrycmd.LongCommand(r.cfg.ServiceName, r.appName()+" "+name, r.showFlag, r.cfg.Policy.FlagValues),
		Hidden:      r.cfg.HideCommand,
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: telemetrycmd.ShortStatus,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: telemetrycmd.ShortJSON}},
				Action: action(func(cCtx *cli.Context, ctl telemetrycmd.Controls) error {
					return ctl.Status(cCtx.Context, cCtx.App.Writer, cCtx.Bool("json"))
				}),
			},
			{
				Name:  "enable",
				Usage: telemetrycmd.ShortEnable,
				Action: action(func(cCtx *cli.Context, ctl telemetrycmd.Controls) error {
					return ctl.Enable(cCtx.Context, cCtx.App.Writer)
				}),
			},
			{
				Name:  "disable",
				Usage: telemetrycmd.ShortDisable,
				Action: action(func(cCtx *cli.Context, ctl telemetrycmd.Controls) error {
					return ctl.Disable(cCtx.Context, cCtx.App.Writer)
				}),
			},
			{
				Name:  "delete",
				Usage: telemetrycmd.ShortDelete,
				Action: action(func(cCtx *cli.Context, ctl telemetrycmd.Controls) error {
					return ctl.Delete(cCtx.Context, cCtx.App.Writer)
				}),
			},
			{
				Name:  "show",
				Usage: telemetrycmd.ShortShow,
				Action: action(func(cCtx *cli.Context, ctl telemetrycmd.Controls) error {
					return ctl.Show(cCtx.Context, cCtx.App.Writer, cCtx.App.ErrWriter)
				}),
			},
			{
				Name:   "flush",
				Usage:  telemetrycmd.ShortFlush,
				Hidden: r.cfg.HideFlush,
				Action: action(func(cCtx *cli.Context, ctl telemetrycmd.Controls) error {
					return ctl.Flush(cCtx.Context, cCtx.App.Writer)
				}),
			},
		},
	}
}
