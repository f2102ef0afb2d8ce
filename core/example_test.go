package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// A library's long-running host records which functions and options are used.
func ExampleClient_TrackFeature() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	tk, _ := core.New(core.Config{
		ServiceName: "imgkit",
		Consent:     consent.Silent,
		ConfigDir:   dir,                                              // zero: the user's config directory
		Queue:       core.Queue{Path: filepath.Join(dir, "queue.db")}, // zero: the user's cache directory
		Host:        core.Host{Getenv: func(string) string { return "" }},
	})
	tk.TrackFeature("resize", core.Props{"filter": "lanczos"})
	tk.TrackMethod("Encode", core.Props{"format": "webp"})
	tk.Close(context.Background())

	st, _ := tk.Status(context.Background())
	fmt.Println("queued:", st.Queued)
	// Output: queued: 2
}

// A command-line tool records each command; the adapters do this for cobra
// and urfave/cli.
func ExampleClient_TrackCommand() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	tk, _ := core.New(core.Config{
		ServiceName: "my-cli",
		Mode:        core.CLIMode,
		Consent:     consent.Silent,
		ConfigDir:   dir,
		Queue:       core.Queue{Path: filepath.Join(dir, "queue.db")},
		Host:        core.Host{Getenv: func(string) string { return "" }},
	})
	defer tk.Close(context.Background())

	start := time.Now()
	tk.TrackCommand(core.Command{Path: "remote add", Flags: []string{"force"}, Args: 2, Duration: time.Since(start)})

	tk.Queued(context.Background(), func(event []byte) error {
		var e wire.Event
		_ = json.Unmarshal(event, &e)
		fmt.Println(e.EventType, e.Metadata["command"], e.Metadata["flags"], e.Metadata["success"])
		return nil
	})
	// Output: command_executed remote add [force] true
}
