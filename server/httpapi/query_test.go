package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
)

// queryResp is a query API answer.
type queryResp struct {
	Status  int
	Header  http.Header
	Body    []byte
	Results []struct {
		Dimensions []any `json:"dimensions"`
		Metrics    []any `json:"metrics"`
		Comparison *struct {
			Metrics []any `json:"metrics"`
			Change  []any `json:"change"`
		} `json:"comparison"`
	} `json:"results"`
	Meta  map[string]any `json:"meta"`
	Query map[string]any `json:"query"`
	Error string         `json:"error"`
}

// do sends a request to the query API with key, and decodes a JSON answer.
func (e *env) do(method, path, key, body string, headers ...string) queryResp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := queryResp{Status: resp.StatusCode, Header: resp.Header}
	r.Body, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(r.Body, &r); err != nil {
			e.t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, resp.StatusCode, r.Body, err)
		}
	}
	return r
}

func (e *env) query(body string, headers ...string) queryResp {
	e.t.Helper()
	return e.do("POST", "/api/v2/query", e.readKey, body, headers...)
}

// seed posts n command events through the ingest, command i%3 and OS
// i%2, at a minute's spacing back from now.
func (e *env) seed(n int) {
	e.t.Helper()
	var evs []map[string]any
	for i := 0; i < n; i++ {
		ev := event()
		ev["timestamp"] = time.Now().UTC().Add(-time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05.000Z")
		ev["metadata"].(map[string]any)["command"] = []string{"build", "deploy", "=cmd|' /C calc'!A0"}[i%3]
		ev["env"].(map[string]any)["os"] = []string{"linux", "darwin"}[i%2]
		evs = append(evs, ev)
	}
	for i := 0; i < len(evs); i += 100 {
		if r := e.post(batch(evs[i:min(i+100, len(evs))]...)); r.Status != 200 {
			e.t.Fatalf("ingest: %d %s", r.Status, r.Body)
		}
	}
}

func TestQueryAuth(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	e.seed(3)
	body := `{"metrics": ["events"], "date_range": "7d"}`
	if r := e.query(body); r.Status != 200 || r.Results[0].Metrics[0] != float64(3) {
		t.Fatalf("read key: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct {
		name, key string
		status    int
		msg       string
	}{
		{"no key", "", 401, "missing read key"},
		{"write key", e.writeKey, 403, "write key cannot read"},
		{"made-up read key", "tk_r_" + strings.Repeat("A", 43), 401, "unknown key"},
		{"malformed", "tk_r_short", 401, "unknown key"},
	} {
		r := e.do("POST", "/api/v2/query", c.key, body)
		if r.Status != c.status || !strings.Contains(r.Error, c.msg) {
			t.Errorf("%s: %d %q, want %d %q", c.name, r.Status, r.Error, c.status, c.msg)
		}
		if c.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
	// A revoked read key is refused.
	rk, k, _ := server.NewKey(server.KeyRead)
	k.ProjectID = e.projectID
	k, err := e.db.CreateKey(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/api/v2/query", rk, body); r.Status != 200 {
		t.Fatalf("new read key: %d %s", r.Status, r.Body)
	}
	if err := e.db.RevokeKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	// Refused as soon as the server hears of the change.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.do("POST", "/api/v2/query", rk, body)
		if r.Status == 403 && strings.Contains(r.Error, "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked read key, 5 s later: %d %s", r.Status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The export takes the same keys.
	if r := e.do("GET", "/api/v2/export?date_range=7d", e.writeKey, ""); r.Status != 403 {
		t.Errorf("export with a write key: %d", r.Status)
	}
}

func TestQueryScopedToTheKeysProject(t *testing.T) {
	a := newEnv(t, httpapi.Config{})
	b := newEnv(t, httpapi.Config{})
	a.seed(5)
	b.seed(7)
	// Whatever the body says, a key sees its own project only.
	for _, body := range []string{
		`{"metrics": ["events"], "date_range": "all"}`,
		`{"metrics": ["events"], "date_range": "all", "site_id": 1}`,
		`{"metrics": ["events"], "date_range": "all", "filters": [["is", "service", ["my-cli"]]]}`,
	} {
		r := a.query(body)
		if r.Status == 200 && r.Results[0].Metrics[0] != float64(5) {
			t.Errorf("%s: project A's key saw %v events, want its 5", body, r.Results[0].Metrics[0])
		}
		if r.Status != 200 && !strings.Contains(body, "site_id") {
			t.Errorf("%s: %d %s", body, r.Status, r.Body)
		}
	}
	if r := a.query(`{"metrics": ["events"], "date_range": "all", "site_id": 1}`); r.Status != 400 || !strings.Contains(r.Error, "site_id") {
		t.Errorf("an unknown member: %d %s, want 400 naming it", r.Status, r.Body)
	}
	resp, err := http.DefaultClient.Do(exportReq(t, b, "date_range=all"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		n++
	}
	if n != 7 {
		t.Errorf("project B's export has %d events, want its 7", n)
	}
}

func TestQueryHostileParameters(t *testing.T) {
	e := newEnv(t, httpapi.Config{QueryRateLimit: -1})
	e.seed(6)
	before := e.storedEvents()
	for _, c := range []struct{ body, msg string }{
		{`{}`, `"metrics" is required`},
		{`not json`, "invalid query"},
		{`{"metrics": ["events"]} {"metrics": []}`, "more than one JSON value"},
		{`{"metrics": ["events; DROP TABLE events"], "date_range": "7d"}`, "unknown metric"},
		{`{"metrics": ["events"], "dimensions": ["e.user_id"], "date_range": "7d"}`, "unknown dimension"},
		{`{"metrics": ["events"], "dimensions": ["time:day", "time:week"], "date_range": "7d"}`, "at most one time dimension"},
		{`{"metrics": ["events"], "dimensions": ["command", "method"], "date_range": "7d"}`, "never apply to the same event"},
		{`{"metrics": ["events"], "dimensions": ["flag_value"], "date_range": "7d"}`, `needs "flag"`},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["like", "os", ["linux"]]]}`, "unknown operator"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["is", "os", "linux"]]}`, "list of 1 to 100 values"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["is", "os", []]]}`, "list of 1 to 100 values"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["is", "ci", ["yes"]]]}`, "true or false"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["gte", "os", "1.0"]]}`, "compares versions"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["gte", "version", "1.0' OR 1=1"]]}`, "takes one version"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["is", "time:day", ["2026-01-01"]]]}`, "cannot filter"},
		{`{"metrics": ["events"], "date_range": "7d", "filters": [["is", "os", ["` + strings.Repeat("x", 300) + `"]]]}`, "at most 200 bytes"},
		{`{"metrics": ["events"], "date_range": ["1900-01-01", "2100-01-01"]}`, "more than 400 days"},
		{`{"metrics": ["events"], "date_range": ["2026-02-30", "2026-03-01"]}`, "not a date"},
		{`{"metrics": ["events"], "date_range": ["2026-03-02", "2026-03-01"]}`, "is after"},
		{`{"metrics": ["events"], "date_range": "forever"}`, "unknown date_range"},
		{`{"metrics": ["events"]}`, `"date_range" is required`},
		{`{"metrics": ["events"], "date_range": "7d", "pagination": {"limit": 100000000}}`, "pagination.limit"},
		{`{"metrics": ["events"], "date_range": "7d", "pagination": {"limit": 0}}`, "pagination.limit"},
		{`{"metrics": ["events"], "date_range": "7d", "pagination": {"offset": -1}}`, "pagination.offset"},
		{`{"metrics": ["events"], "date_range": "7d", "pagination": {"limit": 1e400}}`, "invalid query"},
		{`{"metrics": ["events"], "date_range": "7d", "order_by": [["users", "desc"]]}`, "not one of the query's"},
		{`{"metrics": ["events"], "date_range": "7d", "order_by": [["events", "sideways"]]}`, "asc"},
		{`{"metrics": ["events", "events"], "date_range": "7d"}`, "asked twice"},
		{`{"metrics": ["events"], "date_range": "7d", "include": {"comparison": "year_over_year"}}`, "previous_period"},
	} {
		r := e.query(c.body)
		if r.Status != 400 || !strings.Contains(r.Error, c.msg) {
			t.Errorf("%.80s: %d %q, want 400 with %q", c.body, r.Status, r.Error, c.msg)
		}
	}
	// SQL-looking values are values: nothing matches, nothing breaks.
	for _, v := range []string{`'; DROP TABLE events; --`, `linux' OR '1'='1`, `%`, `_`, `\`, "\u0000"} {
		vb, _ := json.Marshal(v)
		for _, op := range []string{"is", "contains", "is_not"} {
			r := e.query(fmt.Sprintf(`{"metrics": ["events"], "dimensions": ["os"], "date_range": "7d", "filters": [["%s", "os", [%s]]]}`, op, vb))
			if op == "is_not" && v != "\u0000" {
				if r.Status != 200 || len(r.Results) != 2 {
					t.Errorf("is_not %q: %d %s, want both OSes", v, r.Status, r.Body)
				}
				continue
			}
			if v == "\u0000" {
				if r.Status != 400 || !strings.Contains(r.Error, "without NUL") {
					t.Errorf("%s NUL: %d %s, want 400 (text cannot hold NUL)", op, r.Status, r.Body)
				}
				continue
			}
			if r.Status != 200 || len(r.Results) != 0 {
				t.Errorf("%s %q: %d %s, want no rows", op, v, r.Status, r.Body)
			}
		}
	}
	if after := e.storedEvents(); after != before {
		t.Fatalf("events %d → %d", before, after)
	}
	// A body over the limit.
	if r := e.query(`{"metrics": ["events"], "date_range": "7d", "x": "` + strings.Repeat("a", server.MaxQueryBody) + `"}`); r.Status != 413 {
		t.Errorf("huge body: %d", r.Status)
	}
	// The export's parameters.
	for _, q := range []string{"", "date_range=forever", "from=2026-13-01", "from=1900-01-01&to=2100-01-01",
		"date_range=7d&format=xml", "date_range=7d&after=not-an-id", "date_range=7d&from=2026-01-01",
		"date_range=7d&after=" + uuid.Must(uuid.NewV7()).String()} {
		if r := e.do("GET", "/api/v2/export?"+q, e.readKey, ""); r.Status != 400 || r.Error == "" {
			t.Errorf("export?%s: %d %s, want 400 with a message", q, r.Status, r.Body)
		}
	}
}

