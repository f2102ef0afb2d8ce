package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server/pgtest"
)

// exportSpan is a block of generated events of one project: n events over
// days whole UTC days from start, in groups of three that share their
// millisecond (so that the export's order falls back on event_id, across
// the pages it reads). Event i of the block (i counted from first, unique
// across blocks) gets a UUIDv7 of its millisecond whose next 12 bits are a
// hash of i, so that within a group the ids do not sort as i does, and
// whose last 62 bits are i, so that ids are unique.
type exportSpan struct {
	project int64
	first   int64
	n       int
	start   time.Time
	days    int
}

func (s exportSpan) step() int64 {
	return int64(s.days) * 24 * 3600 * 1000 / int64((s.n+2)/3)
}

// event returns the id and millisecond of the block's k-th event.
func (s exportSpan) event(k int) ([16]byte, int64) {
	ms := s.start.UnixMilli() + int64(k/3)*s.step()
	i := uint64(s.first) + uint64(k)
	r := (i * 2654435761 >> 7) & 0xfff
	var id [16]byte
	for j := 5; j >= 0; j-- {
		id[j] = byte(ms >> (8 * (5 - j)))
	}
	id[6], id[7] = 0x70|byte(r>>8), byte(r)
	id[8] = 0x80 | byte(i>>56)&0x3f
	for j := 15; j >= 9; j-- {
		id[j] = byte(i >> (8 * (15 - j)))
	}
	return id, ms
}

// query is the export's date range of the block.
func (s exportSpan) query() url.Values {
	return url.Values{"from": {s.start.Format(time.DateOnly)},
		"to": {s.start.AddDate(0, 0, s.days-1).Format(time.DateOnly)}}
}

