//go:build unix

package httpapi

import (
	"errors"
	"syscall"
)

// fileLimit returns the process's soft limit on open files, unless it
// is unlimited (or past any real system's). On Linux the Go runtime
// raised it to the hard limit at start.
func fileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || uint64(r.Cur) > 1<<30 {
		return 0, false
	}
	return uint64(r.Cur), true
}

// isFDExhausted reports whether err is accept's "too many open files".
func isFDExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
