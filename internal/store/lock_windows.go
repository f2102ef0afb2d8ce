//go:build windows

package store

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// tryLockFile takes f's exclusive lock if it is free, and returns ErrLocked
// if it is not.
func tryLockFile(f *os.File) error {
	const m1 = ^uint32(0)
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0,
		&windows.Overlapped{Offset: m1, OffsetHigh: m1})
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return ErrLocked
	}
	return err
}

// unlockFile releases the lock on f, also when a memory map of it is alive.
func unlockFile(f *os.File) error {
	const m1 = ^uint32(0)
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{Offset: m1, OffsetHigh: m1})
}

// journalSupported reports whether Options.Journal takes effect here.
const journalSupported = true
