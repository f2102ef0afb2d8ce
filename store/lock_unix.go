//go:build !windows && !plan9 && !solaris && !aix

package store

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// lockFile takes the same exclusive lock bbolt takes on the queue file,
// waiting at most timeout. The lock is released when f is closed.
func lockFile(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		if time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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
