package privacy

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Markers that replace what the scrubber removes.
const (
	MarkerEmail       = "<email>"
	MarkerIP          = "<ip>"
	MarkerMAC         = "<mac>"
	MarkerCredentials = "<credentials>"
	MarkerSecret      = "<secret>"
	MarkerCard        = "<card>"
	// MarkerTooLong replaces a whole string longer than [MaxScrubLen].
	MarkerTooLong = "<too_long>"
	// MarkerHome replaces a home directory and the user name in it:
	// "/home/alice/src" becomes "~/src".
	MarkerHome = "~"
)

var (
	rePrivateKey = lazyRE(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`)
	reJWT        = lazyRE(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*`)
	reKnownToken = lazyRE(`\b(?:` +
		`gh[pousr]_[A-Za-z0-9]{30,}` + // GitHub
		`|github_pat_[A-Za-z0-9_]{22,}` +
		`|glpat-[A-Za-z0-9_-]{20,}` + // GitLab
		`|(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b` + // AWS access key ID
		`|xox[abposre]-[A-Za-z0-9-]{11,}|xapp-[A-Za-z0-9-]{11,}` + // Slack
		`|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}` + // Stripe
		`|AIza[A-Za-z0-9_-]{35}` + // Google API key
		`|npm_[A-Za-z0-9]{36}` + // npm
		`|sk-[A-Za-z0-9_-]{20,}` + // OpenAI-style
		`|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}` + // SendGrid
		`)`)
	reWebhook = lazyRE(`((?:hooks\.slack\.com/(?:services|workflows|triggers)|discord(?:app)?\.com/api/webhooks)/)[A-Za-z0-9/_-]+`)
	// userinfo in a URL: scheme://user:password@host. It ends at the last
	// @ before the host, as URL parsers read it: a password may hold an @.
	reURLCredentials = lazyRE(`\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#<>"']+@`)
	// The name may be quoted, as in JSON: "Authorization": "Basic ...".
	reAuthHeader = lazyRE(`(?i)\b((?:proxy-)?authorization["']?\s*[:=]\s*(?:(?:bearer|basic|digest|token|negotiate)\s+)?)("[^"]*"|[^\s,;"'<]+)`)
	reBearer     = lazyRE(`(?i)\b(bearer\s+)([A-Za-z0-9._+/-]{16,}=*)`)
	// name=value and name: value where the name says it is a secret. The
	// first group is the character before the name (or the start). The
	// name may be quoted, as in JSON and Python: "api_key": "...". The
	// separator may be more than one character (Ruby's =>, Go's :=); the
	// value does not start with one of its characters, so that a scrubbed
	// "token := <secret>" is not read as "token :" and a value "=".
	reKeyValue = lazyRE(`(?i)(^|[^A-Za-z0-9_.-])(` + secretName + `)` +
		`(["']?\s*[=:][=:>]*\s*)("[^"]*"|'[^']*'|[^\s&,;"'<>=:][^\s&,;"'<>]*)`)
	// A command-line flag that names a secret, and its value after white
	// space: --password hunter2, -token abc. (--token=abc is a name=value
	// pair.) A value that starts with - is the next flag.
	reFlagSecret = lazyRE(`(?i)(^|[\s"'])(--?` + secretName + `)(\s+)("[^"]*"|'[^']*'|[^\s"'<>-][^\s"'<>]*)`)
	// An e-mail address may have accented letters (josé@exämple.com) and
	// its @ may be URL-encoded (bob%40example.com). Letters of other
	// scripts are left out: CJK text has no spaces around an address. An
	// apostrophe counts only inside the local part (o'brien@...), so that
	// 'bob@example.com' keeps its quotes.
	reEmail = lazyRE(`[` + emailLetter + `0-9._%+-]+(?:'[` + emailLetter + `0-9._%+-]+)*(?:@|%40)` +
		emailLabel + `(?:\.` + emailLabel + `)*\.[A-Za-z]{2,}`)
	// Home directories: C:\Users\alice, /home/alice, /Users/alice. The
	// Unix forms may be written with backslashes, as Windows shows WSL's
	// and MSYS2's homes (\\wsl$\Ubuntu\home\alice, C:\msys64\home\alice),
	// or with both, as JSON may escape a slash (\/home\/alice).
	reHome = lazyRE(`(?:\b[A-Za-z]:[\\/]+|\\+)(?i:users|documents and settings)[\\/]+[^\\/"'<>:;,|*?\r\n\t]+` +
		`|[/\\](?:home|Users)[/\\]+[^/\\\s"'<>:;,|*?]+`)
	// ~alice, a user's home directory in the shell's notation (and in a
	// URL such as https://example.edu/~alice/). HEAD~1 and Foo::~Foo are
	// not: the tilde must open a word or a path segment.
	reTildeUser = lazyRE(`(^|[\s"'=,;(\[{/])~[A-Za-z_](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?`)
	// An octet may be zero-padded (192.168.001.010), as some tools print it.
	reIPv4 = lazyRE(`(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])`)
	reIPv6 = lazyRE(`[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*`)
	reMAC  = lazyRE(`\b[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})(?:[:-][0-9A-Fa-f]{2}){4}\b`)
	// Cisco writes a MAC address as three dotted groups: aabb.ccdd.eeff.
	reMACDotted = lazyRE(`\b[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\b`)
)

