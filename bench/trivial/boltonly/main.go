// Command boltonly is the trivial cobra command of package plain that also
// writes one 600-byte record durably to a bbolt file, with no telemetry-kit
// code: the floor that any durable local queue on bbolt costs.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
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
		write(filepath.Join(dir, "trivial-bolt", "queue.db"))
	}
	if err != nil {
		os.Exit(1)
	}
}

func write(path string) {
	os.MkdirAll(filepath.Dir(path), 0o700)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 250 * time.Millisecond})
	if err != nil {
		return
	}
	defer db.Close()
	db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("events"))
		if err != nil {
			return err
		}
		seq, _ := b.NextSequence()
		return b.Put([]byte(strconv.FormatUint(seq, 10)), make([]byte, 600))
	})
}
