package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
)

// Every endpoint that takes a key, with each kind of key: write, read,
// admin, a revoked admin key and the admin key of another project. Each
// answers as its scope says, and another project's key never touches this
// project's data.
func TestScopeMatrix(t *testing.T) {
	// Every refused key is looked up: no lookup budget here.
	e := newEnv(t, httpapi.Config{KeyLookupRate: -1})
	other := newEnv(t, httpapi.Config{KeyLookupRate: -1})
	e.seed(10)
	ctx := context.Background()
	revoked, rk, _ := server.NewKey(server.KeyAdmin)
	rk.ProjectID = e.projectID
	rk, err := e.db.CreateKey(ctx, rk)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.RevokeKey(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	anon := "anon_" + strings.Repeat("3f", 32) // the seeded events' user
	keys := []struct{ name, key string }{
		{"write", e.writeKey}, {"read", e.readKey}, {"admin", e.adminKey}, {"revoked admin", revoked}, {"other project's admin", other.adminKey},
	}
	endpoints := []struct {
		method, path, body string
		want               [5]int // by key, in the order of keys
	}{
		{"POST", "/v1/events", string(batch(event())), [5]int{200, 403, 403, 403, 403}},
		{"POST", "/api/v2/query", `{"metrics": ["events"], "date_range": "7d"}`, [5]int{403, 200, 200, 403, 200}},
		{"GET", "/api/v2/export?date_range=7d", "", [5]int{403, 200, 200, 403, 200}},
		{"POST", "/api/v2/retention", `{"date_range": "30d"}`, [5]int{403, 200, 200, 403, 200}},
		{"POST", "/api/v2/versions", `{"date_range": "30d"}`, [5]int{403, 200, 200, 403, 200}},
		{"POST", "/api/v2/quality", `{"date_range": "7d"}`, [5]int{403, 200, 200, 403, 200}},
		{"GET", "/api/v2/audit", "", [5]int{403, 200, 200, 403, 200}},
		{"GET", "/api/v2/keys", "", [5]int{403, 403, 200, 403, 200}},
		{"POST", "/api/v2/keys", `{"kind": "read"}`, [5]int{403, 403, 201, 403, 201}},
		{"DELETE", fmt.Sprintf("/api/v2/keys/%d", rk.ID), "", [5]int{403, 403, 204, 403, 404}},
		{"POST", "/v1/erasures", `{"user_id": "anon_` + strings.Repeat("77", 32) + `"}`, [5]int{200, 403, 403, 403, 403}},
		// Last: erases the seeded user, with the other project's key first.
		{"DELETE", "/v1/users/" + anon, "", [5]int{403, 403, 200, 403, 200}},
	}
	before := e.storedEvents()
	for _, ep := range endpoints {
		for i := len(keys) - 1; i >= 0; i-- {
			k := keys[i]
			req, _ := http.NewRequest(ep.method, e.srv.URL+ep.path, strings.NewReader(ep.body))
			req.Header.Set("Authorization", "Bearer "+k.key)
			if ep.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != ep.want[i] {
				t.Errorf("%s %s with the %s key: %d, want %d: %.200s", ep.method, ep.path, k.name, resp.StatusCode, ep.want[i], body)
			}
			if ep.method == "DELETE" && strings.HasPrefix(ep.path, "/v1/users/") && k.name == "other project's admin" {
				if n := e.storedEvents(); n != before+1 {
					t.Errorf("another project's admin key erased here: %d events, were %d", n, before+1)
				}
			}
			if ep.method == "POST" && strings.Contains(ep.path, "query") && resp.StatusCode == 200 {
				var a struct{ Results []struct{ Metrics []float64 } }
				json.Unmarshal(body, &a)
				got := 0.0
				if len(a.Results) > 0 {
					got = a.Results[0].Metrics[0]
				}
				want := float64(before + 1)
				if k.name == "other project's admin" {
					want = 0
				}
				if got != want {
					t.Errorf("query with the %s key: %v events, want %v", k.name, got, want)
				}
			}
		}
	}
	if n := e.storedEvents(); n != 0 {
		t.Errorf("after the admin erasure: %d events of the only user left", n)
	}
	// The audit log has the erasures and the revoked key's life, with key
	// prefixes and counts only.
	_, body := e.getWith("/api/v2/audit", e.readKey)
	for _, want := range []string{`"action":"user.erase","detail":{"events":` + fmt.Sprint(before+1), `"actor":"` + e.adminKey[:12], `"key.revoke"`, `"actor":"` + e.writeKey[:12]} {
		if !strings.Contains(body, want) {
			t.Errorf("audit log lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, "3f3f3f") {
		t.Errorf("the audit log holds the user's id: %s", body)
	}
	// The same as CSV, for export.
	status, csvBody := e.getWith("/api/v2/audit?format=csv", e.readKey)
	recs, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if status != 200 || err != nil || len(recs) < 3 || strings.Join(recs[0], ",") != "id,at,actor,action,detail" {
		t.Fatalf("audit CSV: %d %v %q", status, err, csvBody)
	}
	var erasures int
	for _, r := range recs[1:] {
		if r[3] == "user.erase" {
			erasures++
		}
	}
	if erasures != 2 || strings.Count(body, `"action":"user.erase"`) != erasures {
		t.Errorf("audit CSV has %d erasures, the JSON %d", erasures, strings.Count(body, `"action":"user.erase"`))
	}
}

// An admin key manages the project's keys over the API: a key it creates
// works at once and is shown once; one it revokes stops at once; another
// project's key cannot be revoked; the audit log names the admin key.
func TestKeysAPI(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	other := newEnv(t, httpapi.Config{})
	e.seed(5)
	do := func(method, path, key, body string) (int, string) {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := do("POST", "/api/v2/keys", e.adminKey, `{"kind": "read"}`)
	var created struct {
		ID   int64  `json:"key_id"`
		Key  string `json:"key"`
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(body), &created); status != 201 || err != nil || !strings.HasPrefix(created.Key, "tk_r_") || created.Kind != "read" {
		t.Fatalf("create: %d %s", status, body)
	}
	query := `{"metrics": ["events"], "date_range": "7d"}`
	if status, body := do("POST", "/api/v2/query", created.Key, query); status != 200 || !strings.Contains(body, "[5]") {
		t.Fatalf("the new key's query: %d %s", status, body)
	}
	status, body = do("GET", "/api/v2/keys", e.adminKey, "")
	if status != 200 || strings.Count(body, `"key_id"`) != 4 || strings.Contains(body, created.Key) || strings.Contains(body, `"key":`) {
		t.Errorf("list: %d %s", status, body)
	}
	if status, _ := do("DELETE", fmt.Sprintf("/api/v2/keys/%d", other.writeID), e.adminKey, ""); status != 404 {
		t.Errorf("revoking another project's key: %d, want 404", status)
	}
	if status, body := do("POST", "/v1/events", other.writeKey, string(batch(event()))); status != 200 {
		t.Errorf("the other project's key after the attempt: %d %s", status, body)
	}
	if status, _ := do("DELETE", fmt.Sprintf("/api/v2/keys/%d", created.ID), e.adminKey, ""); status != 204 {
		t.Fatalf("revoke: %d", status)
	}
	if status, _ := do("POST", "/api/v2/query", created.Key, query); status != 403 {
		t.Errorf("the revoked key's query: %d, want 403", status)
	}
	if status, _ := do("POST", "/api/v2/keys", e.adminKey, `{"kind": "root"}`); status != 400 {
		t.Errorf("a key of no kind: %d, want 400", status)
	}
	_, log := e.getWith("/api/v2/audit", e.adminKey)
	for _, want := range []string{`"actor":"` + e.adminKey[:12] + `","action":"key.create"`, `"actor":"` + e.adminKey[:12] + `","action":"key.revoke"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s: %s", want, log)
		}
	}
}
