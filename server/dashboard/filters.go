package dashboard

import (
	"encoding/json"
	"net/url"
	"regexp"
	"time"
)

// filters are a view's filters, kept in the URL's query so that a view can
// be shared and bookmarked:
//
//	range    7d, 30d (default), 90d, 180d, month, or custom with from and to
//	from, to YYYY-MM-DD, the first and last UTC day of a custom range
//	version  one version; with onward=1, that version and later ones
//	os       one operating system
//	ci       exclude or only; empty includes runs in CI
//	command  one command
type filters struct {
	Range    string
	From, To string
	Version  string
	Onward   bool
	OS       string
	CI       string
	Command  string
	// Problem says what was wrong with the URL's filters, which were
	// replaced by their defaults.
	Problem string
}

// Ranges are the date presets, in the order the page shows them.
var ranges = []struct{ Value, Label string }{
	{"7d", "7 days"}, {"30d", "30 days"}, {"90d", "90 days"}, {"180d", "180 days"}, {"month", "This month"},
}

var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// maxFilterValue bounds a filter value taken from the URL.
const maxFilterValue = 200

// parseFilters reads the filters of a URL query. Values the query API
// would refuse are dropped with a Problem, never sent.
func parseFilters(v url.Values) filters {
	f := filters{Range: v.Get("range"), From: v.Get("from"), To: v.Get("to"), Version: v.Get("version"),
		Onward: v.Get("onward") == "1", OS: v.Get("os"), CI: v.Get("ci"), Command: v.Get("command")}
	switch f.Range {
	case "7d", "30d", "90d", "180d", "month":
		f.From, f.To = "", ""
	case "custom":
		from, err1 := time.Parse(time.DateOnly, f.From)
		to, err2 := time.Parse(time.DateOnly, f.To)
		if !datePattern.MatchString(f.From) || !datePattern.MatchString(f.To) || err1 != nil || err2 != nil || to.Before(from) {
			f.Problem = "The custom range needs two dates, from before to; showing the last 30 days."
			f.Range, f.From, f.To = "30d", "", ""
		}
	case "":
		f.Range = "30d"
	default:
		f.Problem = "Unknown date range; showing the last 30 days."
		f.Range = "30d"
	}
	switch f.CI {
	case "", "exclude", "only":
	default:
		f.CI = ""
	}
	for _, s := range []*string{&f.Version, &f.OS, &f.Command} {
		if len(*s) > maxFilterValue {
			*s = ""
			f.Problem = "A filter value was too long and was dropped."
		}
	}
	if f.Version == "" {
		f.Onward = false
	}
	return f
}

// Values returns the filters as a URL query, without the defaults.
func (f filters) Values() url.Values {
	v := url.Values{}
	if f.Range != "30d" {
		v.Set("range", f.Range)
	}
	if f.Range == "custom" {
		v.Set("from", f.From)
		v.Set("to", f.To)
	}
	for k, s := range map[string]string{"version": f.Version, "os": f.OS, "ci": f.CI, "command": f.Command} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Onward {
		v.Set("onward", "1")
	}
	return v
}

// Query returns the URL query of the filters, with its "?", or "".
func (f filters) Query() string {
	if s := f.Values().Encode(); s != "" {
		return "?" + s
	}
	return ""
}

// With returns the URL query of the filters with one of them changed.
func (f filters) With(key, value string) string {
	v := f.Values()
	if value == "" {
		v.Del(key)
	} else {
		v.Set(key, value)
	}
	if key == "range" {
		v.Del("from")
		v.Del("to")
		if value == "30d" {
			v.Del("range")
		}
	}
	if s := v.Encode(); s != "" {
		return "?" + s
	}
	return ""
}

// dateRange is the JSON date_range of the filters.
func (f filters) dateRange() json.RawMessage {
	if f.Range == "custom" {
		b, _ := json.Marshal([]string{f.From, f.To})
		return b
	}
	b, _ := json.Marshal(f.Range)
	return b
}

// apiFilters are the filters as the query API's filters. Those that imply
// one event type (command) apply only to panels about commands: on the
// others, skipCommand leaves it out.
func (f filters) apiFilters(skipCommand bool) []any {
	var out []any
	if f.Version != "" {
		if f.Onward {
			out = append(out, []any{"gte", "version", f.Version})
		} else {
			out = append(out, []any{"is", "version", []string{f.Version}})
		}
	}
	if f.OS != "" {
		out = append(out, []any{"is", "os", []string{f.OS}})
	}
	switch f.CI {
	case "exclude":
		out = append(out, []any{"is", "ci", []bool{false}})
	case "only":
		out = append(out, []any{"is", "ci", []bool{true}})
	}
	if f.Command != "" && !skipCommand {
		out = append(out, []any{"is", "command", []string{f.Command}})
	}
	return out
}
