// Command querybench times the questions the dashboard asks of the query
// API, over a project's history in PostgreSQL (loaded with bench/cmd/tkload
// through the server's ingest), and the same questions answered by a plain
// SQL query over the events table, in the same run.
//
// Each question is asked over the last 30 days and over the last 180, with
// and without filters (linux, not CI, version 1.5.0 onward). Runs are
// interleaved: each round asks every question once, after one warm-up
// round. It prints p50 and p95 per question and the ratio of the plain
// query's median to the API's.
//
// Run it from the bench module:
//
//	go run ./cmd/querybench -db postgres://…/tkbench -project bench -end 2026-12-03 [-runs 11]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// question is one thing the dashboard asks.
type question struct {
	name  string
	body  string // a query, with %s for the date range and %s for the filters
	kind  string // "" (query), "retention" or "versions"
	plain bool   // has a plain-SQL twin
}

var questions = []question{
	{"overview: events, users, success rate vs previous", `{"metrics": ["events", "users", "success_rate"], "date_range": %s, "filters": [%s], "include": {"comparison": "previous_period"}}`, "", true},
	{"usage per day (events, users)", `{"metrics": ["events", "users"], "dimensions": ["time:day"], "date_range": %s, "filters": [%s]}`, "", true},
	{"top commands: runs, users, success, p50/p95", `{"metrics": ["events", "users", "success_rate", "duration_p50", "duration_p95"], "dimensions": ["command"], "date_range": %s, "filters": [%s], "pagination": {"limit": 10}}`, "", true},
	{"error kinds per command", `{"metrics": ["events"], "dimensions": ["command", "error_kind"], "date_range": %s, "filters": [%s]}`, "", true},
	{"flags of the top command", `{"metrics": ["events", "users"], "dimensions": ["flag"], "date_range": %s, "filters": [["is", "command", ["status"]]%s]}`, "", true},
	{"values of --output", `{"metrics": ["events", "users"], "dimensions": ["flag", "flag_value"], "date_range": %s, "filters": [["is", "flag", ["output"]]%s]}`, "", true},
	{"features per week", `{"metrics": ["events", "users"], "dimensions": ["time:week", "feature"], "date_range": %s, "filters": [%s]}`, "", true},
	{"methods by version, last used", `{"metrics": ["events", "last_seen"], "dimensions": ["method", "version"], "date_range": %s, "filters": [%s]}`, "", true},
	{"version shares per day", `{"metrics": ["users", "users_share"], "dimensions": ["time:day", "version"], "date_range": %s, "filters": [%s]}`, "", true},
	{"platforms: OS, arch, CI", `{"metrics": ["users", "events"], "dimensions": ["os", "arch", "ci"], "date_range": %s, "filters": [%s]}`, "", true},
	{"Go versions", `{"metrics": ["users"], "dimensions": ["go_version"], "date_range": %s, "filters": [%s]}`, "", true},
	{"failure rate by command × OS × version", `{"metrics": ["failure_rate", "events"], "dimensions": ["command", "os", "version"], "date_range": %s, "filters": [%s], "pagination": {"limit": 100}}`, "", true},
	{"versions: adoption, days to half", `{"date_range": %s, "filters": [%s]}`, "versions", false},
	{"retention: 12-week cohorts", `{"date_range": %s, "weeks": 12, "filters": [%s]}`, "retention", false},
}

const filters = `["is", "os", ["linux"]], ["is", "ci", [false]], ["gte", "version", "1.5.0"]`

