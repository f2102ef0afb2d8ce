package sender

import (
	"fmt"
	"os"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
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
	f, err := fsutil.OpenFile(LockPath(queuePath), os.O_RDWR|os.O_CREATE, 0o600)
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

// MarkStarted records in the lock file that a detached sender was started at
// t, so that no other process starts one while it gets going. A zero t
// clears the mark. The write is not synced: the mark is a hint, and a lost
// one costs at most a redundant start, which the lock then refuses.
func (l *Lock) MarkStarted(t time.Time) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if t.IsZero() {
		return nil
	}
	_, err := l.f.WriteAt([]byte(t.UTC().Format(time.RFC3339Nano)), 0)
	return err
}

// StartedAt returns the mark of [Lock.MarkStarted] for the queue at
// queuePath, or the zero time.
func StartedAt(queuePath string) time.Time {
	b, err := fsutil.ReadFile(LockPath(queuePath))
	if err != nil || len(b) == 0 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(b))
	return t
}
