package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestRunRecordsEveryCall(t *testing.T) {
	var out bytes.Buffer
	getenv := func(string) string { return "" }
	err := run(context.Background(), []string{"-dir", t.TempDir(), "-duration", "400ms", "-pace", "2ms"}, getenv, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"telemetry is on: the author's default (silent).",
		"method_called  New               5  (calls made: 5)",
		"Options used when creating analyzers: case_sensitive 1, min_word_length 2, stop_words 2",
		`"service_name":"textstats","service_version":"1.2.0","event_type":"method_called"`,
		`"metadata":{"method":"TopWords","n":5}`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	m := regexp.MustCompile(`Recorded (\d+) events \(lost: 0\)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no summary line:\n%s", s)
	}
	docs := regexp.MustCompile(`Analysed (\d+) documents`).FindStringSubmatch(s)
	nEvents, _ := strconv.Atoi(m[1])
	nDocs, _ := strconv.Atoi(docs[1])
	// One WordCount per document, plus the analyzers, plus some others.
	if nDocs < 10 || nEvents < nDocs+5 {
		t.Fatalf("%d events for %d documents:\n%s", nEvents, nDocs, s)
	}
}

func TestRunWithDoNotTrackRecordsNothing(t *testing.T) {
	var out bytes.Buffer
	getenv := func(k string) string {
		if k == "DO_NOT_TRACK" {
			return "1"
		}
		return ""
	}
	if err := run(context.Background(), []string{"-dir", t.TempDir(), "-duration", "100ms"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "telemetry is off: DO_NOT_TRACK is set") || !strings.Contains(s, "Nothing was recorded.") {
		t.Fatalf("output:\n%s", s)
	}
}
