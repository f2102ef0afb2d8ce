//go:build plan9 || solaris || aix

package store

import "os"

// tryLockFile and unlockFile are no-ops where bbolt locks with fcntl: a lock
// taken on a second descriptor in this process would be released when
// either is closed.
func tryLockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }

// journalSupported is false here: without a lock of its own the journal
// could be truncated under a writer, so Append always uses the queue file.
const journalSupported = false
