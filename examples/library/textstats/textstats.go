// Package textstats computes simple statistics of English text: words,
// sentences, the most frequent words and a readability score.
//
// It is the library of telemetry-kit's library-mode example: it records
// which of its functions and options its callers use, through a
// [core.Client] in [core.LibraryMode] that the caller passes in
// [Options.Telemetry] (see [NewTelemetry]). Recording never blocks a call
// and never changes a result. With a nil client nothing is recorded.
package textstats

import (
	"cmp"
	"slices"
	"strings"
	"unicode"

	"github.com/telemetry-kit/telemetry-kit/core"
)

// Version is the library's version, recorded in its events.
const Version = "1.2.0"

// NewTelemetry returns the client that records textstats' use. cfg holds
// what the host decides (queue path, consent mode, endpoint, logger); the
// service name, version and mode are the library's own.
func NewTelemetry(cfg core.Config) (*core.Client, error) {
	cfg.ServiceName = "textstats"
	cfg.ServiceVersion = Version
	cfg.Mode = core.LibraryMode
	return core.New(cfg)
}

// Options configures an [Analyzer]. The zero value is ready to use.
type Options struct {
	// MinWordLength ignores shorter words in TopWords. Zero: every word counts.
	MinWordLength int
	// CaseSensitive keeps "Go" and "go" apart. Zero: words are lower-cased.
	CaseSensitive bool
	// StopWords are left out of TopWords. Zero: none.
	StopWords []string
	// Telemetry records which functions and options are used.
	// Zero: nothing is recorded.
	Telemetry *core.Client
}

// Analyzer computes statistics with fixed options. It is safe for
// concurrent use.
type Analyzer struct {
	opts Options
	stop map[string]bool
	tk   *core.Client
}

// New returns an analyzer with opts.
func New(opts Options) *Analyzer {
	a := &Analyzer{opts: opts, stop: map[string]bool{}, tk: opts.Telemetry}
	for _, w := range opts.StopWords {
		a.stop[a.norm(w)] = true
	}
	// Which options are used, never their values: stop words could say
	// something about the caller's data.
	a.tk.TrackMethod("New", core.Props{
		"min_word_length": opts.MinWordLength > 0,
		"case_sensitive":  opts.CaseSensitive,
		"stop_words":      len(opts.StopWords) > 0,
	})
	return a
}

func (a *Analyzer) norm(w string) string {
	if a.opts.CaseSensitive {
		return w
	}
	return strings.ToLower(w)
}

// Words splits text into words: runs of letters, digits and apostrophes.
func (a *Analyzer) Words(text string) []string {
	a.tk.TrackMethod("Words", nil)
	return a.words(text)
}

func (a *Analyzer) words(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// WordCount returns the number of words in text.
func (a *Analyzer) WordCount(text string) int {
	a.tk.TrackMethod("WordCount", nil)
	return len(a.words(text))
}

// Sentences returns the number of sentences in text: runs of text ended by
// '.', '!' or '?', or by the end of the text.
func (a *Analyzer) Sentences(text string) int {
	a.tk.TrackMethod("Sentences", nil)
	return a.sentences(text)
}

func (a *Analyzer) sentences(text string) int {
	n, inSentence := 0, false
	for _, r := range text {
		switch {
		case r == '.' || r == '!' || r == '?':
			if inSentence {
				n++
			}
			inSentence = false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			inSentence = true
		}
	}
	if inSentence {
		n++
	}
	return n
}

// WordFreq is a word and how often it occurs.
type WordFreq struct {
	Word  string
	Count int
}

// TopWords returns the n most frequent words of text, most frequent first
// (ties in alphabetical order), leaving out stop words and words shorter
// than MinWordLength.
func (a *Analyzer) TopWords(text string, n int) []WordFreq {
	a.tk.TrackMethod("TopWords", core.Props{"n": n})
	counts := map[string]int{}
	for _, w := range a.words(text) {
		w = a.norm(w)
		if len([]rune(w)) < a.opts.MinWordLength || a.stop[w] {
			continue
		}
		counts[w]++
	}
	out := make([]WordFreq, 0, len(counts))
	for w, c := range counts {
		out = append(out, WordFreq{w, c})
	}
	slices.SortFunc(out, func(x, y WordFreq) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return strings.Compare(x.Word, y.Word)
	})
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// Readability returns the Flesch reading-ease score of text: higher is
// easier; 60 to 70 is plain English. Empty text scores 0.
func (a *Analyzer) Readability(text string) float64 {
	a.tk.TrackFeature("readability", nil)
	words := a.words(text)
	sentences := a.sentences(text)
	if len(words) == 0 || sentences == 0 {
		return 0
	}
	syllables := 0
	for _, w := range words {
		syllables += countSyllables(w)
	}
	return 206.835 - 1.015*float64(len(words))/float64(sentences) - 84.6*float64(syllables)/float64(len(words))
}

// countSyllables estimates a word's syllables as its groups of vowels,
// without a final silent 'e', and at least one.
func countSyllables(word string) int {
	word = strings.ToLower(word)
	n, prevVowel := 0, false
	for _, r := range word {
		v := strings.ContainsRune("aeiouy", r)
		if v && !prevVowel {
			n++
		}
		prevVowel = v
	}
	if strings.HasSuffix(word, "e") && n > 1 && !strings.HasSuffix(word, "le") {
		n--
	}
	return max(n, 1)
}