// expected returns the hash of the block's first m event ids, one a line,
// in the export's order: by millisecond, then by id.
func (s exportSpan) expected(m int) uint64 {
	h := fnv.New64a()
	var group [][16]byte
	for k := 0; k < m; k += 3 {
		group = group[:0]
		for j := k; j < k+3 && j < s.n; j++ {
			id, _ := s.event(j)
			group = append(group, id)
		}
		slices.SortFunc(group, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		for _, id := range group[:min(len(group), m-k)] {
			h.Write([]byte(uuid.UUID(id).String()))
			h.Write([]byte{'\n'})
		}
	}
	return h.Sum64()
}

var exportMetadata = []string{
	`{"command":"deploy","flags":[],"args_count":0,"success":true,"error_kind":"","duration_ms":12,"exit_code":0}`,
	`{"command":"deploy","flags":["watch"],"args_count":1,"success":true,"error_kind":"","duration_ms":40,"exit_code":0}`,
	`{"command":"deploy","flags":["output","verbose"],"flag_values":{"output":"json"},"args_count":2,"success":false,"error_kind":"exit_error","duration_ms":7,"exit_code":1}`,
}

var exportColumnsCopy = []string{"project_id", "event_id", "occurred_at", "received_at", "service_name",
	"service_version", "event_type", "name", "success", "duration_ms", "exit_code", "error_kind", "user_id",
	"session_id", "sdk_name", "sdk_version", "os", "arch", "ci", "ci_name", "go_version", "metadata"}

// spanRows is a pgx.CopyFromSource of the events k in [next, end) of a
// block, made as they are sent.
type spanRows struct {
	s         exportSpan
	next, end int
	users     [][]byte
	vals      []any
}

func (r *spanRows) Next() bool { r.next++; return r.next <= r.end }
func (r *spanRows) Err() error { return nil }

func (r *spanRows) Values() ([]any, error) {
	k := r.next - 1
	id, ms := r.s.event(k)
	at := time.UnixMilli(ms).UTC()
	i := int(r.s.first) + k
	session := id
	session[15] ^= 0x5a
	var errorKind any
	if i%3 == 2 {
		errorKind = "exit_error"
	}
	r.vals = append(r.vals[:0], r.s.project, id, at, at.Add(2*time.Second), "demo-cli",
		"0."+strconv.Itoa(i%4)+".0", "command_executed", "deploy", i%3 != 2, int64(i%100), int32(i%3/2),
		errorKind, r.users[i%len(r.users)], session, "telemetry-kit-go", "0.1.0", "linux", "amd64", false, "",
		"go1.26.8", exportMetadata[i%3])
	return r.vals, nil
}

// loadSpan copies the block's events into the events table over parts
// connections at once.
func loadSpan(ctx context.Context, dbURL string, s exportSpan, parts int) error {
	users := make([][]byte, 1000)
	for u := range users {
		users[u] = bytes.Repeat([]byte{byte(u), byte(u >> 8)}, 16)
	}
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := s.n*p/parts, s.n*(p+1)/parts
		wg.Go(func() { errs[p] = copyRows(ctx, dbURL, &spanRows{s: s, next: lo, end: hi, users: users}) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copyRows copies rows into the events table over a connection of its own.
func copyRows(ctx context.Context, dbURL string, rows *spanRows) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	want := int64(rows.end - rows.next)
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"events"}, exportColumnsCopy, rows)
	if err == nil && n != want {
		err = fmt.Errorf("copied %d rows of %d", n, want)
	}
	return err
}

// exportStream checks an export as it arrives: each line (or CSV record)
// sorts after the one before, by timestamp and then event_id, and its
// event_id is added to a running hash.
type exportStream struct {
	from, to time.Time // the export's range
	n        int
	bytes    int64
	h        hash.Hash64
	lastAt   time.Time
	lastID   string
}

func newExportStream(s exportSpan) *exportStream {
	return &exportStream{from: s.start, to: s.start.AddDate(0, 0, s.days), h: fnv.New64a()}
}

func (st *exportStream) add(id, ts string) error {
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return fmt.Errorf("event %d: timestamp %q: %v", st.n, ts, err)
	}
	if st.n > 0 && (at.Before(st.lastAt) || at.Equal(st.lastAt) && id <= st.lastID) {
		return fmt.Errorf("event %d (%s, %s) does not sort after (%s, %s)", st.n, ts, id,
			st.lastAt.Format(time.RFC3339Nano), st.lastID)
	}
	if at.Before(st.from) || !at.Before(st.to) {
		return fmt.Errorf("event %d at %s, outside the range [%s, %s)", st.n, ts, st.from, st.to)
	}
	st.h.Write([]byte(id))
	st.h.Write([]byte{'\n'})
	st.n++
	st.lastAt, st.lastID = at, id
	return nil
}

// readNDJSON reads the lines of body as they arrive, up to limit of them
// (0: all). Every 10,000th line is decoded in full.
func (st *exportStream) readNDJSON(body io.Reader, limit int) error {
	br := bufio.NewReaderSize(body, 64<<10)
	const idField, tsField = `{"event_id":"`, `","timestamp":"`
	for read := 0; limit == 0 || read < limit; read++ {
		line, err := br.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after %d events: %v", st.n, err)
		}
		st.bytes += int64(len(line))
		if len(line) < len(idField)+36+len(tsField) || !bytes.HasPrefix(line, []byte(idField)) ||
			!bytes.HasPrefix(line[len(idField)+36:], []byte(tsField)) {
			return fmt.Errorf("event %d: %.200s", st.n, line)
		}
		rest := line[len(idField)+36+len(tsField):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return fmt.Errorf("event %d: %.200s", st.n, line)
		}
		if st.n%10000 == 0 {
			var ev struct {
				EventID   string         `json:"event_id"`
				UserID    string         `json:"user_id"`
				Name      string         `json:"name"`
				Metadata  map[string]any `json:"metadata"`
				SessionID string         `json:"session_id"`
			}
			if err := json.Unmarshal(line, &ev); err != nil || ev.Name != "deploy" || ev.Metadata["command"] != "deploy" ||
				len(ev.UserID) != 5+64 || len(ev.SessionID) != 36 {
				return fmt.Errorf("event %d: %v\n%s", st.n, err, line)
			}
		}
		if err := st.add(string(line[len(idField):len(idField)+36]), string(rest[:end])); err != nil {
			return err
		}
	}
	return nil
}

