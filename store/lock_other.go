//go:build plan9 || solaris || aix

package store

import (
	"os"
	"time"
)

// lockFile is a no-op where bbolt locks with fcntl: a lock taken on a second
// descriptor in this process would be released when either is closed.
func lockFile(*os.File, time.Duration) error { return nil }

func unlockFile(*os.File) error { return nil }
