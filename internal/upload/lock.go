package upload

import (
	"fmt"
	"os"
)

// LockPath is the send lock file for the queue at queuePath.
func LockPath(queuePath string) string { return queuePath + ".send.lock" }

// Lock is the single-flight lock of one queue's sender: an exclusive,
// non-blocking lock on a small file next to the queue. The operating system
// releases it when the holder exits, however it exits.
type Lock struct{ f *os.File }

// TryLock takes the send lock of the queue at queuePath without waiting. It
// returns [ErrBusy] when another sender, in this process or another, holds it.
func TryLock(queuePath string) (*Lock, error) {
	f, err := os.OpenFile(LockPath(queuePath), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("upload: open send lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. It is safe on a nil *Lock and idempotent.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	unlockFile(l.f)
	err := l.f.Close()
	l.f = nil
	return err
}

// Held reports whether some sender holds the send lock of the queue at
// queuePath right now. It takes and releases the lock to find out.
func Held(queuePath string) bool {
	l, err := TryLock(queuePath)
	if err != nil {
		return true
	}
	l.Unlock()
	return false
}
