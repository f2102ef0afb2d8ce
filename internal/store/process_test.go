package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/internal/store"
)

// Child processes: the test binary re-executes itself with STORE_TEST_CHILD
// set, and TestMain runs the child's part instead of the tests.
const (
	envChild  = "STORE_TEST_CHILD"
	envPath   = "STORE_TEST_PATH"
	envPrefix = "STORE_TEST_PREFIX"
	envCount  = "STORE_TEST_COUNT"
	// envJournal set to 1 makes the children append with Options.Journal.
	envJournal = "STORE_TEST_JOURNAL"
)

// readOptions give the queue room for far more events than any of these
// tests appends: a child that appends until killed can append thousands an
// iteration on a fast machine, and past the default of 10,000 the queue
// drops the oldest by design. The tests read the children's queue with them.
var readOptions = store.Options{MaxEvents: 1 << 20, MaxBytes: 1 << 28}

// childOptions are the Options of the children: readOptions, with the
// journal in the journal subtests.
func childOptions() store.Options {
	o := readOptions
	o.Journal = os.Getenv(envJournal) == "1"
	return o
}

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		os.Exit(m.Run())
	case "append":
		os.Exit(childAppend())
	case "append-until-killed":
		os.Exit(childAppendUntilKilled())
	case "write-until-killed":
		os.Exit(childWriteUntilKilled())
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode")
		os.Exit(2)
	}
}

// childAppend appends STORE_TEST_COUNT events one by one and prints the
// longest time any Append took, in nanoseconds, and how many waited long
// enough to have gone to the spool.
func childAppend() int {
	q, err := store.Open(os.Getenv(envPath), childOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv(envCount))
	prefix := os.Getenv(envPrefix)
	var maxWait time.Duration
	slow := 0 // Appends that waited out the lock and went to the spool
	for i := range n {
		start := time.Now()
		err := q.Append(context.Background(), store.Record{
			ID:   fmt.Sprintf("%s-%d", prefix, i),
			Data: []byte(fmt.Sprintf(`{"child":%q,"n":%d}`, prefix, i)),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			return 1
		}
		took := time.Since(start)
		maxWait = max(maxWait, took)
		if took >= store.DefaultLockTimeout/2 {
			slow++
		}
	}
	fmt.Printf("maxwait %d slow %d\n", maxWait.Nanoseconds(), slow)
	return 0
}

// childAppendUntilKilled appends events until it is killed, printing
// "begin <id>" before each Append and "acked <id>" after it returned nil.
func childAppendUntilKilled() int {
	q, err := store.Open(os.Getenv(envPath), childOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	prefix := os.Getenv(envPrefix)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		fmt.Printf("begin %s\n", id)
		if err := q.Append(context.Background(), store.Record{ID: id, Data: []byte(`{"id":"` + id + `"}`)}); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			return 1
		}
		fmt.Printf("acked %s\n", id)
	}
}

// childWriteUntilKilled changes the queue file in every way a sender and a
// library-mode writer do (appends, meta values, acknowledgements) until it
// is killed.
func childWriteUntilKilled() int {
	q, err := store.Open(os.Getenv(envPath), store.Options{MaxEvents: 500})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	prefix := os.Getenv(envPrefix)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		var err error
		switch i % 3 {
		case 0, 1:
			err = q.Append(ctx, store.Record{ID: id, Data: []byte(`{"id":"` + id + `"}`)})
		case 2:
			err = q.PutMeta(ctx, "state", []byte(id))
		}
		if err == nil && i%10 == 9 {
			var b store.Batch
			if b, err = q.Peek(ctx, 3, 0); err == nil {
				ids := make([]string, len(b.Records))
				for j, r := range b.Records {
					ids[j] = r.ID
				}
				err = q.Ack(ctx, ids, b.Dropped)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			return 1
		}
		if i == 3 {
			fmt.Println("writing")
		}
		// Rest now and then, so that a kill also falls where the summary
		// file of the last write is there: in a tight loop the next write
		// removes it at once.
		if i%2 == 1 {
			time.Sleep(time.Millisecond)
		}
	}
}

func childCmd(t *testing.T, mode, path, prefix string, count int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	journal := "0"
	if strings.Contains(t.Name(), "/journal") {
		journal = "1"
	}
	cmd.Env = append(os.Environ(),
		envJournal+"="+journal,
		envChild+"="+mode,
		envPath+"="+path,
		envPrefix+"="+prefix,
		envCount+"="+strconv.Itoa(count),
	)
	return cmd
}

