package sender

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ProcessEnv marks a process as the detached sender of the queue whose path
// it holds. The client of such a process sends that queue's due events and
// exits instead of returning to the host.
const ProcessEnv = "TELEMETRY_KIT_SENDER"

// StartDetached starts the detached sender process of q when a send is due
// by policy and no sender runs. The decision reads the queue's summary and,
// when a send is due, again under the send lock; the start is marked in the
// lock file so that no other invocation starts a second sender before this
// one takes the lock. It returns the new process's pid and the reason the
// send is due, or pid 0 when nothing was started; err says why a due send
// could not be started.
func StartDetached(ctx context.Context, q Queue, policy Policy, now func() time.Time) (pid int, reason string, err error) {
	// Most runs find nothing due: from the hint the last check left, with
	// two stats and one small read, or else from the summary, without the
	// lock file or the executable's path.
	hint := newDueHint(q)
	if hint.holds(now()) {
		return 0, "", nil
	}
	t := now()
	d, err := policy.Check(ctx, q, t, false)
	if err != nil {
		return 0, "", nil
	}
	if !d.Due {
		hint.save(policy, d, t)
		return 0, "", nil
	}
	pid, err = startSender(q.Path(), func() (bool, error) {
		// Again under the lock, so that two runs never both start a sender.
		d, err = policy.Check(ctx, q, now(), false)
		return err == nil && d.Due, err
	}, now)
	switch {
	case err != nil:
		return 0, d.Reason, err
	case pid == 0:
		return 0, "", nil
	}
	return pid, d.Reason, nil
}

// startSender starts the detached sender of the queue at queuePath unless
// a sender runs, this is a test binary, or due (asked under the send lock)
// says no. The start is marked in the lock file before the lock is let
// go, so that no other run starts a second sender meanwhile. It returns
// the new process's pid, or 0 when none was started; err is a failed
// start.
func startSender(queuePath string, due func() (bool, error), now func() time.Time) (int, error) {
	exe, err := os.Executable()
	if err != nil || isTestBinary(exe) {
		return 0, nil
	}
	lock, err := TryLock(queuePath)
	if err != nil {
		return 0, nil // a sender runs
	}
	ok, err := due()
	if err == nil && ok {
		err = lock.MarkStarted(now())
	}
	lock.Unlock() // before the start: the sender takes it
	if err != nil || !ok {
		return 0, nil
	}
	argv0 := exe
	if len(os.Args) > 0 && os.Args[0] != "" {
		argv0 = os.Args[0]
	}
	return Detach(exe, argv0, WithEnv(os.Environ(), ProcessEnv, queuePath))
}

// isTestBinary reports whether exe is a `go test` binary, which must never
// be started as a sender: it would run the tests again.
func isTestBinary(exe string) bool {
	base := strings.TrimSuffix(filepath.Base(exe), ".exe")
	return strings.HasSuffix(base, ".test")
}

// WaitLock takes the send lock of the queue at queuePath, polling while
// another sender holds it, until ctx ends.
func WaitLock(ctx context.Context, queuePath string) (*Lock, error) {
	for {
		l, err := TryLock(queuePath)
		if !errors.Is(err, ErrBusy) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