// getExport asks tk-server for an export with key and returns the
// response, whose body the caller reads and closes.
func getExport(t *testing.T, hc *http.Client, addr, key string, q url.Values) *http.Response {
	t.Helper()
	resp := doExport(t, hc, addr, key, q)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("export %s: %d %s", q.Encode(), resp.StatusCode, b)
	}
	return resp
}

// getExportStatus asks for an export and returns its status, closing the
// response.
func getExportStatus(t *testing.T, hc *http.Client, addr, key string, q url.Values) int {
	t.Helper()
	resp := doExport(t, hc, addr, key, q)
	resp.Body.Close()
	return resp.StatusCode
}

func doExport(t *testing.T, hc *http.Client, addr, key string, q url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v2/export?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sampleRSS samples the process's VmRSS every 50 ms until the returned
// function is called, which returns the largest sample.
func sampleRSS(pid int) func() int64 {
	var mu sync.Mutex
	peak := procStatus(pid, "VmRSS")
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				rss := procStatus(pid, "VmRSS")
				mu.Lock()
				peak = max(peak, rss)
				mu.Unlock()
			}
		}
	}()
	return func() int64 {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return max(peak, procStatus(pid, "VmRSS"))
	}
}

const mib = 1 << 20

// An export of millions of events streams from the tk-server process with
// the memory of one of a tenth of their number, and an export cut off and
// resumed with after= gives exactly the events of one not cut off. The
// events are copied into the database directly. TK_EXPORT_ROWS sets the
// larger export's events (default 2,000,000); the smaller one has a tenth.
func TestExportStreamsWithFlatRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("copies and exports millions of events")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads the process's memory from /proc")
	}
	bigN := envInt("TK_EXPORT_ROWS", 2_000_000)
	smallN := bigN / 10
	ctx := context.Background()
	testStart := time.Now()

	dbURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn")
	runCmd(t, ge, "migrate")
	p, other := createProject(t, ge, "export"), createProject(t, ge, "other")
	if p.ProjectID == 0 || other.ProjectID == 0 {
		t.Fatal("project create gave no project_id")
	}
	var rk struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(runCmd(t, ge, "key", "create", "--project", "export", "--kind", "read", "--json")), &rk); err != nil {
		t.Fatal(err)
	}

	today := time.Now().UTC().Truncate(24 * time.Hour)
	small := exportSpan{project: p.ProjectID, first: 0, n: smallN, start: today.AddDate(0, 0, -30), days: 2}
	big := exportSpan{project: p.ProjectID, first: int64(smallN), n: bigN, start: today.AddDate(0, 0, -21), days: 7}
	// Another project's events in the same days, which no export shows.
	noise := exportSpan{project: other.ProjectID, first: int64(smallN + bigN), n: 3000, start: big.start, days: 7}
	loadStart := time.Now()
	for _, s := range []exportSpan{small, big, noise} {
		if err := loadSpan(ctx, dbURL, s, 2); err != nil {
			t.Fatal(err)
		}
	}
	loadSecs := time.Since(loadStart).Seconds()
	t.Logf("copied %d events in %.1fs (%.0f rows/s)", smallN+bigN+noise.n, loadSecs,
		float64(smallN+bigN+noise.n)/loadSecs)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	vstart := time.Now()
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE events"); err != nil {
		t.Fatal(err)
	}
	t.Logf("VACUUM ANALYZE events: %.1fs", time.Since(vstart).Seconds())

	srv := startProcess(t, dbURL, []string{"TK_LOG_LEVEL=warn"})
	pid := srv.cmd.Process.Pid
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()

	// export streams the whole export of s, checking it, and returns its
	// stream and the peak RSS sampled meanwhile.
	export := func(s exportSpan) (*exportStream, int64) {
		t.Helper()
		st := newExportStream(s)
		stop := sampleRSS(pid)
		start := time.Now()
		resp := getExport(t, hc, srv.addr, rk.Key, s.query())
		err := st.readNDJSON(resp.Body, 0)
		resp.Body.Close()
		secs := time.Since(start).Seconds()
		peak := stop()
		if err != nil {
			t.Fatal(err)
		}
		if st.n != s.n {
			t.Fatalf("export of %d events gave %d", s.n, st.n)
		}
		if got, want := st.h.Sum64(), s.expected(s.n); got != want {
			t.Fatalf("export of %d events: ids hash %x, want %x", s.n, got, want)
		}
		t.Logf("export of %d events: %.2fs, %.0f events/s, %.1f MiB/s (%.1f MiB), tk-server peak RSS %.1f MiB",
			st.n, secs, float64(st.n)/secs, float64(st.bytes)/mib/secs, float64(st.bytes)/mib, float64(peak)/mib)
		return st, peak
	}

	idleRSS := procStatus(pid, "VmRSS")
	smallStream, smallPeak := export(small)
	smallHWM := procStatus(pid, "VmHWM")
	bigStream, bigPeak := export(big)
	bigHWM := procStatus(pid, "VmHWM")
	t.Logf("tk-server RSS: idle %.1f MiB; export of %d events peak %.1f MiB (VmHWM %.1f); of %d events peak %.1f MiB (VmHWM %.1f)",
		float64(idleRSS)/mib, small.n, float64(smallPeak)/mib, float64(smallHWM)/mib, big.n, float64(bigPeak)/mib, float64(bigHWM)/mib)
	const margin = 25 * mib
	if bigPeak > smallPeak+margin || bigHWM > smallHWM+margin {
		t.Errorf("memory grew with the export: peak RSS %.1f MiB (VmHWM %.1f) for %d events against %.1f MiB (VmHWM %.1f) for %d",
			float64(bigPeak)/mib, float64(bigHWM)/mib, big.n, float64(smallPeak)/mib, float64(smallHWM)/mib, small.n)
	}
	// Far below what holding the events would take.
	if bigHWM > max(bigStream.bytes/10, 64*mib) {
		t.Errorf("tk-server peak RSS %.1f MiB for an export of %.1f MiB", float64(bigHWM)/mib, float64(bigStream.bytes)/mib)
	}

	// Cut off after k events (not a multiple of the pages the server reads,
	// and within a group of events of one millisecond), then resumed with
	// after=: in full for the smaller export, which then equals the export
	// not cut off; for the larger one, for the next events.
	const k = 123_457
	resumed := func(s exportSpan, k, then int) *exportStream {
		t.Helper()
		st := newExportStream(s)
		resp := getExport(t, hc, srv.addr, rk.Key, s.query())
		err := st.readNDJSON(resp.Body, k)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.n != k {
			t.Fatalf("read %d events of the export, want %d", st.n, k)
		}
		q := s.query()
		q.Set("after", st.lastID)
		resp = getExport(t, hc, srv.addr, rk.Key, q)
		defer resp.Body.Close()
		if err := st.readNDJSON(resp.Body, then); err != nil {
			t.Fatal(err)
		}
		return st
	}
	ks := k
	if small.n <= k {
		ks = small.n/2 + 1
	}
	if small.n > 1 {
		st := resumed(small, ks, 0)
		if st.n != small.n || st.h.Sum64() != smallStream.h.Sum64() {
			t.Fatalf("export of %d events cut off after %d and resumed: %d events (ids hash %x), want %d (%x)",
				small.n, ks, st.n, st.h.Sum64(), small.n, smallStream.h.Sum64())
		}
		t.Logf("export of %d events cut off after %d and resumed: %d events, the same ids in the same order", small.n, ks, st.n)
	}
	if then := min(big.n-k, 300_000); then > 0 {
		st := resumed(big, k, then)
		if st.n != k+then || st.h.Sum64() != big.expected(k+then) {
			t.Fatalf("export of %d events cut off after %d and resumed: %d events (ids hash %x), want the first %d (%x)",
				big.n, k, st.n, st.h.Sum64(), k+then, big.expected(k+then))
		}
		t.Logf("export of %d events cut off after %d and resumed: the first %d events, the same ids in the same order", big.n, k, st.n)
	}

	// The smaller export as CSV: a header and a record per event.
	q := small.query()
	q.Set("format", "csv")
	resp := getExport(t, hc, srv.addr, rk.Key, q)
	defer resp.Body.Close()
	cr := csv.NewReader(bufio.NewReaderSize(resp.Body, 64<<10))
	cr.ReuseRecord = true
	cst := newExportStream(small)
	records := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("CSV record %d: %v", records, err)
		}
		records++
		if records == 1 {
			if len(rec) < 2 || rec[0] != "event_id" || rec[1] != "timestamp" {
				t.Fatalf("CSV header: %q", rec)
			}
			continue
		}
		if err := cst.add(rec[0], rec[1]); err != nil {
			t.Fatal(err)
		}
	}
	if records != small.n+1 || cst.h.Sum64() != small.expected(small.n) {
		t.Fatalf("CSV export: %d records, want %d (the header and %d events), ids hash %x, want %x",
			records, small.n+1, small.n, cst.h.Sum64(), small.expected(small.n))
	}
	t.Logf("CSV export of %d events: %d records; test took %.1fs", small.n, records, time.Since(testStart).Seconds())
}

