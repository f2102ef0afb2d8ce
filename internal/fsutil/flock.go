//go:build !windows && !plan9 && !solaris && !aix

package fsutil

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// TryFlock takes f's exclusive flock(2) lock if it is free: it reports
// false, with no error, when another open file description holds it.
func TryFlock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		}
		return false, err
	}
}