func TestQueryCSV(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	e.seed(9)
	body := `{"metrics": ["events", "success_rate"], "dimensions": ["command"], "date_range": "7d"}`
	for _, how := range [][]string{{"path", "/api/v2/query?format=csv"}, {"accept", "/api/v2/query"}} {
		var r queryResp
		if how[0] == "accept" {
			r = e.do("POST", how[1], e.readKey, body, "Accept", "text/csv, application/json;q=0.5")
		} else {
			r = e.do("POST", how[1], e.readKey, body)
		}
		if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%s: %d %s %s", how[0], r.Status, r.Header.Get("Content-Type"), r.Body)
		}
		if !bytes.Contains(r.Body, []byte("\r\n")) {
			t.Errorf("%s: records not ended by CRLF (RFC 4180)", how[0])
		}
		recs, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(recs[0], ",") != "command,events,success_rate" || len(recs) != 4 {
			t.Fatalf("%s: %q", how[0], recs)
		}
		for _, rec := range recs[1:] {
			if rec[0] == "=cmd|' /C calc'!A0" {
				t.Errorf("a command name reached the CSV as a formula: %q", rec[0])
			}
			if n, err := strconv.Atoi(rec[1]); err != nil || n != 3 || rec[2] != "1" {
				t.Errorf("%s: %q", how[0], rec)
			}
		}
	}
	// JSON by default, and the same numbers.
	if r := e.query(body); r.Status != 200 || len(r.Results) != 3 || r.Results[0].Metrics[0] != float64(3) {
		t.Fatalf("json: %d %s", r.Status, r.Body)
	}
}