// Clients that stop reading an export hold no database connection: with
// a pool of two and three exports stalled, queries and ingest are still
// answered at once, and no session sits in a transaction.
func TestStalledExportsHoldNoConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("copies and exports tens of megabytes")
	}
	ctx := context.Background()
	dbURL := pgtest.New(t)
	ge := env("TK_DATABASE_URL", dbURL, "TK_LOG_LEVEL", "warn")
	runCmd(t, ge, "migrate")
	p := createProject(t, ge, "export")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	s := exportSpan{project: p.ProjectID, n: 60_000, start: today.AddDate(0, 0, -3), days: 2}
	if err := loadSpan(ctx, dbURL, s, 2); err != nil {
		t.Fatal(err)
	}
	srv := startProcess(t, dbURL, []string{"TK_LOG_LEVEL=warn"}, "--max-conns", "2", "--rate-limit", "-1",
		"--max-exports", "3", "--max-queries", "4")
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()
	for range 3 {
		// Each reads the start of its export and then nothing more, until
		// the test ends: the server's writes block once the buffers on the
		// way are full.
		resp := getExport(t, hc, srv.addr, p.ReadKey, s.query())
		defer resp.Body.Close()
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	// A fourth export finds no export slot: refused at once, not queued.
	start := time.Now()
	if resp := getExportStatus(t, hc, srv.addr, p.ReadKey, s.query()); resp != http.StatusServiceUnavailable || time.Since(start) > 500*time.Millisecond {
		t.Errorf("an export beyond --max-exports: %d after %v, want 503 at once", resp, time.Since(start))
	}
	// The exports have stalled once tk-server uses no CPU for a while.
	for deadline := time.Now().Add(20 * time.Second); ; {
		cpu := procCPU(srv.cmd.Process.Pid)
		time.Sleep(300 * time.Millisecond)
		if procCPU(srv.cmd.Process.Pid) == cpu {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exports whose clients do not read did not stall")
		}
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var inTx int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&inTx); err != nil {
		t.Fatal(err)
	}
	if inTx != 0 {
		t.Errorf("%d sessions idle in a transaction while the exports' clients do not read", inTx)
	}
	qc := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("POST", "http://"+srv.addr+"/api/v2/query",
		strings.NewReader(`{"metrics": ["events"], "date_range": "30d"}`))
	req.Header.Set("Authorization", "Bearer "+p.ReadKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := qc.Do(req)
	if err != nil {
		t.Fatalf("a query while three exports are stalled: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a query while three exports are stalled: %d %s", resp.StatusCode, body)
	}
	b, _ := json.Marshal(map[string]any{"events": newEvents(10)})
	req, _ = http.NewRequest("POST", "http://"+srv.addr+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.WriteKey)
	req.Header.Set("Content-Type", "application/json")
	if resp, err = qc.Do(req); err != nil {
		t.Fatalf("ingest while three exports are stalled: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest while three exports are stalled: %d %s", resp.StatusCode, body)
	}
}
