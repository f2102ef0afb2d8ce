// Command exittool is a urfave/cli tool whose commands end the process
// themselves, as real tools do: os.Exit in an action, log.Fatal, a signal,
// kill -9.
package main

import (
	"fmt"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	tkurfave "github.com/telemetry-kit/telemetry-kit/adapters/urfave"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	app := cli.NewApp()
	app.Name = "exittool"
	add := func(name string, run func()) {
		app.Commands = append(app.Commands, &cli.Command{
			Name:   name,
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "force"}},
			Action: func(*cli.Context) error { run(); return nil },
		})
	}
	add("ok", func() {})
	add("exit", func() { os.Exit(3) })
	add("checkerr", func() { fmt.Fprintln(os.Stderr, "Error: no such thing"); os.Exit(1) })
	add("fatal", func() { log.Fatal("cannot go on") })
	add("sigterm", func() {
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(5 * time.Second)
	})
	add("kill", func() {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(5 * time.Second)
	})
	cfg := tkurfave.Config{Config: core.Config{ServiceName: "exittool", Consent: consent.Silent}}
	if err := tkurfave.Instrument(app, cfg).Run(os.Args); err != nil {
		os.Exit(1)
	}
}