func TestQueryRateLimitHeaders(t *testing.T) {
	now := time.Now()
	e := newEnv(t, httpapi.Config{QueryRateLimit: 1, QueryRateBurst: 3, Now: func() time.Time { return now }})
	body := `{"metrics": ["events"], "date_range": "day"}`
	for i := 0; i < 3; i++ {
		r := e.query(body)
		if r.Status != 200 || r.Header.Get("RateLimit-Limit") != "3" || r.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: %d limit %q remaining %q", i, r.Status, r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Remaining"))
		}
	}
	r := e.query(body)
	if r.Status != 429 || r.Header.Get("Retry-After") != "1" || r.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("over the burst: %d Retry-After %q remaining %q", r.Status, r.Header.Get("Retry-After"), r.Header.Get("RateLimit-Remaining"))
	}
	// Another key of the same server is not held back.
	other := newEnv(t, httpapi.Config{})
	if r := other.query(body); r.Status != 200 {
		t.Fatalf("another project's key: %d", r.Status)
	}
}

func TestQueryCORS(t *testing.T) {
	body := `{"metrics": ["events"], "date_range": "day"}`
	off := newEnv(t, httpapi.Config{})
	if r := off.query(body, "Origin", "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header sent without configuration")
	}
	on := newEnv(t, httpapi.Config{CORSOrigins: []string{"https://dash.example"}})
	if r := on.query(body, "Origin", "https://dash.example"); r.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Errorf("configured origin: %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := on.query(body, "Origin", "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header for an origin not configured")
	}
	r := on.do("OPTIONS", "/api/v2/query", "", "", "Origin", "https://dash.example", "Access-Control-Request-Method", "POST")
	if r.Status != 204 || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", r.Status, r.Header)
	}
	// Ingest never gets CORS headers.
	if r := on.do("POST", "/v1/events", on.writeKey, string(batch(event())), "Origin", "https://dash.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header on ingest")
	}
}

