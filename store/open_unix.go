//go:build unix

package store

import (
	"os"
	"syscall"
)

// openFile is os.OpenFile for a regular file that is only read and written
// with blocking calls. os.OpenFile also registers every file with the
// runtime's network poller, which a fresh process first has to set up:
// four more system calls for each file, and more for the first.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
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