// secretName is a name that says its value is a secret: one that ends in
// a word such as password, token or api_key, or is "key" itself.
const secretName = `(?:[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|` +
	`secret[_-]?key|signing[_-]?key|encryption[_-]?key|auth|credentials?|signature|sig|session[_-]?id|sessionid|cookie)|key)`

// emailLetter is a letter in an e-mail address: ASCII, the accented Latin
// letters (Latin-1 to Latin Extended-B) and combining accents. A few
// ranges are matched much faster than the class of all Latin letters.
const emailLetter = `A-Za-z\x{00C0}-\x{024F}\x{0300}-\x{036F}`

// emailLabel is one label of the domain of an e-mail address.
const emailLabel = `[` + emailLetter + `0-9](?:[` + emailLetter + `0-9-]*[` + emailLetter + `0-9])?`

// lazyRE compiles expr on first use, so that a host that records no
// string needing a rule pays nothing for it at start-up.
func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// Scrub removes personal data and secrets from s, replacing each with a
// marker:
//
//   - e-mail addresses, also with accented letters, an apostrophe or a
//     URL-encoded @ (bob%40example.com): <email>;
//   - IPv4 addresses (zero-padded too) and IPv6 addresses, with a port, a
//     zone, brackets or a name and a colon around them (inet6
//     addr:fe80::1/64): <ip>;
//   - MAC addresses written with colons or dashes in either case, or in
//     Cisco's dotted form (aabb.ccdd.eeff): <mac>;
//   - credentials in URLs, even a password that holds an @:
//     scheme://<credentials>@host;
//   - secrets in query strings and name=value pairs where the name says it
//     is one (token=<secret>), also with the name quoted as in JSON
//     ("api_key": <secret>) or with => or := between them, and the value
//     of such a command-line flag after a space (--password <secret>);
//   - known token formats (GitHub, GitLab, AWS, Slack, Stripe, Google, npm,
//     JWT, private keys) and long hex or base64 strings: <secret>;
//   - payment card numbers that pass the Luhn check, whole or in groups
//     set apart by spaces or dashes: <card>;
//   - home directories and the user name in them: /home/alice/x,
//     /Users/alice/x, C:\Users\alice\x and ~alice/x become ~/x, ~/x, ~\x
//     and ~/x, also written with backslashes as Windows shows WSL's and
//     MSYS2's homes (\\wsl$\Ubuntu\home\alice). /root is kept: it names no
//     person and is the same on every machine ([Scrubber] replaces it when
//     it is the user's home).
//
// Ordinary values pass unchanged: command and flag names, versions,
// relative paths, durations, short numbers, UUIDs, domain names,
// kebab-case words. A value that has the form of one of the above is
// replaced even if it means something else: six pairs of hex letters
// (de-ad-be-ef-ca-fe) are a MAC address, and the word after a flag whose
// name says secret (--no-auth deploy) is its value.
//
// Scrub is idempotent: Scrub(Scrub(s)) == Scrub(s). Its cost is linear in
// the length of s; a string longer than [MaxScrubLen] bytes is replaced
// whole by "<too_long>" (event strings are limited to 1,024 characters
// anyway), which bounds the time spent on one string.
func Scrub(s string) string {
	if !suspicious(s) {
		return s
	}
	return scrubSlow(s)
}