// runAppendChildren runs procs "append" children at once on path, each
// appending perProc events with IDs p<NN>-<i>, and returns the longest time
// any Append took in any of them.
func runAppendChildren(t *testing.T, path string, procs, perProc int) time.Duration {
	t.Helper()
	type result struct {
		out  []byte
		err  error
		name string
	}
	results := make([]result, procs)
	var wg sync.WaitGroup
	for p := range procs {
		name := fmt.Sprintf("p%02d", p)
		cmd := childCmd(t, "append", path, name, perProc)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, stderr.String())
			}
			results[p] = result{out, err, name}
		}()
	}
	wg.Wait()
	var worst time.Duration
	slowTotal := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("child %s: %v", r.name, r.err)
		}
		var ns int64
		var slow int
		if _, err := fmt.Sscanf(string(r.out), "maxwait %d slow %d", &ns, &slow); err != nil {
			t.Fatalf("child %s output %q: %v", r.name, r.out, err)
		}
		worst = max(worst, time.Duration(ns))
		slowTotal += slow
	}
	t.Logf("%d processes: longest Append %v; %d Appends waited out the lock (spooled)", procs, worst, slowTotal)
	return worst
}

// checkAllOnce checks that the queue at path holds exactly the events of
// runAppendChildren, each once, each child's in its order.
func checkAllOnce(t *testing.T, path string, procs, perProc int) {
	t.Helper()
	q, err := store.Open(path, readOptions)
	if err != nil {
		t.Fatal(err)
	}
	if n := mustLen(t, q); n != procs*perProc {
		t.Fatalf("Len = %d, want %d", n, procs*perProc)
	}
	ids := allIDs(t, q)
	seen := map[string]int{}
	lastPerChild := map[string]int{}
	for _, id := range ids {
		seen[id]++
		child, nStr, _ := strings.Cut(id, "-")
		n, _ := strconv.Atoi(nStr)
		if last, ok := lastPerChild[child]; ok && n < last {
			t.Errorf("child %s: event %d queued after event %d", child, n, last)
		}
		lastPerChild[child] = n
	}
	for p := range procs {
		for i := range perProc {
			id := fmt.Sprintf("p%02d-%d", p, i)
			if seen[id] != 1 {
				t.Errorf("event %s stored %d times", id, seen[id])
			}
		}
	}
	if len(ids) != procs*perProc {
		t.Errorf("%d records, want %d", len(ids), procs*perProc)
	}
}

func TestManyProcessesRecoverCorruptFileOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes")
	}
	const procs, perProc = 8, 10
	path := filepath.Join(t.TempDir(), "queue.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("garbage!", 2048)), 0o600); err != nil {
		t.Fatal(err)
	}
	if worst := runAppendChildren(t, path, procs, perProc); worst > 4*store.DefaultLockTimeout {
		t.Errorf("an Append took %v", worst)
	}
	checkAllOnce(t, path, procs, perProc)
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 1 {
		t.Fatalf("moved-aside files %v, want exactly the one garbage file", moved)
	}
}

// Subtests "queue-file" and "journal" run the children without and with
// Options.Journal (childCmd looks at the subtest's name).
func TestManyProcessesAppendAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 32 processes")
	}
	for _, mode := range []string{"queue-file", "journal"} {
		t.Run(mode, func(t *testing.T) {
			const procs, perProc = 32, 25
			path := filepath.Join(t.TempDir(), "queue.db")
			worst := runAppendChildren(t, path, procs, perProc)
			if bound := 4 * store.DefaultLockTimeout; worst > bound {
				t.Errorf("an Append took %v, beyond %v", worst, bound)
			}
			checkAllOnce(t, path, procs, perProc)
		})
	}
}

func TestKill9NeverLosesOrDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes in a loop")
	}
	for _, mode := range []string{"queue-file", "journal"} {
		t.Run(mode, testKill9)
	}
}

