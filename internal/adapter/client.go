package adapter

import (
	"github.com/telemetry-kit/telemetry-kit/core"
)

// NewClient creates the client for one run of a command line tool: cfg in
// [core.CLIMode]. When the client cannot be created (for example the queue
// cannot be opened), the error is logged to cfg.Logger and returned with a
// nil client, which records nothing: telemetry never stops the tool.
func NewClient(cfg core.Config) (*core.Client, error) {
	cfg.Mode = core.CLIMode
	c, err := core.New(cfg)
	if err != nil {
		if cfg.Logger != nil {
			cfg.Logger.Warn("telemetry: not started", "err", err)
		}
		return nil, err
	}
	return c, nil
}
