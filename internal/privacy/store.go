package privacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

const (
	decisionEnabled  = "enabled"
	decisionDisabled = "disabled"

	viaCommand = "command"
	viaPrompt  = "prompt"

	// fileFormat is the version of the consent.json layout.
	fileFormat = 1
)

// record is the content of consent.json.
type record struct {
	Format int `json:"format"`
	// Decision is "enabled", "disabled" or "" (undecided; only the notice
	// fields are set).
	Decision string `json:"decision,omitempty"`
	// DecidedAt is when the decision was given (UTC).
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// PolicyVersion is the policy version the decision was given for.
	PolicyVersion int `json:"policy_version,omitempty"`
	// Via is "command" (telemetry enable/disable) or "prompt".
	Via string `json:"via,omitempty"`
	// NoticePolicyVersion is the policy version for which the opt-out
	// notice was last shown.
	NoticePolicyVersion int       `json:"notice_policy_version,omitempty"`
	NoticeShownAt       time.Time `json:"notice_shown_at,omitzero"`
}

// errGarbled reports a consent.json that parses but makes no sense.
var errGarbled = errors.New("consent: stored choice is not understood")

func (r record) valid() bool {
	switch r.Decision {
	case "":
		return r.NoticePolicyVersion >= 0
	case decisionEnabled, decisionDisabled:
		return r.PolicyVersion >= 1 && !r.DecidedAt.IsZero() && r.NoticePolicyVersion >= 0
	}
	return false
}

// describe is the user-facing Detail for a stored decision.
func (r record) describe(o Options) string {
	date := r.DecidedAt.UTC().Format("2006-01-02")
	if r.Via == viaPrompt {
		answer := "no"
		if r.Decision == decisionEnabled {
			answer = "yes"
		}
		return fmt.Sprintf("you answered %s when asked on %s", answer, date)
	}
	verb := "disable"
	if r.Decision == decisionEnabled {
		verb = "enable"
	}
	return fmt.Sprintf("you ran `%s %s` on %s", o.hint(), verb, date)
}

// load reads the stored record. A missing file (or directory) is an empty
// record, not an error. Anything else that prevents reading or
// understanding it is an error: the caller fails closed.
func (o Options) load() (record, string, error) {
	dir, err := o.dir()
	if err != nil {
		return record{}, "the configuration directory", err
	}
	path := filepath.Join(dir, consentFile)
	data, err := fsutil.ReadFile(path)
	// Most runs find no file: os.IsNotExist looks at the error ReadFile
	// returns without errors.Is's reflection, whose first use costs a CLI
	// run 5 µs.
	if os.IsNotExist(err) {
		return record{}, path, nil
	}
	if err != nil {
		return record{}, path, err
	}
	r, ok := parseCanonical(data)
	if !ok {
		if r, err = decodeRecordJSON(data); err != nil {
			return record{}, path, err
		}
	}
	if !r.valid() {
		return record{}, path, errGarbled
	}
	return r, path, nil
}

// decodeRecordJSON decodes a consent file that parseCanonical does not
// take: one JSON object and nothing after it.
func decodeRecordJSON(data []byte) (r record, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return record{}, err
	}
	if dec.More() {
		return record{}, errGarbled
	}
	return r, nil
}

// parseCanonical reads data when it is laid out exactly as [Options.write]
// writes it: one field per line, indented by two spaces, each field known and
// present at most once, integers without sign or leading zeros other than
// '-', strings without escapes. Decoding that with encoding/json gives the
// same record; parseCanonical does it without building encoding/json's
// decoders by reflection, which a CLI would pay for on every start. Anything
// else (ok false) is left to encoding/json.
func parseCanonical(data []byte) (r record, ok bool) {
	s := string(data)
	if !strings.HasPrefix(s, "{\n") || !strings.HasSuffix(s, "\n}\n") || len(s) < len("{\n\n}\n") {
		return record{}, false
	}
	var seen [7]bool
	lines := strings.Split(s[len("{\n"):len(s)-len("\n}\n")], "\n")
	for n, line := range lines {
		// Every line but the last ends with a comma.
		line, comma := strings.CutSuffix(line, ",")
		if comma != (n < len(lines)-1) {
			return record{}, false
		}
		key, val, found := strings.Cut(line, `": `)
		if !found || !strings.HasPrefix(key, `  "`) {
			return record{}, false
		}
		key = key[len(`  "`):]
		i := slices.Index(recordFields[:], key)
		if i < 0 || seen[i] {
			return record{}, false
		}
		seen[i] = true
		switch key {
		case "format", "policy_version", "notice_policy_version":
			n, ok := canonicalInt(val)
			if !ok {
				return record{}, false
			}
			switch key {
			case "format":
				r.Format = n
			case "policy_version":
				r.PolicyVersion = n
			default:
				r.NoticePolicyVersion = n
			}
		case "decision", "via":
			v, ok := canonicalString(val)
			if !ok {
				return record{}, false
			}
			if key == "decision" {
				r.Decision = v
			} else {
				r.Via = v
			}
		default: // decided_at, notice_shown_at
			if _, ok := canonicalString(val); !ok {
				return record{}, false
			}
			t := &r.DecidedAt
			if key == "notice_shown_at" {
				t = &r.NoticeShownAt
			}
			// What encoding/json calls for a time.Time field.
			if t.UnmarshalJSON([]byte(val)) != nil {
				return record{}, false
			}
		}
	}
	return r, true
}

// recordFields are the JSON names of record's fields.
var recordFields = [7]string{"format", "decision", "decided_at", "policy_version", "via", "notice_policy_version", "notice_shown_at"}

// canonicalInt parses a JSON integer with no sign other than '-' and no
// leading zeros, as an int.
func canonicalInt(v string) (int, bool) {
	digits := strings.TrimPrefix(v, "-")
	if digits == "" || digits[0] == '0' && len(digits) > 1 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || int64(int(n)) != n {
		return 0, false
	}
	return int(n), true
}

// canonicalString returns the content of a JSON string that needs no
// unescaping: valid UTF-8 without quotes, backslashes or control characters.
func canonicalString(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	v = v[1 : len(v)-1]
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	return v, utf8.ValidString(v)
}

// store writes the user's decision for the current policy version,
// keeping the notice fields of a readable previous record.
func (o Options) store(enabled bool, via string) error {
	if o.Service == "" {
		return errors.New("consent: no service name configured")
	}
	prev, _, err := o.load()
	if err != nil {
		prev = record{}
	}
	r := prev
	r.Decision = decisionDisabled
	if enabled {
		r.Decision = decisionEnabled
	}
	r.DecidedAt = o.now().UTC()
	r.PolicyVersion = o.policy()
	r.Via = via
	return o.write(r)
}

// update applies fn to the current record and writes it back. It refuses
// to touch a record it cannot read.
func (o Options) update(fn func(*record)) error {
	r, _, err := o.load()
	if err != nil {
		return err
	}
	fn(&r)
	return o.write(r)
}

// write stores r atomically: a temporary file in the same directory,
// synced, then renamed over consent.json. The file is private (0600).
func (o Options) write(r record) error {
	dir, err := o.dir()
	if err != nil {
		return err
	}
	r.Format = fileFormat
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return writeFileAtomic(filepath.Join(dir, consentFile), data)
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	// os.CreateTemp creates the file with mode 0600: private to the user.
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return nil
}
