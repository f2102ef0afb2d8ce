//go:build linux

package sender_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/sender"
	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// cliEnv is an isolated environment for one test's invocations of the CLI.
type cliEnv struct {
	t        testing.TB
	dir      string
	queue    string
	endpoint string
	extra    map[string]string
}

func newCLIEnv(t testing.TB, endpoint string) *cliEnv {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("process tests find sender processes through /proc")
	}
	dir := t.TempDir()
	e := &cliEnv{t: t, dir: dir, queue: filepath.Join(dir, "cache", "queue.db"), endpoint: endpoint,
		extra: map[string]string{"TKCLI_MIN_EVENTS": "1", "TKCLI_SENDER_TIMEOUT": "4s",
			"TKCLI_LOG": filepath.Join(dir, "client.log")}}
	t.Cleanup(func() {
		e.killSenders()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "client.log"))
			t.Logf("client log:\n%s", log)
		}
	})
	return e
}

func (e *cliEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DO_NOT_TRACK" || k == sender.ProcessEnv || strings.HasPrefix(k, "TKCLI") || k == "HOME" ||
			strings.HasPrefix(k, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+e.dir, "XDG_CONFIG_HOME="+filepath.Join(e.dir, "config"), "XDG_CACHE_HOME="+filepath.Join(e.dir, "cache"),
		"TKCLI_ENDPOINT="+e.endpoint, "TKCLI_QUEUE="+e.queue, "TKCLI_CONFIG="+filepath.Join(e.dir, "config", "tkcli"))
	for k, v := range e.extra {
		env = append(env, k+"="+v)
	}
	return env
}

// run invokes the CLI recording n events, as a user would, with its output
// piped: it returns when the CLI exited and its output was read.
func (e *cliEnv) run(n int) {
	e.t.Helper()
	cmd := exec.Command(tkcliPath, strconv.Itoa(n))
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("tkcli: %v\n%s", err, errb.String())
	}
	if out.String() != "done\n" || errb.Len() != 0 {
		e.t.Fatalf("tkcli output changed: stdout %q, stderr %q", out.String(), errb.String())
	}
}

// senders lists the pids of live sender processes for this queue.
func (e *cliEnv) senders() []int {
	marker := []byte(sender.ProcessEnv + "=" + e.queue + "\x00")
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil || !bytes.Contains(env, marker) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); err == nil && isZombie(st) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// waitSenders waits until no sender process is left, at most d.
func (e *cliEnv) waitSenders(d time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if len(e.senders()) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("sender processes still running after %v: %v", d, e.senders())
}

