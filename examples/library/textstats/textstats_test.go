package textstats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/examples/library/textstats"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

const text = "Go is fun. The go tool builds Go code! Is it fast? It is."

func TestStatistics(t *testing.T) {
	a := textstats.New(textstats.Options{})
	if n := a.WordCount(text); n != 14 {
		t.Errorf("WordCount = %d, want 14", n)
	}
	if n := a.Sentences(text); n != 4 {
		t.Errorf("Sentences = %d, want 4", n)
	}
	got := a.TopWords(text, 3)
	want := []textstats.WordFreq{{"go", 3}, {"is", 3}, {"it", 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TopWords = %v, want %v", got, want)
	}
	cs := textstats.New(textstats.Options{CaseSensitive: true, StopWords: []string{"is"}, MinWordLength: 2})
	got = cs.TopWords(text, 2)
	want = []textstats.WordFreq{{"Go", 2}, {"Is", 1}} // "is" is a stop word; "Is" is not
	if !reflect.DeepEqual(got, want) {
		t.Errorf("case-sensitive TopWords = %v, want %v", got, want)
	}
	if r := a.Readability(text); r < 60 || r > 120 {
		t.Errorf("Readability = %.1f, want plain-English range", r)
	}
	if r := a.Readability(""); r != 0 {
		t.Errorf("Readability(\"\") = %v", r)
	}
}

func TestRecordsFunctionsAndOptions(t *testing.T) {
	dir := t.TempDir()
	tk, err := textstats.NewTelemetry(core.Config{
		ConfigDir: filepath.Join(dir, "config"),
		Consent:   consent.Silent,
		Queue:     core.Queue{Path: filepath.Join(dir, "queue.db")},
		Host:      core.Host{Getenv: func(string) string { return "" }},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := textstats.New(textstats.Options{Telemetry: tk, StopWords: []string{"secret-word"}})
	a.TopWords(text, 2)
	a.Readability(text)
	if err := tk.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = tk.Queued(context.Background(), func(b []byte) error {
		var ev wire.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		if ev.ServiceName != "textstats" || ev.ServiceVersion != textstats.Version {
			t.Errorf("service %s %s", ev.ServiceName, ev.ServiceVersion)
		}
		got = append(got, fmt.Sprint(ev.EventType, " ", ev.Metadata))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"method_called map[case_sensitive:false method:New min_word_length:false stop_words:true]",
		"method_called map[method:TopWords n:2]",
		"feature_used map[feature:readability]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("recorded\n%q\nwant\n%q", got, want)
	}
}

func ExampleAnalyzer_TopWords() {
	a := textstats.New(textstats.Options{StopWords: []string{"the"}})
	for _, wf := range a.TopWords("The cache and the queue: the cache wins.", 2) {
		fmt.Println(wf.Word, wf.Count)
	}
	// Output:
	// cache 2
	// and 1
}
