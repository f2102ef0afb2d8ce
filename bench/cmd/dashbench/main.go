// Command dashbench times the dashboard's pages over a project's history in
// PostgreSQL (loaded with bench/cmd/tkload), as an author's browser gets
// them: it serves tk-server's handler (API and dashboard) in process,
// signs in with a read key it creates, and asks for every page over the
// last 30 and 180 days, with and without filters (Linux, not CI, version
// 1.5.0 onward). Each round asks every page once, after one warm-up round.
// It prints p50 and p95 of the time to the last byte per page, and each
// page's weight: its HTML, and with the two stylesheets, gzip-compressed.
//
// Run it from the bench module:
//
//	go run ./cmd/dashbench -db postgres://…/tk_querybench -project bench [-runs 21]
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/dashboard"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

var pages = []string{"", "commands", "flags", "features", "versions", "platforms", "errors", "retention", "quality"}

var variants = []struct{ name, query string }{
	{"30d", ""},
	{"30d filtered", "?os=linux&ci=exclude&version=1.5.0&onward=1"},
	{"180d", "?range=180d"},
	{"180d filtered", "?range=180d&os=linux&ci=exclude&version=1.5.0&onward=1"},
}

func main() {
	dbURL := flag.String("db", os.Getenv("TK_DATABASE_URL"), "database URL")
	project := flag.String("project", "bench", "project name")
	runs := flag.Int("runs", 21, "rounds after the warm-up")
	flag.Parse()
	if err := run(*dbURL, *project, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "dashbench:", err)
		os.Exit(1)
	}
}

func run(dbURL, projectName string, runs int) error {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := db.ProjectByName(ctx, projectName)
	if err != nil {
		return err
	}
	readKey, k, err := server.NewKey(server.KeyRead)
	if err != nil {
		return err
	}
	k.ProjectID = p.ID
	if k, err = db.CreateKey(ctx, k); err != nil {
		return err
	}
	defer db.RevokeKey(ctx, k.ID)
	dash, err := dashboard.New(dashboard.Config{Keys: db, Querier: db, Sessions: db})
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{Store: db, Dashboard: dash})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signin, err := get(c, srv.URL+"/signin")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(signin)
	if m == nil {
		return fmt.Errorf("no sign-in form")
	}
	resp, err := c.PostForm(srv.URL+"/signin", url.Values{"csrf": {string(m[1])}, "key": {readKey}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	base := fmt.Sprintf("%s/p/%d/", srv.URL, p.ID)
	if resp.Request.URL.String() != base {
		return fmt.Errorf("signing in ended at %s", resp.Request.URL)
	}
	var css int
	for _, a := range []string{"/assets/style.css", "/assets/chart.css"} {
		b, err := get(c, srv.URL+a)
		if err != nil {
			return err
		}
		css += gz(b)
	}

	times := map[string][]time.Duration{}
	weight := map[string][2]int{}
	for round := 0; round <= runs; round++ {
		for _, v := range variants {
			for _, pg := range pages {
				start := time.Now()
				body, err := get(c, base+pg+v.query)
				d := time.Since(start)
				if err != nil {
					return err
				}
				if bytes.Contains(body, []byte("panel-problem")) {
					return fmt.Errorf("%s %s: a panel failed", name(pg), v.name)
				}
				if round == 0 {
					continue // warm-up
				}
				key := name(pg) + "\t" + v.name
				times[key] = append(times[key], d)
				weight[key] = [2]int{len(body), gz(body) + css}
			}
		}
	}
	fmt.Printf("%d rounds; CSS %.1f KB gzipped\n\n", runs, float64(css)/1024)
	fmt.Println("| page | range | p50 ms | p95 ms | HTML KB | with CSS, gzipped KB |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, pg := range pages {
		for _, v := range variants {
			key := name(pg) + "\t" + v.name
			ds := times[key]
			slices.Sort(ds)
			w := weight[key]
			fmt.Printf("| %s | %s | %.1f | %.1f | %.1f | %.1f |\n", name(pg), v.name, ms(pct(ds, 50)), ms(pct(ds, 95)),
				float64(w[0])/1024, float64(w[1])/1024)
		}
	}
	return nil
}

func name(pg string) string {
	if pg == "" {
		return "overview"
	}
	return pg
}

func get(c *http.Client, u string) ([]byte, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, err
}

// gz is the gzip-compressed size of b.
func gz(b []byte) int {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Len()
}

// pct is the p-th percentile of sorted durations (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (p*len(ds)+99)/100 - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