// waitSender waits for a sender process to appear and returns its pid.
func (e *cliEnv) waitSender(d time.Duration) int {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p := e.senders(); len(p) > 0 {
			return p[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no sender process started within %v", d)
	return 0
}

func (e *cliEnv) killSenders() {
	for _, pid := range e.senders() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (e *cliEnv) state() sender.State {
	e.t.Helper()
	q, err := store.Open(e.queue, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := sender.LoadState(context.Background(), q)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// describe tells the queue's length and the sender's state, for failures.
func (e *cliEnv) describe() string {
	q, err := store.Open(e.queue, store.Options{})
	if err != nil {
		return err.Error()
	}
	sum, err := q.Summary(context.Background(), sender.StateKey)
	return fmt.Sprintf("queue: %d events, state %s, err %v", sum.Len, sum.Meta, err)
}

func (e *cliEnv) queueLen() int {
	e.t.Helper()
	q, err := store.Open(e.queue, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := q.Len(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestCLIOfflineThenRecoveryDeliversEveryEventOnce(t *testing.T) {
	// Refused: nothing listens.
	e := newCLIEnv(t, "http://"+refusedAddr(t))
	for range 4 {
		e.run(3)
	}
	e.waitSenders(10 * time.Second)

	// Blackholed: the server accepts and never answers. The clock moves past
	// the backoff the refused attempt scheduled.
	e.endpoint = "http://" + blackhole(t)
	e.extra["TKCLI_CLOCK_OFFSET"] = "2h"
	e.run(3)
	pid := e.waitSender(2 * time.Second)
	for range 3 {
		e.run(3) // while the sender hangs: no second sender, no wait
	}
	if p := e.senders(); len(p) != 1 || p[0] != pid {
		t.Fatalf("senders while one hangs: %v, want only %d", p, pid)
	}
	e.waitSenders(15 * time.Second)
	// The run's budget (SenderTimeout 4s) ended the hanging request, not
	// the 10s attempt timeout.
	if st := e.state(); st.LastResult != "timeout" || st.NextAttempt.IsZero() {
		t.Fatalf("state after the blackholed run = %+v, want a timeout with a next attempt", st)
	}
	if n := e.queueLen(); n != 24 {
		t.Fatalf("queue holds %d events, want all 24", n)
	}

	// The server is back, later.
	srv := newCollector(t)
	e.endpoint = srv.URL()
	e.extra["TKCLI_CLOCK_OFFSET"] = "50h"
	e.run(1)
	e.waitSenders(10 * time.Second)
	stored, dupes, _, _ := srv.counts()
	if stored != 25 || dupes != 0 {
		t.Fatalf("server stored %d events with %d re-sends, want 25 and 0", stored, dupes)
	}
	if n := e.queueLen(); n != 0 {
		t.Fatalf("queue holds %d events after delivery", n)
	}
}

func TestCLIHostNeverWaitsForTheSender(t *testing.T) {
	e := newCLIEnv(t, "http://"+blackhole(t))
	e.extra["TKCLI_SENDER_TIMEOUT"] = "20s"
	// run returns once the CLI exited and its piped output reached EOF: the
	// sender, still waiting on the server, holds none of the pipes.
	e.run(2)
	if len(e.senders()) != 1 {
		t.Fatalf("want the sender still waiting on the server after the host returned, got %v (%s)", e.senders(), e.describe())
	}
	e.killSenders()
	e.waitSenders(5 * time.Second)
}

func TestCLIKillDashNineMidRequestLosesAndDoubleCountsNothing(t *testing.T) {
	srv := newCollector(t)
	release := make(chan struct{})
	inFlight := make(chan struct{}, 1)
	first := true
	var mu sync.Mutex
	srv.setHook(func(n int, r received, w http.ResponseWriter) bool {
		mu.Lock()
		hang := first
		first = false
		mu.Unlock()
		if !hang {
			return false
		}
		// The server commits the batch, then the sender dies before it
		// hears the answer.
		srv.mu.Lock()
		for _, id := range r.IDs {
			srv.stored[id] = 1
		}
		srv.mu.Unlock()
		inFlight <- struct{}{}
		<-release
		return true
	})
	t.Cleanup(func() { close(release) })
	e := newCLIEnv(t, srv.URL())
	e.extra["TKCLI_SENDER_TIMEOUT"] = "20s"
	e.run(5)
	pid := e.waitSender(2 * time.Second)
	select {
	case <-inFlight:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender's request never arrived")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitSenders(5 * time.Second)
	if n := e.queueLen(); n != 5 {
		t.Fatalf("queue holds %d after the kill, want the 5 unacknowledged events", n)
	}

	// A later invocation starts a new sender, which re-sends the batch.
	e.extra["TKCLI_CLOCK_OFFSET"] = "1h"
	e.run(2)
	e.waitSenders(10 * time.Second)
	stored, dupes, _, _ := srv.counts()
	if stored != 7 || dupes != 5 {
		t.Fatalf("server stored %d with %d duplicates, want 7 stored and the 5 re-sent counted as duplicates", stored, dupes)
	}
	if n := e.queueLen(); n != 0 {
		t.Fatalf("queue holds %d", n)
	}
}

func TestCLIConcurrentInvocationsStartOneSenderAtATime(t *testing.T) {
	srv := newCollector(t)
	srv.setHook(func(int, received, http.ResponseWriter) bool {
		time.Sleep(100 * time.Millisecond)
		return false
	})
	e := newCLIEnv(t, srv.URL())
	stop := make(chan struct{})
	maxSeen := make(chan int, 1)
	go func() {
		m := 0
		for {
			select {
			case <-stop:
				maxSeen <- m
				return
			default:
			}
			m = max(m, len(e.senders()))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.run(2)
		}()
	}
	wg.Wait()
	e.waitSenders(10 * time.Second)
	// Whatever arrived after the last sender's final read is sent by the next.
	e.extra["TKCLI_CLOCK_OFFSET"] = "1h"
	e.run(1)
	e.waitSenders(10 * time.Second)
	close(stop)
	if m := <-maxSeen; m > 1 {
		t.Fatalf("%d sender processes ran at once for one queue", m)
	}
	if stored, dupes, _, _ := srv.counts(); stored != 13 || dupes != 0 {
		t.Fatalf("server stored %d with %d re-sends, want 13 and 0", stored, dupes)
	}
}

func TestSenderProcessRespectsDoNotTrackAndPrintsNothing(t *testing.T) {
	srv := newCollector(t)
	e := newCLIEnv(t, srv.URL())
	e.extra["TKCLI_MIN_EVENTS"] = "1000" // record without starting a sender
	q, err := store.Open(e.queue, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	markDelivered(t, q) // not a first delivery, which is due at once
	e.run(3)
	if len(e.senders()) != 0 {
		t.Fatal("a sender started although no send was due")
	}
	runSender := func(extra ...string) (string, error) {
		e.extra["TKCLI_MIN_EVENTS"] = "1"
		cmd := exec.Command(tkcliPath)
		cmd.Env = append(e.environ(), append(extra, sender.ProcessEnv+"="+e.queue)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := runSender("DO_NOT_TRACK=1")
	if err != nil || out != "" {
		t.Fatalf("sender with DO_NOT_TRACK: %v, output %q", err, out)
	}
	if _, _, reqs, _ := srv.counts(); reqs != 0 || e.queueLen() != 3 {
		t.Fatalf("sender sent %d requests with DO_NOT_TRACK set", reqs)
	}
	out, err = runSender()
	if err != nil || out != "" {
		t.Fatalf("sender: %v, output %q", err, out)
	}
	if stored, _, _, _ := srv.counts(); stored != 3 || e.queueLen() != 0 {
		t.Fatalf("sender delivered %d of 3", stored)
	}
	if p := e.senders(); len(p) != 0 {
		t.Fatalf("the sender started another sender: %v", p)
	}
}

// A command run, begun and finished as the adapters record it, reaches the
// server through the detached sender, or before the CLI returns with
// SyncFlushAtExit: the event built from the runs log, with its outcome.
func TestCommandRunsAreSent(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync %v", sync), func(t *testing.T) {
			srv := newCollector(t)
			e := newCLIEnv(t, srv.URL())
			e.extra["TKCLI_COMMAND"] = "1"
			if sync {
				e.extra["TKCLI_SYNC"] = "1"
			}
			e.run(2)
			e.run(3)
			if !sync {
				e.waitSenders(10 * time.Second)
				if stored, _, _, _ := srv.counts(); stored < 2 {
					e.run(4) // the first send took the first run only
					e.waitSenders(10 * time.Second)
				}
			}
			var args []float64
			for _, r := range srv.requests() {
				for _, ev := range r.Events {
					md, _ := ev["metadata"].(map[string]any)
					if ev["event_type"] != "command_executed" || md["command"] != "build" || md["success"] != true ||
						md["duration_ms"] != float64(3) || md["error_kind"] != "" {
						t.Fatalf("event %v", ev)
					}
					args = append(args, md["args_count"].(float64))
				}
			}
			// In either order: a run that finds the runs log locked by a
			// sender's reap queues its event itself, ahead of one reaped.
			slices.Sort(args)
			if len(args) < 2 || args[0] != 2 || args[1] != 3 {
				t.Fatalf("the server has the runs with args %v, want 2 and 3\n%s", args, srv)
			}
		})
	}
}

// Many command runs finishing at once, while senders reap the runs log
// and send: every run reaches the server once, with its outcome, whether
// it finished into the runs log or, finding it locked, queued its event
// itself.
func TestConcurrentCommandRunsAreEachSentOnce(t *testing.T) {
	srv := newCollector(t)
	e := newCLIEnv(t, srv.URL())
	e.extra["TKCLI_COMMAND"] = "1"
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.run(i + 1) // the run's argument count names it
		}()
	}
	wg.Wait()
	e.waitSenders(10 * time.Second)
	// Whatever arrived after the last sender's final read is sent by the next.
	e.extra["TKCLI_CLOCK_OFFSET"] = "1h"
	e.run(n + 1)
	e.waitSenders(10 * time.Second)
	seen := map[float64]int{}
	for _, r := range srv.requests() {
		for _, ev := range r.Events {
			md, _ := ev["metadata"].(map[string]any)
			if md["success"] != true || md["duration_ms"] != float64(3) {
				t.Fatalf("event without its outcome: %v", ev)
			}
			seen[md["args_count"].(float64)]++
		}
	}
	for i := 1; i <= n+1; i++ {
		if seen[float64(i)] != 1 {
			t.Errorf("run %d sent %d times, want once", i, seen[float64(i)])
		}
	}
	if stored, dupes, _, _ := srv.counts(); stored != n+1 || dupes != 0 {
		t.Fatalf("server stored %d with %d re-sends, want %d and 0", stored, dupes, n+1)
	}
}

func TestCLISyncFlushAtExitSendsBeforeReturning(t *testing.T) {
	srv := newCollector(t)
	e := newCLIEnv(t, srv.URL())
	e.extra["TKCLI_SYNC"] = "1"
	e.run(4)
	if stored, _, _, _ := srv.counts(); stored != 4 {
		t.Fatalf("server has %d events when the CLI returned, want 4", stored)
	}
	if len(e.senders()) != 0 {
		t.Fatal("a detached sender started with SyncFlushAtExit")
	}
}

// An author trying the SDK with the default schedule (a send due at 100
// events or after an hour) sees the first run's event on the server at
// once; after that first delivery the schedule applies.
func TestFirstEventSentAtOnce(t *testing.T) {
	srv := newCollector(t)
	e := newCLIEnv(t, srv.URL())
	delete(e.extra, "TKCLI_MIN_EVENTS") // the default schedule
	e.run(1)
	e.waitSenders(10 * time.Second)
	if stored, _, _, _ := srv.counts(); stored != 1 {
		t.Fatalf("server stored %d events after the first run, want 1", stored)
	}
	e.run(2)
	e.waitSenders(10 * time.Second)
	if stored, _, _, _ := srv.counts(); stored != 1 {
		t.Fatalf("server stored %d events after two more runs, want still 1 (not due yet)", stored)
	}
}
