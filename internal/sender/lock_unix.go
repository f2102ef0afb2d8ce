//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package sender

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

func lockFile(f *os.File) error {
	ok, err := fsutil.TryFlock(f)
	switch {
	case err != nil:
		return fmt.Errorf("upload: lock %s: %w", f.Name(), err)
	case !ok:
		return ErrBusy
	}
	return nil
}

func unlockFile(f *os.File) { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }
