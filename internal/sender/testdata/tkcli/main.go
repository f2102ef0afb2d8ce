// Command tkcli is a small instrumented command-line tool for the sender's
// process tests and benchmarks. It records the number of feature_used events
// given as its first argument (default 1), prints "done" and exits.
//
// Settings come from the environment: TKCLI_ENDPOINT, TKCLI_QUEUE,
// TKCLI_CONFIG, TKCLI_MIN_EVENTS, TKCLI_SENDER_TIMEOUT, TKCLI_CLOCK_OFFSET
// (shifts the client's clock, to let backoffs pass), TKCLI_SYNC=1
// (SyncFlushAtExit), TKCLI_COMMAND=1 (record one command run as the
// adapters do, begun and then finished, instead of the features) and
// TKCLI_LOG (a file the client's debug log is appended to).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/internal/sender"
)

func main() {
	getenv := os.Getenv
	cfg := core.Config{
		ServiceName:    "tkcli",
		ServiceVersion: "1.0.0",
		Mode:           core.CLIMode,
		Consent:        consent.Silent,
		Endpoint:       getenv("TKCLI_ENDPOINT"),
		APIKey:         "wk_test",
		ConfigDir:      getenv("TKCLI_CONFIG"),
		Queue:          core.Queue{Path: getenv("TKCLI_QUEUE")},
		Send:           core.Send{SyncAtExit: getenv("TKCLI_SYNC") == "1"},
	}
	cfg.Send.MinEvents, _ = strconv.Atoi(getenv("TKCLI_MIN_EVENTS"))
	cfg.Send.Timeout, _ = time.ParseDuration(getenv("TKCLI_SENDER_TIMEOUT"))
	if path := getenv("TKCLI_LOG"); path != "" {
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			defer f.Close()
			cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})).
				With("pid", os.Getpid(), "sender", getenv(sender.ProcessEnv) != "")
		}
	}
	if off, err := time.ParseDuration(getenv("TKCLI_CLOCK_OFFSET")); err == nil {
		cfg.Host.Now = func() time.Time { return time.Now().Add(off) }
	}
	// New comes first: in the detached sender process it sends and exits.
	tk, err := core.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tkcli:", err)
		os.Exit(2)
	}
	n := 1
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if getenv("TKCLI_COMMAND") == "1" {
		cmd := core.Command{Path: "build", Flags: []string{"watch"}, Args: n}
		tk.BeginCommand(cmd)
		cmd.Duration = 3 * time.Millisecond
		tk.TrackCommand(cmd)
	} else {
		for i := range n {
			tk.TrackFeature("work", core.Props{"i": i})
		}
	}
	fmt.Println("done")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tk.Close(ctx)
}
