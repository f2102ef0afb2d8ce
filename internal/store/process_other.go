//go:build windows || plan9

package store

import "time"

// ProcessAlive reports whether a process with this pid runs. Here it
// cannot be asked without more dependencies: every process counts as alive,
// and a run file counts as ended once it is a day old (runFileStale).
func ProcessAlive(pid int) bool { return pid > 0 }

// runFileStale reports whether a run file age nanoseconds old counts as
// ended although its process seems to run.
func runFileStale(age int64) bool { return age > int64(staleRun/time.Nanosecond) }
