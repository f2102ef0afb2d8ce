// Command library is telemetry-kit's library-mode example: a long-running
// program uses the textstats library for a few seconds, textstats records
// which of its functions and options are used, and the program then prints
// what was recorded. See README.md.
//
//	go run ./examples/library [-dir .tk-demo] [-duration 3s] [-workers 2]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telemetry-kit/telemetry-kit/consent"
	"github.com/telemetry-kit/telemetry-kit/core"
	"github.com/telemetry-kit/telemetry-kit/examples/library/textstats"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "library example:", err)
		os.Exit(1)
	}
}

// run is the whole program: it exercises textstats for a while against a
// local queue in -dir, closes the client, and prints what was recorded.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("library", flag.ContinueOnError)
	dir := fs.String("dir", ".tk-demo", "directory for the demo's queue and settings (replaced on each run)")
	duration := fs.Duration("duration", 3*time.Second, "how long to keep the library busy")
	workers := fs.Int("workers", 2, "concurrent callers")
	pace := fs.Duration("pace", 10*time.Millisecond, "pause between two documents of one caller")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base := filepath.Join(*dir, "textstats")
	if err := os.RemoveAll(base); err != nil {
		return err
	}
	tk, err := textstats.NewTelemetry(core.Config{
		ConfigDir: filepath.Join(base, "config"),
		// The library's author informs users in its README; nothing is
		// sent without an endpoint, and DO_NOT_TRACK still wins.
		Consent: consent.Silent,
		Queue:   core.Queue{Path: filepath.Join(base, "queue.db")},
		Library: core.Library{PersistInterval: 500 * time.Millisecond},
		Host:    core.Host{Getenv: getenv},
	})
	if err != nil {
		return err
	}
	st, _ := tk.Status(ctx)
	fmt.Fprintf(stdout, "textstats records its use in library mode: telemetry is %s: %s.\n", onOff(st.Enabled), st.Reason)
	fmt.Fprintf(stdout, "Queue: %s (local only: no endpoint, nothing is sent).\n", st.QueuePath)
	fmt.Fprintf(stdout, "Running %d callers for %s...\n", *workers, *duration)
	session := tk.SessionID()

	calls := exercise(ctx, tk, *workers, *duration, *pace)

	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tk.Close(closeCtx); err != nil {
		return fmt.Errorf("closing the telemetry client: %w", err)
	}
	return summarize(context.Background(), stdout, tk, session, calls)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// exercise plays a long-running service that analyses documents as they
// come, with a few differently configured analyzers. It returns how many
// calls of each function it made.
func exercise(ctx context.Context, tk *core.Client, workers int, d time.Duration, pace time.Duration) map[string]int {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex
		calls = map[string]int{}
		docs  atomic.Int64
		wg    sync.WaitGroup
	)
	count := func(name string) {
		mu.Lock()
		calls[name]++
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			analyzers := []*textstats.Analyzer{
				textstats.New(textstats.Options{Telemetry: tk}),
				textstats.New(textstats.Options{Telemetry: tk, StopWords: []string{"the", "a", "and", "of", "to"}, MinWordLength: 3}),
			}
			count("New")
			count("New")
			if w%2 == 1 {
				analyzers = append(analyzers, textstats.New(textstats.Options{Telemetry: tk, CaseSensitive: true}))
				count("New")
			}
			for ctx.Err() == nil {
				doc := document(rng)
				a := analyzers[rng.IntN(len(analyzers))]
				a.WordCount(doc)
				count("WordCount")
				switch rng.IntN(4) {
				case 0:
					a.TopWords(doc, 5)
					count("TopWords")
				case 1:
					a.Readability(doc)
					count("readability")
				case 2:
					a.Sentences(doc)
					count("Sentences")
				}
				docs.Add(1)
				select {
				case <-ctx.Done():
				case <-time.After(pace):
				}
			}
		}()
	}
	wg.Wait()
	calls["documents"] = int(docs.Load())
	return calls
}

var vocabulary = strings.Fields(`the a and of to build test deploy service request latency cache
queue event server client error retry timeout config release version user data report`)

// document makes up a few sentences of text.
func document(rng *rand.Rand) string {
	var b strings.Builder
	for range 1 + rng.IntN(4) {
		n := 4 + rng.IntN(10)
		for i := range n {
			w := vocabulary[rng.IntN(len(vocabulary))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			if i < n-1 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(". ")
	}
	return b.String()
}

// summarize prints what this run recorded: the events of its session in the
// queue, counted by type and name, and one of them as it will be sent.
func summarize(ctx context.Context, w io.Writer, tk *core.Client, session string, calls map[string]int) error {
	counts := map[string]int{}
	options := map[string]int{}
	var sample []byte
	total := 0
	err := tk.Queued(ctx, func(data []byte) error {
		var ev wire.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return err
		}
		if ev.SessionID != session {
			return nil
		}
		total++
		name, _ := ev.Metadata["method"].(string)
		if f, ok := ev.Metadata["feature"].(string); ok {
			name = f
		}
		counts[ev.EventType+" "+name]++
		if name == "New" {
			for _, opt := range []string{"case_sensitive", "min_word_length", "stop_words"} {
				if on, _ := ev.Metadata[opt].(bool); on {
					options[opt]++
				}
			}
		}
		if sample == nil && name == "TopWords" {
			sample = slices.Clone(data)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Analysed %d documents.\n", calls["documents"])
	if total == 0 {
		fmt.Fprintln(w, "Nothing was recorded.")
		return nil
	}
	fmt.Fprintf(w, "Recorded %d events (lost: %d):\n", total, tk.Lost())
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		typ, name, _ := strings.Cut(k, " ")
		fmt.Fprintf(w, "  %-14s %-12s %6d  (calls made: %d)\n", typ, name, counts[k], calls[name])
	}
	fmt.Fprintf(w, "Options used when creating analyzers: case_sensitive %d, min_word_length %d, stop_words %d\n",
		options["case_sensitive"], options["min_word_length"], options["stop_words"])
	if sample != nil {
		fmt.Fprintf(w, "One event, exactly as it will be sent:\n%s\n", sample)
	}
	for k, n := range counts {
		_, name, _ := strings.Cut(k, " ")
		if n != calls[name] {
			return errors.New("some calls were not recorded")
		}
	}
	return nil
}
