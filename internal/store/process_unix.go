//go:build !windows && !plan9

package store

import (
	"errors"
	"syscall"
)

// ProcessAlive reports whether a process with this pid runs (it may belong
// to another user). A pid reused by a later process counts as alive: its
// run's record is queued once that process has ended too.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// runFileStale reports whether a run file so old counts as ended although
// its process seems to run: never where processes can be asked.
func runFileStale(age int64) bool { return false }
