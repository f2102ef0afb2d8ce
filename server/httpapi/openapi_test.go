package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
)

func init() {
	// The export's lines: a body of text, as the document describes it.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
}

// TestOpenAPIDocument checks the served OpenAPI document against the
// server: the document is valid, every operation it documents is served,
// and real requests and responses of every operation, successes and
// refusals, validate against it.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	e.seed(30)
	status, served := e.get("/api/v2/openapi.yaml")
	if status != 200 || served != string(httpapi.OpenAPI) {
		t.Fatalf("GET /api/v2/openapi.yaml: %d, %d bytes", status, len(served))
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(served))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: e.srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	validated := map[string]bool{}
	check := func(method, path, key, contentType, body string, headers ...string) {
		t.Helper()
		req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s is not documented: %v", method, path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && !strings.Contains(path, "bad") {
			t.Errorf("%s %s: the request does not validate: %v", method, path, err)
		}
		req.Body = io.NopCloser(strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if (resp.StatusCode == 404 && !strings.HasPrefix(string(got), `{"error":`)) || resp.StatusCode == 405 {
			t.Errorf("%s %s: %d: documented but not served", method, path, resp.StatusCode)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Body: io.NopCloser(bytes.NewReader(got)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s → %d: the response does not validate: %v\n%.300s", method, path, resp.StatusCode, err, got)
		}
		validated[method+" "+route.Path] = true
	}
	q := func(body string) string { return body }
	check("POST", "/api/v2/query", e.readKey, "application/json", q(`{"metrics": ["events", "users", "success_rate", "last_seen"],
		"dimensions": ["time:day"], "date_range": "7d", "include": {"comparison": "previous_period", "total_rows": true}}`))
	check("POST", "/api/v2/query", e.readKey, "application/json", q(`{"metrics": ["events", "duration_p90"],
		"dimensions": ["command", "ci", "success", "error_kind"], "filters": [["gte", "version", "1.0.0"]], "date_range": ["2026-01-01", "2026-12-31"],
		"order_by": [["events", "desc"]], "pagination": {"limit": 5, "offset": 0}}`))
	check("POST", "/api/v2/query?format=csv", e.readKey, "application/json", `{"metrics": ["events"], "dimensions": ["os"], "date_range": "30d"}`)
	check("POST", "/api/v2/query?bad", e.readKey, "application/json", `{"metrics": ["nope"], "date_range": "30d"}`)
	check("POST", "/api/v2/query", "", "application/json", `{"metrics": ["events"], "date_range": "30d"}`)
	check("POST", "/api/v2/query", e.writeKey, "application/json", `{"metrics": ["events"], "date_range": "30d"}`)
	check("POST", "/api/v2/retention", e.readKey, "application/json", `{"date_range": "90d", "weeks": 4, "filters": [["is", "os", ["linux"]]]}`)
	check("POST", "/api/v2/retention?format=csv", e.readKey, "application/json", `{"date_range": "30d"}`)
	check("POST", "/api/v2/retention?bad", e.readKey, "application/json", `{"date_range": "30d", "weeks": 99}`)
	check("POST", "/api/v2/versions", e.readKey, "application/json", `{"date_range": "30d", "filters": [["is", "ci", [false]]]}`)
	check("POST", "/api/v2/versions?format=csv", e.readKey, "application/json", `{"date_range": "30d"}`)
	check("POST", "/api/v2/quality", e.readKey, "application/json", `{"date_range": "7d"}`)
	check("POST", "/api/v2/quality?format=csv", e.readKey, "application/json", `{"date_range": "7d"}`)
	check("POST", "/api/v2/quality?bad", e.readKey, "application/json", `{"date_range": "7d", "x": 1}`)
	check("GET", "/api/v2/export?date_range=7d", e.readKey, "", "")
	check("GET", "/api/v2/export?"+url.Values{"from": {"2026-01-01"}, "format": {"csv"}}.Encode(), e.readKey, "", "")
	check("GET", "/api/v2/export?bad&date_range=nope", e.readKey, "", "")
	check("POST", "/v1/events", e.writeKey, "application/json", string(batch(event())))
	check("POST", "/v1/events", e.readKey, "application/json", string(batch(event())))
	anon := "anon_" + strings.Repeat("5e", 32)
	check("POST", "/v1/erasures", e.writeKey, "application/json", `{"user_id": "`+anon+`", "requested_at": "2026-11-30T10:00:00Z"}`)
	check("POST", "/v1/erasures?bad", e.writeKey, "application/json", `{"user_id": "anon_1"}`)
	check("POST", "/v1/erasures", e.readKey, "application/json", `{"user_id": "`+anon+`"}`)
	check("DELETE", "/v1/users/"+anon, e.adminKey, "", "")
	check("DELETE", "/v1/users/"+anon, e.readKey, "", "")
	check("DELETE", "/v1/users/anon_bad", e.adminKey, "", "")
	check("GET", "/api/v2/audit", e.readKey, "", "")
	check("GET", "/api/v2/audit?after=1", e.adminKey, "", "")
	check("GET", "/api/v2/audit?format=csv", e.readKey, "", "")
	check("GET", "/api/v2/keys", e.adminKey, "", "")
	check("GET", "/api/v2/keys", e.readKey, "", "")
	check("POST", "/api/v2/keys", e.adminKey, "application/json", `{"kind": "write"}`)
	check("POST", "/api/v2/keys?bad", e.adminKey, "application/json", `{"kind": "root"}`)
	check("DELETE", fmt.Sprintf("/api/v2/keys/%d", e.writeID), e.adminKey, "", "")
	check("DELETE", "/api/v2/keys/999999999", e.adminKey, "", "")
	check("GET", "/api/v2/openapi.yaml", "", "", "")
	check("GET", "/healthz", "", "", "")
	check("GET", "/readyz", "", "", "")
	check("GET", "/metrics", "", "", "")
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !validated[method+" "+path] {
				t.Errorf("%s %s is documented but no request of this test reached it", method, path)
			}
		}
	}
}