func exportReq(t *testing.T, e *env, params string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+"/api/v2/export?"+params, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.readKey)
	return req
}

func TestExportOverHTTP(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	e.seed(250)
	get := func(params string) *http.Response {
		resp, err := http.DefaultClient.Do(exportReq(t, e, params))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("date_range=7d")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var ids []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct {
			EventID   string          `json:"event_id"`
			Timestamp time.Time       `json:"timestamp"`
			UserID    string          `json:"user_id"`
			Metadata  json.RawMessage `json:"metadata"`
			Env       struct{ OS string }
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v", len(ids)+1, err)
		}
		if !strings.HasPrefix(ev.UserID, "anon_") || ev.Env.OS == "" || len(ev.Metadata) < 2 {
			t.Fatalf("incomplete line %s", sc.Bytes())
		}
		ids = append(ids, ev.EventID)
	}
	if len(ids) != 250 {
		t.Fatalf("%d events exported, want 250", len(ids))
	}
	// Resume after the 100th event: the rest, exactly.
	resp = get("date_range=7d&after=" + ids[99])
	var rest []string
	sc = bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(sc.Bytes(), &ev)
		rest = append(rest, ev.EventID)
	}
	if strings.Join(rest, ",") != strings.Join(ids[100:], ",") {
		t.Fatalf("resumed export: %d events, want the last %d in order", len(rest), len(ids)-100)
	}
	// CSV, with its header, even for an empty range.
	resp = get("from=2020-01-01&to=2020-01-02&format=csv")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "event_id,timestamp,received_at,") || strings.Count(string(b), "\r\n") != 1 {
		t.Fatalf("empty CSV export: %d %q", resp.StatusCode, b)
	}
	resp = get("date_range=7d&format=csv")
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(recs) != 251 {
		t.Fatalf("CSV export: %d records, %v", len(recs), err)
	}
	if recs[0][len(recs[0])-1] != "metadata" || !json.Valid([]byte(recs[1][len(recs[1])-1])) {
		t.Fatalf("CSV metadata column: %q", recs[1])
	}
}