func testKill9(t *testing.T) {
	const iterations, children = 20, 2
	path := filepath.Join(t.TempDir(), "queue.db")
	acked := map[string]bool{}
	begun := map[string]bool{}
	rng := rand.New(rand.NewPCG(1, 2))

	for it := range iterations {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for c := range children {
			cmd := childCmd(t, "append-until-killed", path, fmt.Sprintf("i%02dc%d", it, c), 0)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The random delay runs from the child's first Append, so that
			// a slow start does not make an iteration test nothing.
			delay := time.Duration(5+rng.IntN(100)) * time.Millisecond
			wg.Add(1)
			go func() {
				defer wg.Done()
				kill := func() { cmd.Process.Signal(syscall.SIGKILL) }
				backstop := time.AfterFunc(30*time.Second, kill)
				defer backstop.Stop()
				var timer *time.Timer
				defer func() {
					if timer != nil {
						timer.Stop()
					}
				}()
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if timer == nil {
						timer = time.AfterFunc(delay, kill)
					}
					kind, id, _ := strings.Cut(sc.Text(), " ")
					mu.Lock()
					switch kind {
					case "begin":
						begun[id] = true
					case "acked":
						acked[id] = true
					}
					mu.Unlock()
				}
				cmd.Wait()
			}()
		}
		wg.Wait()

		// The queue reopens; every acknowledged event is there once; nothing
		// is there that was not at least begun.
		q, err := store.Open(path, readOptions)
		if err != nil {
			t.Fatal(err)
		}
		ids := allIDs(t, q)
		if len(ids) > readOptions.MaxEvents/2 {
			t.Fatalf("iteration %d: %d events stored, too near the cap of %d for this test to hold", it, len(ids), readOptions.MaxEvents)
		}
		stored := map[string]int{}
		for _, id := range ids {
			stored[id]++
			if stored[id] > 1 {
				t.Fatalf("iteration %d: %s stored twice", it, id)
			}
			if !begun[id] {
				t.Fatalf("iteration %d: %s stored but never appended", it, id)
			}
		}
		for id := range acked {
			if stored[id] != 1 {
				t.Fatalf("iteration %d: acknowledged %s lost", it, id)
			}
		}
		inFlight := len(begun) - len(acked)
		if len(ids) < len(acked) || len(ids) > len(acked)+inFlight {
			t.Fatalf("iteration %d: %d stored, %d acknowledged, %d in flight", it, len(ids), len(acked), inFlight)
		}
		if n := mustLen(t, q); n != len(ids) {
			t.Fatalf("iteration %d: Len = %d, All has %d", it, n, len(ids))
		}
	}
	if len(acked) < iterations {
		t.Fatalf("only %d events acknowledged in %d iterations: children did not run", len(acked), iterations)
	}
	t.Logf("%d events acknowledged, %d begun, across %d kills", len(acked), len(begun), iterations*children)
	if leftovers, _ := filepath.Glob(path + ".corrupt-*"); len(leftovers) > 0 {
		t.Errorf("kill -9 left a file that had to be moved aside: %v", leftovers)
	}
}

// A process killed at any point while it writes the queue file never leaves
// a summary file that disagrees with the queue file: after each kill,
// Summary gives what a read of the queue file gives.
func TestSummaryFileAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes in a loop")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := store.Open(path, store.Options{MaxEvents: 500})
	if err != nil {
		t.Fatal(err)
	}
	const iterations = 30
	usedSum := 0
	for it := range iterations {
		cmd := childCmd(t, "write-until-killed", path, fmt.Sprintf("k%02d", it), 0)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Once the child is writing, kill it at a random point.
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("iteration %d: the child did not start writing: %v", it, err)
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		_, statErr := os.Stat(path + ".sum")
		cached, err := q.Summary(ctx, "state")
		if err != nil {
			t.Fatalf("iteration %d: Summary: %v", it, err)
		}
		if statErr == nil {
			usedSum++
		}
		os.Remove(path + ".sum")
		fresh, err := q.Summary(ctx, "state")
		if err != nil {
			t.Fatal(err)
		}
		if cached.Len != fresh.Len || cached.Dropped != fresh.Dropped || cached.Oldest.ID != fresh.Oldest.ID ||
			string(cached.Meta) != string(fresh.Meta) {
			t.Fatalf("iteration %d: Summary after kill -9 = %+v, the queue file says %+v", it, cached, fresh)
		}
	}
	t.Logf("%d kills, a summary file was there after %d", iterations, usedSum)
	if usedSum == 0 {
		t.Error("no kill left a summary file: the test did not check one")
	}
}
