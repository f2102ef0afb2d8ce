package privacy

import (
	"os"
	"path/filepath"
	"strings"
)

// MarkerHostname replaces this machine's host name, and MarkerUser this
// user's login name, when a [Scrubber] knows them.
const (
	MarkerHostname = "<hostname>"
	MarkerUser     = "<user>"
)

// Scrubber is [Scrub] plus this machine's own identifying strings, which no
// pattern can recognise: a home directory outside /home and /Users (such as
// /root or /var/lib/jenkins), the host name, and the user name as a path
// segment. The zero value behaves like [Scrub].
type Scrubber struct {
	// Home is the user's home directory; it becomes "~". Zero: none.
	Home string
	// Hostname is replaced as a whole word ("<hostname>"), ignoring case.
	// Names shorter than 3 characters and "localhost" are ignored. Zero: none.
	Hostname string
	// Username is replaced where it is a whole path segment ("/<user>/").
	// Names shorter than 3 characters are ignored. Zero: none.
	Username string
}

// LocalScrubber returns a Scrubber for the current user on this machine.
// What cannot be read is left empty.
func LocalScrubber() Scrubber {
	var s Scrubber
	if home, err := os.UserHomeDir(); err == nil {
		s.Home = filepath.Clean(home)
	}
	if host, err := os.Hostname(); err == nil {
		s.Hostname = host
	}
	// The login name from the environment, as shells set it: asking the
	// system's user database (os/user) can cost a CLI a millisecond at start.
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			s.Username = v
			break
		}
	}
	if s.Username == "" && s.Home != "" {
		s.Username = filepath.Base(s.Home)
	}
	if i := strings.LastIndexAny(s.Username, `\`); i >= 0 { // DOMAIN\name on Windows
		s.Username = s.Username[i+1:]
	}
	return s
}

// markerWords are the words inside markers: a local name equal to one of
// them is not replaced, so that scrubbing stays idempotent.
var markerWords = map[string]bool{
	"email": true, "ip": true, "mac": true, "credentials": true, "secret": true, "card": true,
	"too_long": true, "hostname": true, "user": true,
}

func usable(name string, minLen int) bool {
	return len(name) >= minLen && !markerWords[strings.ToLower(name)] && !strings.ContainsAny(name, "<>~")
}

// Scrub applies [Scrub] and removes the Scrubber's local names.
func (sc Scrubber) Scrub(s string) string {
	if sc == (Scrubber{}) {
		return Scrub(s)
	}
	for range 4 {
		next := sc.pass(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

func (sc Scrubber) pass(s string) string {
	if home := strings.TrimRight(sc.Home, `/\`); len(home) > 1 && usable(home, 2) && strings.Contains(s, home) {
		s = replacePrefixPath(s, home)
	}
	s = Scrub(s)
	if h := sc.Hostname; usable(h, 3) && !strings.EqualFold(h, "localhost") {
		s = replaceWordFold(s, h, MarkerHostname)
		// The short name of a fully qualified host name, too.
		if short, _, ok := strings.Cut(h, "."); ok && usable(short, 3) && !strings.EqualFold(short, "localhost") {
			s = replaceWordFold(s, short, MarkerHostname)
		}
	}
	if u := sc.Username; usable(u, 3) && !strings.ContainsAny(u, `/\`) {
		s = replaceSegment(s, u, MarkerUser)
	}
	return s
}

// replacePrefixPath replaces home where it is a whole path: followed by
// the end, a separator or a character that cannot continue a file name.
func replacePrefixPath(s, home string) string {
	var b strings.Builder
	last := 0
	for i := 0; ; {
		j := strings.Index(s[i:], home)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(home)
		if end == len(s) || !isNameChar(s[end]) {
			b.WriteString(s[last:start])
			b.WriteString(MarkerHome)
			last = end
		}
		i = end
	}
	return finishReplace(&b, s, last)
}

func isNameChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '-' || c >= 0x80
}

// replaceWordFold replaces whole-word, case-insensitive occurrences of
// word (ASCII folding).
func replaceWordFold(s, word, marker string) string {
	if len(word) > len(s) {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i+len(word) <= len(s); {
		if strings.EqualFold(s[i:i+len(word)], word) &&
			(i == 0 || !isWordChar(s[i-1])) && (i+len(word) == len(s) || !isWordChar(s[i+len(word)])) {
			b.WriteString(s[last:i])
			b.WriteString(marker)
			i += len(word)
			last = i
			continue
		}
		i++
	}
	return finishReplace(&b, s, last)
}

func isWordChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c >= 0x80 }

// replaceSegment replaces name where it is a whole path segment: between
// separators, or after one at the end.
func replaceSegment(s, name, marker string) string {
	var b strings.Builder
	last := 0
	for i := 0; ; {
		j := strings.Index(s[i:], name)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(name)
		before := start > 0 && (s[start-1] == '/' || s[start-1] == '\\')
		after := end == len(s) || s[end] == '/' || s[end] == '\\' || !isNameChar(s[end])
		if before && after {
			b.WriteString(s[last:start])
			b.WriteString(marker)
			last = end
		}
		i = end
	}
	return finishReplace(&b, s, last)
}

// ScrubValue is [ScrubValue] with the Scrubber's local names removed too.
func (sc Scrubber) ScrubValue(v any) any {
	return scrubValue(v, 0, sc.Scrub)
}
