// Command exittool is a cobra tool whose commands end the process
// themselves, as real tools do: os.Exit and cobra.CheckErr in a command,
// log.Fatal, a signal, kill -9.
package main

import (
	"errors"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	tkcobra "github.com/telemetry-kit/telemetry-kit/adapters/cobra"
	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
)

func main() {
	root := &cobra.Command{Use: "exittool", SilenceUsage: true}
	var force bool
	add := func(name string, run func()) {
		c := &cobra.Command{Use: name, Run: func(*cobra.Command, []string) { run() }}
		c.Flags().BoolVar(&force, "force", false, "")
		root.AddCommand(c)
	}
	add("ok", func() {})
	add("exit", func() { os.Exit(3) })
	add("checkerr", func() { cobra.CheckErr(errors.New("no such thing")) })
	add("fatal", func() { log.Fatal("cannot go on") })
	add("sigterm", func() {
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(5 * time.Second)
	})
	add("kill", func() {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(5 * time.Second)
	})
	cfg := tkcobra.Config{Config: core.Config{ServiceName: "exittool", Consent: consent.Silent}}
	if err := tkcobra.Instrument(root, cfg).Execute(); err != nil {
		os.Exit(1)
	}
}
