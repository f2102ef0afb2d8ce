//go:build !windows && !plan9 && !solaris && !aix

package store

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// tryLockFile takes f's exclusive lock if it is free, and returns ErrLocked
// if it is not.
func tryLockFile(f *os.File) error {
	ok, err := fsutil.TryFlock(f)
	if err == nil && !ok {
		return ErrLocked
	}
	return err
}

// unlockFile releases the lock on f. Closing f alone is not enough when a
// memory map of it is still alive: the map keeps the open file, and so the
// lock, until it is unmapped.
func unlockFile(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// journalSupported reports whether Options.Journal takes effect here.
const journalSupported = true