// scrubSlow applies every rule. For any string that suspicious rejects it
// returns the string unchanged (the fuzz target checks this).
func scrubSlow(s string) string {
	if len(s) > MaxScrubLen {
		return MarkerTooLong
	}
	// Each pass may expose something for another rule (a marker next to
	// text that now has a boundary); repeat until nothing changes.
	for range 8 {
		next := scrubPass(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// MaxScrubLen is the longest string [Scrub] examines.
const MaxScrubLen = 16 << 10

// suspicious is the cheap pre-check. A string that has none of
// @ : / \\ . = ~, fewer than 13 digits, no "-----", no five "hh-" pairs of
// hex digits in a row (aa-bb-cc-dd-ee-ff), no word starting with '-'
// followed by white space and a word that does not (--password x), and no
// run of 16 or more token characters (letters, digits, _ + -) that
// includes a digit or an upper-case letter cannot hold anything Scrub
// removes: every rule needs one of these (tokens are matched only when
// they mix in a digit or an upper-case letter).
func suspicious(s string) bool {
	digits, run, dashes := 0, 0, 0
	mixed := false
	// inFlag: in a word that starts with '-' (at the start, after white
	// space or a quote). A word that follows it and does not start with
	// '-' may be the flag's value (--password hunter2).
	inFlag := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			run++
			mixed = true
			dashes = 0
		case c >= 'A' && c <= 'Z':
			run++
			mixed = true
			dashes = 0
		case c >= 'a' && c <= 'z', c == '_', c == '+':
			run++
			dashes = 0
		case c == '-':
			run++
			if dashes++; dashes >= 5 {
				return true
			}
			if i == 0 || isSpace(s[i-1]) || s[i-1] == '"' || s[i-1] == '\'' {
				inFlag = true
			}
			// A MAC address written with dashes in lower case has no
			// digit or upper-case letter to give it away: its fifth
			// dash ends "hh-hh-hh-hh-hh-".
			if i >= 14 && isHex(s[i-1]) {
				// Written out here: a helper with this loop is not
				// inlined, and calling it made the common path slower.
				g, k := s[i-14:i+1], 0
				for k < len(g) && isHex(g[k]) && isHex(g[k+1]) && g[k+2] == '-' {
					k += 3
				}
				if k == len(g) {
					return true
				}
			}
		case c == '@', c == ':', c == '/', c == '\\', c == '.', c == '=', c == '~':
			return true
		default:
			run, dashes, mixed = 0, 0, false
			if inFlag && isSpace(c) {
				// The flag's word ends: look past the white space at
				// what follows. A '-' there starts another flag.
				k := i + 1
				for k < len(s) && isSpace(s[k]) {
					k++
				}
				if k < len(s) && s[k] != '-' {
					return true
				}
				inFlag = false
			}
		}
		if run >= 16 && mixed || digits >= 13 {
			return true
		}
	}
	return false
}

// isSpace reports whether c is ASCII white space; it includes \v, which
// regexp's \s does not, so that suspicious errs on the safe side.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// hasDigitOrUpper reports whether s mixes in a digit or an upper-case
// letter, as random tokens do.
func hasDigitOrUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

func scrubPass(s string) string {
	// Each rule runs only when s has what the rule needs. Replacements only
	// insert markers, which add none of these features, so the checks made
	// on the input hold for the whole pass.
	var digits, dots, colons, maxRun, run int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		case c == ':':
			colons++
		}
		if isTokenChar(c) {
			if run++; run > maxRun {
				maxRun = run
			}
		} else {
			run = 0
		}
	}
	lower := strings.ToLower(s)
	has := func(sub string) bool { return strings.Contains(s, sub) }
	at, eq, slash, backslash := has("@"), has("="), has("/"), has(`\`)

	if strings.Contains(lower, "private key") {
		s = rePrivateKey().ReplaceAllLiteralString(s, MarkerSecret)
	}
	if dots >= 1 && has("eyJ") {
		s = reJWT().ReplaceAllLiteralString(s, MarkerSecret)
	}
	if maxRun >= 15 {
		s = reKnownToken().ReplaceAllStringFunc(s, func(m string) string {
			if !hasDigitOrUpper(m) {
				return m
			}
			return MarkerSecret
		})
	}
	if slash && (has("hooks.slack.com") || strings.Contains(lower, "discord")) {
		s = reWebhook().ReplaceAllString(s, "${1}"+MarkerSecret)
	}
	if at && has("://") {
		s = reURLCredentials().ReplaceAllString(s, "${1}"+MarkerCredentials+"@")
	}
	if (colons > 0 || eq) && strings.Contains(lower, "authorization") {
		s = reAuthHeader().ReplaceAllStringFunc(s, func(m string) string {
			sub := reAuthHeader().FindStringSubmatch(m)
			switch strings.ToLower(sub[2]) {
			case "bearer", "basic", "digest", "token", "negotiate":
				return m // the scheme of an already scrubbed header
			}
			return sub[1] + MarkerSecret
		})
	}
	if strings.Contains(lower, "bearer") {
		s = reBearer().ReplaceAllStringFunc(s, func(m string) string {
			sub := reBearer().FindStringSubmatch(m)
			if !hasDigitOrUpper(sub[2]) {
				return m
			}
			return sub[1] + MarkerSecret
		})
	}
	pair := colons > 0 || eq
	flag := has("-") && strings.ContainsAny(s, " \t\n\f\r")
	if (pair || flag) && (hasSecretWord(lower) || has("ſ")) {
		if pair {
			s = reKeyValue().ReplaceAllString(s, "${1}${2}${3}"+MarkerSecret)
		}
		if flag {
			s = reFlagSecret().ReplaceAllString(s, "${1}${2}${3}"+MarkerSecret)
		}
	}
	if dots > 0 && (at || has("%40")) {
		s = reEmail().ReplaceAllLiteralString(s, MarkerEmail)
	}
	if has("/home/") || has("/Users/") || backslash && has("home") || (slash || backslash) && strings.Contains(lower, "users") ||
		strings.Contains(lower, "documents and settings") {
		s = reHome().ReplaceAllLiteralString(s, MarkerHome)
	}
	if hasTildeName(s) {
		s = reTildeUser().ReplaceAllString(s, "${1}"+MarkerHome)
	}
	if colons >= 2 {
		s = replaceIPv6(s)
	}
	if dots >= 3 {
		s = replaceBounded(s, reIPv4(), MarkerIP)
	}
	if len(s) >= 17 && (colons >= 5 || has("-")) {
		s = replaceMAC(s)
	}
	if len(s) >= 14 && dots >= 2 && hasDottedHex(s) {
		s = replaceMACDotted(s)
	}
	if digits >= 13 {
		s = replaceCards(s)
	}
	if maxRun >= 32 {
		s = replaceTokens(s)
	}
	return s
}

// secretWords are parts of every name that secretName matches, in lower
// case: a string without one of them has no name=value secret, and the
// costly rules that look for one are skipped.
var secretWords = [...]string{"pass", "pwd", "secret", "token", "key", "auth", "credential", "sig", "session", "cookie"}

// hasSecretWord reports whether lower holds one of secretWords. The rules
// match without regard to case, and Unicode folds a long s (ſ) into s,
// which strings.ToLower keeps: the caller checks for ſ itself. (The Kelvin
// sign, which folds into k, becomes k in lower.)
func hasSecretWord(lower string) bool {
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// hasTildeName reports whether s has a tilde followed by a letter or '_',
// as ~alice, which reTildeUser needs; a bare ~ (a home marker) has not.
func hasTildeName(s string) bool {
	for i := strings.IndexByte(s, '~'); i >= 0 && i+1 < len(s); {
		if c := s[i+1]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' {
			return true
		}
		j := strings.IndexByte(s[i+1:], '~')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// hasDottedHex reports whether s has four hex digits, a dot and four hex
// digits, as a MAC address in Cisco's dotted form has.
func hasDottedHex(s string) bool {
	for i := 4; i+4 < len(s); i++ {
		if s[i] == '.' && isHex(s[i-1]) && isHex(s[i-2]) && isHex(s[i-3]) && isHex(s[i-4]) &&
			isHex(s[i+1]) && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// replaceBounded replaces matches of re that stand alone: not preceded by
// a letter, digit or '.', and not followed by a letter, digit or ".digit".
func replaceBounded(s string, re *regexp.Regexp, marker string) string {
	return replaceMatches(s, re.FindAllStringIndex(s, -1), marker, func(l []int) bool {
		i, j := l[0], l[1]
		return !(i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.')) &&
			!(j < len(s) && (isAlnum(s[j]) || s[j] == '.' && j+1 < len(s) && isDigit(s[j+1])))
	})
}

// replaceMatches replaces with marker each match of locs (as regexp's
// FindAll…Index give them) that replace accepts.
func replaceMatches(s string, locs [][]int, marker string, replace func(l []int) bool) string {
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		if !replace(l) {
			continue
		}
		b.WriteString(s[last:l[0]])
		b.WriteString(marker)
		last = l[1]
	}
	return finishReplace(&b, s, last)
}

// finishReplace completes a replacement that copied s[:last], with its
// markers, into b: s itself when nothing was replaced, else b plus the rest.
func finishReplace(b *strings.Builder, s string, last int) string {
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// replaceIPv6 replaces candidates that parse as IPv6 addresses.
func replaceIPv6(s string) string {
	if strings.Count(s, ":") < 2 {
		return s
	}
	locs := reIPv6().FindAllStringIndex(s, -1)
	var b strings.Builder
	last := 0
	for _, l := range locs {
		i, j := l[0], l[1]
		if j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '_') {
			if i = afterName(s, i, j); i < 0 {
				continue
			}
		}
		cand := s[i:j]
		// A sentence may end right after the address.
		for strings.HasSuffix(cand, ".") {
			cand = cand[:len(cand)-1]
		}
		if !strings.ContainsAny(cand, "0123456789") {
			continue
		}
		a, err := netip.ParseAddr(cand)
		if err != nil || !a.Is6() {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(MarkerIP)
		last = i + len(cand)
	}
	return finishReplace(&b, s, last)
}

// afterName returns where an address starts in the candidate s[i:j], which
// is glued to a word before it, when that word is a name followed by a
// colon, as in "addr:fe80::1" or "inet6:fe80::1" (the candidate starts
// inside the name, at its last hex digits); else -1. A word of hex digits
// is a group of a longer sequence, not a name.
func afterName(s string, i, j int) int {
	c := strings.IndexByte(s[i:j], ':')
	if c < 0 {
		return -1
	}
	c += i
	w := c
	for w > 0 && isAlnum(s[w-1]) {
		w--
	}
	for k := w; k < c; k++ {
		if !isHex(s[k]) {
			return c + 1
		}
	}
	return -1
}

func replaceMAC(s string) string {
	return replaceMatches(s, reMAC().FindAllStringSubmatchIndex(s, -1), MarkerMAC, func(l []int) bool {
		i, j := l[0], l[1]
		// One separator throughout, and not part of a longer sequence.
		return strings.Count(s[i:j], s[l[2]:l[2]+1]) == 5 && !pairBefore(s, i) && !pairAfter(s, j)
	})
}

// pairBefore reports whether a separator and a group of two hex digits
// come right before s[i:], as in a longer sequence (a fingerprint, an
// EUI-64). A name and a colon ("ether:aa:bb:...") are not such a group.
func pairBefore(s string, i int) bool {
	return i >= 3 && isMACSep(s[i-1]) && isHex(s[i-2]) && isHex(s[i-3]) && (i == 3 || !isAlnum(s[i-4]))
}

// pairAfter is pairBefore for what follows s[:j]. A separator at the end,
// or before a space ("...:ee:ff: no carrier"), does not continue it.
func pairAfter(s string, j int) bool {
	return j+3 <= len(s) && isMACSep(s[j]) && isHex(s[j+1]) && isHex(s[j+2]) && (j+3 == len(s) || !isAlnum(s[j+3]))
}

func isMACSep(c byte) bool { return c == ':' || c == '-' }

// replaceMACDotted replaces MAC addresses in Cisco's dotted form that stand
// alone: not inside a longer dotted name such as aabb.ccdd.eeff.example.com.
func replaceMACDotted(s string) string {
	return replaceMatches(s, reMACDotted().FindAllStringIndex(s, -1), MarkerMAC, func(l []int) bool {
		i, j := l[0], l[1]
		return !(i >= 2 && s[i-1] == '.' && isAlnum(s[i-2]) || j+1 < len(s) && s[j] == '.' && isAlnum(s[j+1]))
	})
}

// replaceCards finds runs of digit groups separated by spaces or dashes
// (see cardSep) and replaces any stretch of whole groups with 13–19 digits that
// starts like a card number (2–6) and passes the Luhn check.
func replaceCards(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) || i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			i++
			continue
		}
		// Collect groups.
		type group struct{ start, end int }
		var groups []group
		j := i
		for {
			k := j
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			groups = append(groups, group{j, k})
			if m := cardSep(s, k); m > k && m < len(s) && isDigit(s[m]) && len(groups) < 32 {
				j = m
				continue
			}
			j = k
			break
		}
		end := j
		if end < len(s) && (isAlnum(s[end]) || s[end] == '.' && end+1 < len(s) && isDigit(s[end+1])) {
			i = end
			continue
		}
		// Try stretches of whole groups, longest first from each start.
		replaced := false
		for a := 0; a < len(groups) && !replaced; a++ {
			for z := len(groups) - 1; z >= a; z-- {
				digits := make([]byte, 0, 19)
				for g := a; g <= z; g++ {
					digits = append(digits, s[groups[g].start:groups[g].end]...)
					if len(digits) > 19 {
						break
					}
				}
				if len(digits) < 13 || len(digits) > 19 || digits[0] < '2' || digits[0] > '6' || !luhn(digits) {
					continue
				}
				b.WriteString(s[last:groups[a].start])
				b.WriteString(MarkerCard)
				last = groups[z].end
				replaced = true
				break
			}
		}
		i = end
	}
	return finishReplace(&b, s, last)
}

// cardSep returns where a separator between groups of a card number that
// starts at s[k] ends, or k when there is none: one to three spaces and
// dashes with at most one dash, as people type them ("4111 1111",
// "4111-1111", "4111  1111", "4111 - 1111").
func cardSep(s string, k int) int {
	m, dashes := k, 0
	for m < len(s) && m-k < 3 && (s[m] == ' ' || s[m] == '-') {
		if s[m] == '-' {
			dashes++
		}
		m++
	}
	if dashes > 1 {
		return k
	}
	return m
}

func luhn(digits []byte) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func isTokenChar(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '_' || c == '-' || c == '='
}

// replaceTokens replaces high-entropy strings: a run of base64 characters
// of 32 or more with upper case, lower case and digits mixed like random
// data; or, inside a run, an alphanumeric stretch of 32 or more (hex
// digests, base32/base36 keys) mixing letters and digits.
func replaceTokens(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isTokenChar(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		run := s[i:j]
		if len(run) >= 32 {
			if looksRandomBase64(strings.TrimRight(run, "=")) {
				b.WriteString(s[last:i])
				b.WriteString(MarkerSecret)
				last = j
			} else {
				// Alphanumeric stretches inside the run.
				for p := i; p < j; {
					if !isAlnum(s[p]) {
						p++
						continue
					}
					q := p
					for q < j && isAlnum(s[q]) {
						q++
					}
					if q-p >= 32 && looksRandomAlnum(s[p:q]) {
						b.WriteString(s[last:p])
						b.WriteString(MarkerSecret)
						last = q
					}
					p = q
				}
			}
		}
		i = j
	}
	return finishReplace(&b, s, last)
}

func charClass(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return 0
	case c >= 'A' && c <= 'Z':
		return 1
	case c >= '0' && c <= '9':
		return 2
	}
	return 3
}

// switchRatio is the share of neighbouring characters of different
// classes: about 0.65 for random base64, about 0.3 for CamelCase words.
func switchRatio(s string) float64 {
	if len(s) < 2 {
		return 0
	}
	n := 0
	for i := 1; i < len(s); i++ {
		if charClass(s[i]) != charClass(s[i-1]) {
			n++
		}
	}
	return float64(n) / float64(len(s)-1)
}

func looksRandomBase64(s string) bool {
	if len(s) < 32 {
		return false
	}
	var lower, upper, digit bool
	for i := 0; i < len(s); i++ {
		switch charClass(s[i]) {
		case 0:
			lower = true
		case 1:
			upper = true
		case 2:
			digit = true
		}
	}
	return lower && upper && digit && switchRatio(s) >= 0.35 && meanLowerRun(s) < 3
}

// meanLowerRun is the mean length of runs of lower-case letters: about 1.7
// in random base64, 4 or more in CamelCase words.
func meanLowerRun(s string) float64 {
	runs, letters := 0, 0
	for i := 0; i < len(s); i++ {
		if charClass(s[i]) == 0 {
			letters++
			if i == 0 || charClass(s[i-1]) != 0 {
				runs++
			}
		}
	}
	if runs == 0 {
		return 0
	}
	return float64(letters) / float64(runs)
}

func looksRandomAlnum(s string) bool {
	var letter, digit bool
	hex := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isDigit(c) {
			digit = true
		} else {
			letter = true
			if !(c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				hex = false
			}
		}
	}
	if !digit {
		return false
	}
	if hex || !letter {
		return true // a hex digest or a long number
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
		return looksRandomBase64(s)
	}
	return switchRatio(s) >= 0.3
}

// ScrubValue returns a copy of v with every string in it scrubbed: map keys
// and values, slice elements, at any depth. Numbers, booleans and nil are
// returned as they are. Other values (structs, pointers, named types) are
// converted to their JSON form (map[string]any, []any, string, float64)
// first, so nothing reaches an event unscrubbed; what cannot be converted
// becomes nil. When two keys of a map scrub to the same text, the value of
// the key that sorts first is kept.
func ScrubValue(v any) any {
	return scrubValue(v, 0, Scrub)
}

const maxScrubDepth = 32

func scrubValue(v any, depth int, scrub func(string) string) any {
	if depth > maxScrubDepth {
		return nil
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return scrub(x)
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr, float32, float64:
		return x
	case json.Number:
		return x
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = scrub(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = scrubValue(e, depth+1, scrub)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for _, k := range sortedKeys(x) {
			sk := scrub(k)
			if _, dup := out[sk]; !dup {
				out[sk] = scrub(x[k])
			}
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			sk := scrub(k)
			if _, dup := out[sk]; !dup {
				out[sk] = scrubValue(x[k], depth+1, scrub)
			}
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return scrub(rv.String())
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint()
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		if rv.Type().Elem().Kind() != reflect.Uint8 {
			out := make([]any, rv.Len())
			for i := range out {
				out[i] = scrubValue(rv.Index(i).Interface(), depth+1, scrub)
			}
			return out
		}
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			if rv.IsNil() {
				return nil
			}
			keys := rv.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			out := make(map[string]any, len(keys))
			for _, k := range keys {
				sk := scrub(k.String())
				if _, dup := out[sk]; !dup {
					out[sk] = scrubValue(rv.MapIndex(k).Interface(), depth+1, scrub)
				}
			}
			return out
		}
	}
	// Anything else: its JSON form.
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return nil
	}
	return scrubValue(generic, depth+1, scrub)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
