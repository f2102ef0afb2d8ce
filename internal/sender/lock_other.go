//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package sender

import (
	"errors"
	"fmt"
	"os"
)

// lockFile has no implementation here: without a reliable lock the
// single-flight promise cannot be kept, so nothing is sent.
func lockFile(f *os.File) error {
	return fmt.Errorf("upload: no file locking on this platform: %w", errors.ErrUnsupported)
}

func unlockFile(*os.File) {}
