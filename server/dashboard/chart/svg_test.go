package chart_test

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/server/dashboard/chart"
)

// elements parses svg as XML (failing the test when it is not) and returns
// its elements by name, each with its attributes.
func elements(t testing.TB, svg string) map[string][]map[string]string {
	t.Helper()
	out := map[string][]map[string]string{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			attrs := map[string]string{}
			for _, a := range se.Attr {
				attrs[a.Name.Local] = a.Value
			}
			out[se.Name.Local] = append(out[se.Name.Local], attrs)
		}
	}
}

const hostile = `<script>alert(1)</script> "&' ` + "\x00\x1b"

func TestLine(t *testing.T) {
	labels := []string{"2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", hostile}
	svg := string(chart.Line{Title: hostile, Labels: labels, Series: []chart.Series{
		{Name: "events", Values: []float64{1, 5, math.NaN(), 7, 1234}},
		{Name: hostile, Values: []float64{2, 2, 2, 2, 2}, Class: "previous"},
	}}.SVG())
	if strings.Contains(svg, "<script") || strings.Contains(svg, "style=") {
		t.Fatalf("unescaped or styled:\n%s", svg)
	}
	el := elements(t, svg)
	if el["svg"][0]["role"] != "img" || el["svg"][0]["aria-label"] != strings.ReplaceAll(strings.ReplaceAll(hostile, "\x00", " "), "\x1b", " ") {
		t.Fatalf("accessible name %q", el["svg"][0]["aria-label"])
	}
	// The gap splits the first series in two; the second is one line.
	if n := len(el["polyline"]); n != 3 || len(strings.Fields(el["polyline"][0]["points"])) != 2 {
		t.Fatalf("%d polylines, want two for the first series (its gap) and one for the second: %v", n, el["polyline"])
	}
	if c := len(el["circle"]); c != 4+5 {
		t.Fatalf("%d points, want 9 (one per value, none for the gap)", c)
	}
	// The y axis ends at a round number at or above the largest value.
	top := 0.0
	for _, tx := range strings.Split(svg, `text-anchor="end">`)[1:] {
		v := strings.Split(tx, "<")[0]
		if f, err := strconv.ParseFloat(strings.TrimSuffix(v, "k"), 64); err == nil {
			if strings.HasSuffix(v, "k") {
				f *= 1000
			}
			top = math.Max(top, f)
		}
	}
	if top < 1234 || top > 2000 {
		t.Fatalf("axis top %v for a largest value of 1234", top)
	}
	if !strings.Contains(svg, `class="series s1 previous"`) {
		t.Fatal("the previous period has no class of its own")
	}
	// The same input draws the same bytes.
	again := string(chart.Line{Title: hostile, Labels: labels, Series: []chart.Series{
		{Name: "events", Values: []float64{1, 5, math.NaN(), 7, 1234}},
		{Name: hostile, Values: []float64{2, 2, 2, 2, 2}, Class: "previous"},
	}}.SVG())
	if again != svg {
		t.Fatal("not deterministic")
	}
}

func TestLineEdges(t *testing.T) {
	for name, c := range map[string]chart.Line{
		"empty":         {},
		"one label":     {Labels: []string{"a"}, Series: []chart.Series{{Values: []float64{3}}}},
		"zeros":         {Labels: []string{"a", "b"}, Series: []chart.Series{{Values: []float64{0, 0}}}},
		"negative, inf": {Labels: []string{"a", "b"}, Series: []chart.Series{{Values: []float64{-5, math.Inf(1)}}}},
		"huge":          {Labels: []string{"a", "b"}, Series: []chart.Series{{Values: []float64{1e12, 3e12}}}},
		"short series":  {Labels: []string{"a", "b", "c"}, Series: []chart.Series{{Values: []float64{1}}}},
		"percent":       {Labels: []string{"a", "b"}, Series: []chart.Series{{Values: []float64{0.2, 0.9}}}, Percent: true},
	} {
		svg := string(c.SVG())
		el := elements(t, svg)
		if len(el["svg"]) != 1 {
			t.Errorf("%s: %d svg elements", name, len(el["svg"]))
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%s: %s", name, svg)
		}
	}
}

