//go:build unix

package fsutil

import (
	"os"
	"syscall"
)

// OpenFile is os.OpenFile for a regular file that is only read and written
// with blocking calls: the file is not registered with the runtime's poller.
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
