package sender_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// received is one request as the collector saw it.
type received struct {
	IDs      []string
	Events   []map[string]any // as sent
	Dropped  uint64
	Header   http.Header
	Gzipped  bool
	BodySize int
}

// collector is a collection server for tests: it decodes batches as the
// protocol says, de-duplicates by event_id and answers 200, unless hook
// answers first (hook returns true when it wrote a response).
type collector struct {
	t  testing.TB
	mu sync.Mutex
	// stored counts each event_id stored (always 1); dupes counts re-sends.
	stored   map[string]int
	dupes    int
	reqs     []received
	dropped  uint64
	hook     func(n int, r received, w http.ResponseWriter) bool
	rejectFn func(id string) string // a non-empty reason rejects the event in a 200
	srv      *httptest.Server
}

func newCollector(t testing.TB) *collector {
	c := &collector{t: t, stored: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) URL() string { return c.srv.URL }

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/events" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	rec := received{Header: r.Header.Clone()}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
			return
		}
		body, rec.Gzipped = zr, true
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, `{"error":"read"}`, http.StatusBadRequest)
		return
	}
	rec.BodySize = len(raw)
	var batch struct {
		Events  []json.RawMessage `json:"events"`
		Dropped uint64            `json:"dropped"`
	}
	if err := json.Unmarshal(raw, &batch); err != nil || batch.Events == nil {
		c.record(rec)
		http.Error(w, `{"error":"malformed"}`, http.StatusBadRequest)
		return
	}
	rec.Dropped = batch.Dropped
	ids := make([]string, len(batch.Events))
	for i, e := range batch.Events {
		var ev map[string]any
		if err := json.Unmarshal(e, &ev); err != nil {
			c.record(rec)
			http.Error(w, `{"error":"malformed event"}`, http.StatusBadRequest)
			return
		}
		ids[i], _ = ev["event_id"].(string)
		rec.Events = append(rec.Events, ev)
	}
	rec.IDs = ids
	n := c.record(rec)
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	if hook != nil && hook(n, rec, w) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped += batch.Dropped
	type rejection struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	}
	out := struct {
		Accepted   int         `json:"accepted"`
		Duplicates int         `json:"duplicates"`
		Rejected   []rejection `json:"rejected"`
	}{Rejected: []rejection{}}
	for i, id := range ids {
		if c.rejectFn != nil {
			if reason := c.rejectFn(id); reason != "" {
				out.Rejected = append(out.Rejected, rejection{i, reason})
				continue
			}
		}
		if c.stored[id] > 0 {
			out.Duplicates++
			c.dupes++
			continue
		}
		c.stored[id] = 1
		out.Accepted++
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// setHook makes hook answer requests first (see collector).
func (c *collector) setHook(hook func(n int, r received, w http.ResponseWriter) bool) {
	c.mu.Lock()
	c.hook = hook
	c.mu.Unlock()
}

// setReject makes the collector reject the events for which fn gives a reason.
func (c *collector) setReject(fn func(id string) string) {
	c.mu.Lock()
	c.rejectFn = fn
	c.mu.Unlock()
}

func (c *collector) record(r received) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
	return len(c.reqs)
}

func (c *collector) counts() (stored, dupes, requests int, dropped uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stored), c.dupes, len(c.reqs), c.dropped
}

func (c *collector) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stored[id] > 0
}

func (c *collector) requests() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.reqs...)
}

func (c *collector) String() string {
	s, d, r, dr := c.counts()
	return fmt.Sprintf("stored=%d dupes=%d requests=%d dropped=%d", s, d, r, dr)
}