func main() {
	dbURL := flag.String("db", os.Getenv("TK_DATABASE_URL"), "PostgreSQL URL of the loaded history")
	projectName := flag.String("project", "bench", "project whose events to ask about")
	endDay := flag.String("end", time.Now().UTC().Format(time.DateOnly), "the day the ranges end (the history's last day)")
	runs := flag.Int("runs", 11, "timed rounds")
	only := flag.String("only", "", "ask only the questions whose name contains this")
	withPlain := flag.Bool("plain", true, "also time the plain SQL twins")
	flag.Parse()
	if err := run(*dbURL, *projectName, *endDay, *runs, *only, *withPlain); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

// ask is one timed call.
type ask struct {
	label string
	fn    func(context.Context) error
	times []time.Duration
	err   error // the last failure (a statement timeout), if any
}

// timeout bounds each statement, as --query-timeout does in tk-server.
const timeout = 30 * time.Second

func run(dbURL, projectName, endDay string, runs int, only string, withPlain bool) error {
	ctx := context.Background()
	end, err := time.Parse(time.DateOnly, endDay)
	if err != nil {
		return err
	}
	now := end.Add(12 * time.Hour)
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, Now: func() time.Time { return now }, QueryTimeout: timeout})
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := db.ProjectByName(ctx, projectName)
	if err != nil {
		return err
	}
	var asks []*ask
	for _, q := range questions {
		if only != "" && !strings.Contains(q.name, only) {
			continue
		}
		for _, rng := range []string{`"30d"`, `"180d"`} {
			for _, f := range []string{"", filters} {
				ff := f
				if strings.Contains(q.body, "]%s]") && f != "" {
					ff = ", " + f
				}
				body := fmt.Sprintf(q.body, rng, ff)
				label := fmt.Sprintf("%s | %s | %s", q.name, strings.Trim(rng, `"`), map[bool]string{true: "filtered", false: "all"}[f != ""])
				a, plain, err := build(db, p.ID, q, body, now)
				if err != nil {
					return fmt.Errorf("%s: %w", label, err)
				}
				asks = append(asks, &ask{label: label, fn: a})
				if plain != nil && withPlain {
					asks = append(asks, &ask{label: label + " | plain SQL", fn: plain})
				}
			}
		}
	}
	for round := range runs + 1 {
		for k := range asks {
			a := asks[(k+round)%len(asks)]
			if a.err != nil {
				continue // failed once (a timeout): not asked again
			}
			start := time.Now()
			if err := a.fn(ctx); err != nil {
				a.err = err
				continue
			}
			if round > 0 {
				a.times = append(a.times, time.Since(start))
			}
		}
	}
	fmt.Printf("| question | range | filters | p50 ms | p95 ms | plain SQL p50 ms | plain / API |\n|---|---|---|---|---|---|---|\n")
	for i := 0; i < len(asks); i++ {
		a := asks[i]
		parts := strings.Split(a.label, " | ")
		line := fmt.Sprintf("| %s | %s | %s | %s | %s |", parts[0], parts[1], parts[2], cell(a, 50), cell(a, 95))
		if i+1 < len(asks) && strings.HasSuffix(asks[i+1].label, "plain SQL") {
			pl := asks[i+1]
			ratio := "–"
			if a.err == nil && pl.err == nil {
				ratio = fmt.Sprintf("%.2f×", float64(pct(pl.times, 50))/float64(pct(a.times, 50)))
			}
			line += fmt.Sprintf(" %s | %s |", cell(pl, 50), ratio)
			i++
		} else {
			line += " | |"
		}
		fmt.Println(line)
	}
	return nil
}

// build returns the API's call for the question, and its plain SQL twin.
func build(db *postgres.DB, project int64, q question, body string, now time.Time) (api, plain func(context.Context) error, err error) {
	switch q.kind {
	case "retention":
		rq, err := server.ParseRetentionQuery([]byte(body), now)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error { _, err := db.Retention(ctx, project, rq); return err }, nil, nil
	case "versions":
		vq, err := server.ParseVersionsQuery([]byte(body), now)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error { _, err := db.Versions(ctx, project, vq); return err }, nil, nil
	}
	qq, err := server.ParseQuery([]byte(body), now)
	if err != nil {
		return nil, nil, err
	}
	api = func(ctx context.Context) error { _, err := db.Query(ctx, project, qq); return err }
	plain = func(ctx context.Context) error { _, err := db.QueryEvents(ctx, project, qq); return err }
	return api, plain, nil
}

// cell is a percentile in ms, or why there is none.
func cell(a *ask, p int) string {
	if a.err != nil {
		if strings.Contains(a.err.Error(), "took longer") {
			return "timeout"
		}
		return "error"
	}
	return fmt.Sprintf("%.1f", ms(pct(a.times, p)))
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