func TestBars(t *testing.T) {
	svg := string(chart.Bars{Title: "top", Bars: []chart.Bar{{Label: "deploy", Value: 10}, {Label: hostile, Value: 5, Note: "50% ok"},
		{Label: "none", Value: math.NaN()}}}.SVG())
	el := elements(t, svg)
	if len(el["rect"]) != 3 {
		t.Fatalf("%d bars", len(el["rect"]))
	}
	w0, _ := strconv.ParseFloat(el["rect"][0]["width"], 64)
	w1, _ := strconv.ParseFloat(el["rect"][1]["width"], 64)
	if w0 <= 0 || math.Abs(w1-w0/2) > 0.2 {
		t.Fatalf("bar widths %v and %v, want the second half the first", w0, w1)
	}
	if strings.Contains(svg, "<script") || !strings.Contains(svg, "50% ok") {
		t.Fatal(svg)
	}
}

func TestStackedArea(t *testing.T) {
	svg := string(chart.StackedArea{Title: "versions", Labels: []string{"d1", "d2", "d3"}, Series: []chart.Series{
		{Name: "1.0", Values: []float64{3, 1, 0}},
		{Name: "2.0", Values: []float64{1, 3, 0}},
	}}.SVG())
	el := elements(t, svg)
	if len(el["polygon"]) != 2 {
		t.Fatalf("%d areas", len(el["polygon"]))
	}
	// Each drawn column's bands stack to the plot's full height: the top
	// band's upper edge is at the top of the plot, the bottom band's lower
	// edge at its bottom; the column that sums to 0 is left out.
	top, bottom := y(el["polygon"][1]["points"], 0), y(el["polygon"][0]["points"], -1)
	if len(strings.Fields(el["polygon"][0]["points"])) != 4 {
		t.Fatalf("points %q: want 2 columns", el["polygon"][0]["points"])
	}
	if math.Abs(top-12) > 0.2 || math.Abs(bottom-212) > 0.2 {
		t.Fatalf("stack from %v to %v, want 12 to 212", top, bottom)
	}
	// The first column: 3 of 4 for 1.0.
	if mid := y(el["polygon"][0]["points"], 0); math.Abs(mid-(212-0.75*200)) > 0.2 {
		t.Fatalf("1.0's share of d1 at %v", mid)
	}
}

// y returns the y of the i-th point of an SVG points list (negative i
// from the end).
func y(points string, i int) float64 {
	ps := strings.Fields(points)
	if i < 0 {
		i += len(ps)
	}
	v, _ := strconv.ParseFloat(strings.Split(ps[i], ",")[1], 64)
	return v
}

func FuzzLine(f *testing.F) {
	f.Add("2026-11-01", hostile, 1.0, 2.0, math.NaN(), false)
	f.Add("", "", -1.0, 1e300, 0.0, true)
	f.Fuzz(func(t *testing.T, label, name string, a, b, c float64, percent bool) {
		svg := string(chart.Line{Title: name, Labels: []string{label, name, label}, Percent: percent,
			Series: []chart.Series{{Name: name, Values: []float64{a, b, c}}, {Name: label, Values: []float64{c}}}}.SVG())
		elements(t, svg)
		if strings.Contains(svg, "<script") || strings.Contains(svg, "style=") {
			t.Fatalf("%s", svg)
		}
		svg = string(chart.StackedArea{Labels: []string{label}, Series: []chart.Series{{Name: name, Values: []float64{a}}}}.SVG())
		elements(t, svg)
		svg = string(chart.Bars{Title: label, Bars: []chart.Bar{{Label: name, Value: a, Note: label}}, Percent: percent}.SVG())
		elements(t, svg)
	})
}
