//go:build !windows && !plan9

package store

import (
	"errors"
	"syscall"
)

// processesCheckable says whether ProcessAlive can tell.
const processesCheckable = true

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