func TestQueryDataQualityAndVersions(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	good := event()
	old := event()
	old["timestamp"] = "2001-01-01T00:00:00.000Z"
	bad := event()
	bad["service_version"] = 42
	body, _ := json.Marshal(map[string]any{"events": []any{good, old, bad, event()}, "dropped": 7})
	if r := e.post(body); r.Status != 200 || r.Accepted != 2 || len(r.Rejected) != 2 {
		t.Fatalf("ingest: %d %s", r.Status, r.Body)
	}
	r := e.do("POST", "/api/v2/quality", e.readKey, `{"date_range": "7d"}`)
	var q struct {
		Days  []map[string]any `json:"days"`
		Total struct {
			Dropped  int64            `json:"dropped"`
			Rejected map[string]int64 `json:"rejected"`
		} `json:"total"`
	}
	if err := json.Unmarshal(r.Body, &q); err != nil || r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if len(q.Days) != 7 || q.Total.Dropped != 7 || q.Total.Rejected["timestamp_too_old"] != 1 ||
		q.Total.Rejected["invalid_field:service_version"] != 1 {
		t.Fatalf("quality: %s", r.Body)
	}
	// Versions over HTTP: the one version seen, at half of the users at once.
	r = e.do("POST", "/api/v2/versions", e.readKey, `{"date_range": "7d"}`)
	var v struct {
		Versions []struct {
			Version    string `json:"version"`
			Users      int64  `json:"users"`
			DaysToHalf *int   `json:"days_to_half"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil || r.Status != 200 || len(v.Versions) != 1 ||
		v.Versions[0].Version != "1.4.2" || v.Versions[0].DaysToHalf == nil || *v.Versions[0].DaysToHalf != 0 {
		t.Fatalf("versions: %d %s", r.Status, r.Body)
	}
}

func TestQueryConcurrencyLimit(t *testing.T) {
	e := newEnv(t, httpapi.Config{MaxQueries: 1, MaxExports: 1, QueryRateLimit: -1})
	e.seed(3)
	// A transaction that locks the daily rollups makes any query with a
	// version comparison wait: it holds the only query slot.
	tx, err := e.db.Pool().Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := tx.Exec(t.Context(), "LOCK TABLE daily_event_counts, daily_platform_counts IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	slow := make(chan queryResp, 1)
	go func() {
		slow <- e.query(`{"metrics": ["events"], "date_range": "7d", "filters": [["gte", "version", "1.0.0"]]}`)
	}()
	time.Sleep(300 * time.Millisecond) // the slow query has the slot
	start := time.Now()
	r := e.query(`{"metrics": ["events"], "date_range": "7d"}`)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Error, "as many queries") {
		t.Fatalf("a query while the only slot is taken: %d %s", r.Status, r.Body)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("it waited %v for a slot, want about a second", d)
	}
	// Health and ingest need no query slot.
	if code, _ := e.get("/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := <-slow; r.Status != 200 || r.Results[0].Metrics[0] != float64(3) {
		t.Fatalf("the slow query: %d %s", r.Status, r.Body)
	}
	if r := e.query(`{"metrics": ["events"], "date_range": "7d"}`); r.Status != 200 {
		t.Fatalf("after the slot is free: %d %s", r.Status, r.Body)
	}
}
