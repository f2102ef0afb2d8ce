// Command appendonly is the trivial cobra command of package plain that also
// appends one 600-byte record durably to a file (open, write, fsync, close),
// with no telemetry-kit code: the floor of any durable local write, such as
// the queue's journal in CLI mode.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use: "trivial",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	err := root.Execute()
	if dir, derr := os.UserCacheDir(); derr == nil {
		write(filepath.Join(dir, "trivial-append", "queue.log"))
	}
	if err != nil {
		os.Exit(1)
	}
}

func write(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if os.IsNotExist(err) {
		os.MkdirAll(filepath.Dir(path), 0o700)
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	}
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 600)); err == nil {
		f.Sync()
	}
}
