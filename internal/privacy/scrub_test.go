package privacy

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

type corpusRow struct {
	line            int
	label, in, want string
}

func field(t *testing.T, s string) string {
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("bad quoted field %s: %v", s, err)
		}
		return u
	}
	return s
}

func loadCorpus(t *testing.T) []corpusRow {
	t.Helper()
	f, err := os.Open("testdata/scrub_corpus.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []corpusRow
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			t.Fatalf("line %d: %d fields, want 3", n, len(parts))
		}
		rows = append(rows, corpusRow{n, parts[0], field(t, parts[1]), field(t, parts[2])})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestScrubCorpus(t *testing.T) {
	rows := loadCorpus(t)
	if len(rows) < 150 {
		t.Fatalf("corpus has %d rows, want at least 150", len(rows))
	}
	perLabel := map[string]int{}
	for _, r := range rows {
		perLabel[r.label]++
		if r.label == "keep" && r.in != r.want {
			t.Errorf("line %d: a keep row must expect its input unchanged", r.line)
		}
		if r.label != "keep" && r.in == r.want {
			t.Errorf("line %d: a %s row must expect a change", r.line, r.label)
		}
		got := Scrub(r.in)
		if got != r.want {
			t.Errorf("line %d [%s]: Scrub(%q) = %q, want %q", r.line, r.label, r.in, got, r.want)
		}
		if again := Scrub(got); again != got {
			t.Errorf("line %d: not idempotent: %q then %q", r.line, got, again)
		}
	}
	// Every kind the scrubber promises is exercised, and ordinary values
	// are the larger part.
	for _, kind := range []string{"email", "ipv4", "ipv6", "url_credentials", "query_secret", "key_value_secret",
		"home_path", "github_token", "aws_key", "slack_token", "jwt", "hex", "base64", "card", "bearer", "mac"} {
		if perLabel[kind] < 2 {
			t.Errorf("corpus has %d %q rows, want at least 2", perLabel[kind], kind)
		}
	}
	if perLabel["keep"] < 100 {
		t.Errorf("corpus has %d keep rows, want at least 100", perLabel["keep"])
	}
}

// The rules for secrets match names without regard to case, and Unicode
// folds the Kelvin sign into k and a long s into s: the cheap check that
// skips those rules must not skip such names.
func TestScrubSecretNamesFold(t *testing.T) {
	for in, want := range map[string]string{
		"pa\u017f\u017fword=x": "pa\u017f\u017fword=<secret>",
		"\u017fecret: x":       "\u017fecret: <secret>",
		"api_\u212aey=x":       "api_\u212aey=<secret>",
		"--to\u212aen x":       "--to\u212aen <secret>",
	} {
		if got := Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

// Random tokens of the sizes real keys have are caught in nearly all cases
// (the heuristic's documented miss rate is about 1 %).
func TestScrubRandomTokens(t *testing.T) {
	const n = 2000
	missed := map[string]int{}
	for range n {
		b := make([]byte, 30)
		rand.Read(b)
		for kind, s := range map[string]string{
			"base64-40":    base64.StdEncoding.EncodeToString(b),
			"base64url-40": base64.RawURLEncoding.EncodeToString(b)[:40],
			"hex-40":       hex.EncodeToString(b[:20]),
		} {
			if Scrub("value "+s+" end") != "value <secret> end" {
				missed[kind]++
			}
		}
	}
	for kind, m := range missed {
		if m > n*3/100 {
			t.Errorf("%s: %d of %d random tokens were not scrubbed", kind, m, n)
		}
	}
	if missed["hex-40"] != 0 {
		t.Errorf("hex digests missed: %d", missed["hex-40"])
	}
}

func TestScrubValue(t *testing.T) {
	type props struct {
		Owner string `json:"owner"`
		Count int    `json:"count"`
	}
	type label string
	in := map[string]any{
		"command":           "remote add",
		"args_count":        2,
		"success":           true,
		"duration_ms":       int64(12),
		"ratio":             0.5,
		"flags":             []string{"force", "bob@example.com"},
		"flag_values":       map[string]string{"output": "/home/alice/out.json", "format": "json"},
		"nested":            []any{"10.0.0.1", map[string]any{"deep": "token=abc"}, nil, 7},
		"struct":            props{Owner: "carol@example.com", Count: 3},
		"named":             label("C:\\Users\\dave\\x"),
		"ints":              []int{1, 2},
		"alice@example.com": "key that is personal",
	}
	want := map[string]any{
		"command":     "remote add",
		"args_count":  2,
		"success":     true,
		"duration_ms": int64(12),
		"ratio":       0.5,
		"flags":       []string{"force", "<email>"},
		"flag_values": map[string]string{"output": "~/out.json", "format": "json"},
		"nested":      []any{"<ip>", map[string]any{"deep": "token=<secret>"}, nil, 7},
		"struct":      map[string]any{"owner": "<email>", "count": float64(3)},
		"named":       "~\\x",
		"ints":        []any{1, 2},
		"<email>":     "key that is personal",
	}
	got := ScrubValue(in)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ScrubValue:\n got  %#v\n want %#v", got, want)
	}
	// The input is not modified.
	if in["flags"].([]string)[1] != "bob@example.com" || in["flag_values"].(map[string]string)["output"] != "/home/alice/out.json" {
		t.Fatal("ScrubValue modified its input")
	}
	long := strings.Repeat("ab/", MaxScrubLen)
	if got := Scrub(long); got != MarkerTooLong {
		t.Fatalf("a %d-byte string scrubbed to %d bytes", len(long), len(got))
	}
	if plain := strings.Repeat("ab ", MaxScrubLen); Scrub(plain) != plain {
		t.Fatal("a long string that passes the pre-check was replaced")
	}
	// A map that contains itself does not hang.
	loop := map[string]any{}
	loop["self"] = loop
	ScrubValue(loop)
	if ScrubValue(nil) != nil || ScrubValue(func() {}) != nil {
		t.Fatal("nil or unencodable value not nil")
	}
}

func FuzzScrub(f *testing.F) {
	for _, s := range []string{"build", "bob@example.com", "10.0.0.1", "::1", "/home/alice/x", "C:\\Users\\bob\\x",
		"https://u:p@h/?token=t", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE", "password=x", "Authorization: Bearer abcdefghijklmnopq"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1024 {
			// Event strings are at most 1,024 characters; longer inputs
			// only slow the search down.
			t.Skip()
		}
		once := Scrub(s)
		if twice := Scrub(once); twice != once {
			t.Fatalf("not idempotent:\n in    %q\n once  %q\n twice %q", s, once, twice)
		}
		local := Scrubber{Home: "/srv/alice", Hostname: "alice-laptop", Username: "alice"}
		if l1 := local.Scrub(s); local.Scrub(l1) != l1 {
			t.Fatalf("Scrubber not idempotent on %q: %q then %q", s, l1, local.Scrub(l1))
		}
		if utf8.ValidString(s) && !utf8.ValidString(once) {
			t.Fatalf("valid UTF-8 %q became invalid %q", s, once)
		}
		if !suspicious(s) {
			if slow := scrubSlow(s); slow != s {
				t.Fatalf("the pre-check skips %q, which the rules change to %q", s, slow)
			}
		}
	})
}

var sink string

func BenchmarkScrubOrdinary(b *testing.B) {
	inputs := []string{"build", "remote add", "--watch", "force", "command_executed", "json", "verbose", "true"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink = Scrub(inputs[i%len(inputs)])
	}
}

func BenchmarkScrubOrdinarySlowPath(b *testing.B) {
	inputs := []string{"v1.2.3", "src/main.go", "linux/amd64", "api.example.com", "2026-11-25T21:40:51.123Z"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink = Scrub(inputs[i%len(inputs)])
	}
}

func BenchmarkScrubPII(b *testing.B) {
	inputs := []string{"bob@example.com", "open /home/alice/.ssh/id_rsa: permission denied", "connect 10.0.0.1:5432",
		"https://user:pass@example.com/x?token=abc", "card 4111 1111 1111 1111", "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink = Scrub(inputs[i%len(inputs)])
	}
}
