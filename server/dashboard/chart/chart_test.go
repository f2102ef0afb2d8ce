package chart

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// node is an element of a parsed chart.
type node struct {
	name string
	attr map[string]string
	text string // the element's own character data
	kids []*node
}

// parse parses s as one XML element in the SVG namespace, failing the test
// when it is not well-formed, or has a style attribute or element.
func parse(t testing.TB, s string) *node {
	t.Helper()
	if strings.Contains(s, "style=") || strings.Contains(s, "<style") {
		t.Fatalf("inline style:\n%s", s)
	}
	if strings.Contains(s, "<script") {
		t.Fatalf("raw <script:\n%s", s)
	}
	if !utf8.ValidString(s) {
		t.Fatalf("not UTF-8:\n%q", s)
	}
	d := xml.NewDecoder(strings.NewReader(s))
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, s)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Space != "http://www.w3.org/2000/svg" {
				t.Fatalf("element %q outside the SVG namespace", tok.Name.Local)
			}
			n := &node{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			switch {
			case len(stack) > 0:
				stack[len(stack)-1].kids = append(stack[len(stack)-1].kids, n)
			case root != nil:
				t.Fatalf("a second root element <%s>", n.name)
			default:
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			} else if strings.TrimSpace(string(tok)) != "" {
				t.Fatalf("text outside the root: %q", tok)
			}
		default:
			t.Fatalf("unexpected %T in\n%s", tok, s)
		}
	}
	if root == nil || root.name != "svg" {
		t.Fatalf("no <svg> root:\n%s", s)
	}
	return root
}

// has reports whether n has class c.
func (n *node) has(c string) bool { return slices.Contains(strings.Fields(n.attr["class"]), c) }

// all returns the elements under n named name with every class of classes.
func (n *node) all(name string, classes ...string) []*node {
	var out []*node
	var walk func(*node)
	walk = func(e *node) {
		if e.name == name && !slices.ContainsFunc(classes, func(c string) bool { return !e.has(c) }) {
			out = append(out, e)
		}
		for _, k := range e.kids {
			walk(k)
		}
	}
	for _, k := range n.kids {
		walk(k)
	}
	return out
}

// title returns the text of n's <title> child.
func (n *node) title() string {
	for _, k := range n.kids {
		if k.name == "title" {
			return k.text
		}
	}
	return ""
}

// f returns n's attribute a as a number.
func (n *node) f(t testing.TB, a string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr[a], 64)
	if err != nil {
		t.Fatalf("%s %s=%q: %v", n.name, a, n.attr[a], err)
	}
	return v
}

// points returns the points of a points attribute.
func points(t testing.TB, s string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, p := range strings.Fields(s) {
		xs, ys, ok := strings.Cut(p, ",")
		x, err1 := strconv.ParseFloat(xs, 64)
		y, err2 := strconv.ParseFloat(ys, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("point %q", p)
		}
		out = append(out, [2]float64{x, y})
	}
	return out
}

// subpaths returns the closed subpaths of a path's d (M x,y L x,y … Z).
func subpaths(t testing.TB, d string) [][][2]float64 {
	t.Helper()
	var out [][][2]float64
	for _, sp := range strings.Split(strings.TrimSuffix(d, "Z"), "Z") {
		if !strings.HasPrefix(sp, "M") {
			t.Fatalf("subpath %q of %q", sp, d)
		}
		out = append(out, points(t, strings.ReplaceAll(sp[1:], "L", " ")))
	}
	return out
}

// tickValue reads an axis label: 500, 1.5k, 2M, 3B, 4T, 1e+15, 20%.
func tickValue(t testing.TB, s string) float64 {
	t.Helper()
	mult := 1.0
	for suffix, m := range map[string]float64{"k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "%": 0.01} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("tick %q: %v", s, err)
	}
	return v * mult
}

// ticks returns the y axis' tick values, from the bottom.
func ticks(t testing.TB, root *node) []float64 {
	t.Helper()
	var out []float64
	for _, n := range root.all("text", "label", "end") {
		out = append(out, tickValue(t, n.text))
	}
	return out
}

// plot returns the plot's top and bottom, from the y axis.
func plot(t testing.TB, root *node) (top, bottom float64) {
	t.Helper()
	for _, a := range root.all("line", "axis") {
		if a.attr["x1"] == a.attr["x2"] {
			return a.f(t, "y1"), a.f(t, "y2")
		}
	}
	t.Fatal("no y axis")
	return 0, 0
}

const hostile = `<script>alert(1)</script> "&'` + "\x00\x1b\r\n\u202e\ufffe\xff"

// cleaned is hostile as charts show it.
const cleaned = `<script>alert(1)</script> "&'` + "    \ufffd\ufffd"

func TestHostileTextIsEscaped(t *testing.T) {
	labels := []string{"2026-11-29", hostile}
	for name, svg := range map[string]string{
		"line": string(Line{Title: hostile, Labels: labels, Series: []Series{
			{Name: hostile, Values: []float64{1, 2}, Class: hostile},
			{Name: "b", Values: []float64{2, 1}}}}.SVG()),
		"bars": string(Bars{Title: hostile, Bars: []Bar{{Label: hostile, Value: 1, Note: hostile}}}.SVG()),
		"stacked": string(StackedArea{Title: hostile, Labels: labels, Series: []Series{
			{Name: hostile, Values: []float64{1, 2}, Class: hostile}}}.SVG()),
	} {
		root := parse(t, svg)
		if root.attr["aria-label"] != cleaned || root.title() != cleaned || root.attr["role"] != "img" {
			t.Errorf("%s: accessible name %q, title %q, role %q", name, root.attr["aria-label"], root.title(), root.attr["role"])
		}
		if root.kids[0].name != "title" {
			t.Errorf("%s: the first child is <%s>", name, root.kids[0].name)
		}
		if !strings.HasPrefix(root.attr["class"], "chart ") || !strings.HasPrefix(svg, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `) {
			t.Errorf("%s: %.120s", name, svg)
		}
		// The label is there as text, escaped in the markup.
		if !strings.Contains(svg, "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&amp;&#39;") {
			t.Errorf("%s: the label is not escaped:\n%s", name, svg)
		}
		// A class from the series is reduced to a CSS identifier's characters.
		for _, e := range append(root.all("path", "area"), root.all("polyline", "series")...) {
			if strings.ContainsAny(e.attr["class"], `<>"&'()/`) {
				t.Errorf("%s: class %q", name, e.attr["class"])
			}
		}
	}
	line := parse(t, string(Line{Labels: []string{hostile}, Series: []Series{{Name: hostile, Values: []float64{5}}}}.SVG()))
	if got := line.all("circle", "point")[0].title(); got != cleaned+" · "+cleaned+": 5" {
		t.Errorf("point title %q", got)
	}
}

func TestLinePoints(t *testing.T) {
	labels := []string{"2026-11-28", "2026-11-29", "2026-11-30"}
	root := parse(t, string(Line{Title: "Events", Labels: labels, Series: []Series{
		{Name: "events", Values: []float64{10, 20, 1234}},
		{Name: "previous period", Values: []float64{5, math.NaN(), 7.5}, Class: "previous"},
	}}.SVG()))
	pts := root.all("circle", "point")
	if len(pts) != 5 {
		t.Fatalf("%d points, want 5 (one per value, none for the gap)", len(pts))
	}
	var titles []string
	for _, p := range pts {
		titles = append(titles, p.title())
	}
	want := []string{"2026-11-28 · events: 10", "2026-11-29 · events: 20", "2026-11-30 · events: 1,234",
		"2026-11-28 · previous period: 5", "2026-11-30 · previous period: 7.5"}
	if !slices.Equal(titles, want) {
		t.Errorf("tooltips %q, want %q", titles, want)
	}
	if n := len(root.all("circle", "s1", "previous")); n != 2 {
		t.Errorf("%d points of the previous period with its class", n)
	}
	// The previous period's values are alone between gaps: dots, no line.
	if lone := root.all("circle", "lone"); len(lone) != 2 || !lone[0].has("previous") {
		t.Errorf("%d lone points", len(lone))
	}
	lines := root.all("polyline", "series")
	if len(lines) != 1 || !lines[0].has("s0") || len(points(t, lines[0].attr["points"])) != 3 {
		t.Fatalf("lines %v", lines)
	}
	// Two series: a legend with a key each, the previous one dashed by its class.
	keys := root.all("line", "series")
	if len(keys) != 2 || !keys[1].has("previous") {
		t.Errorf("legend keys %v", keys)
	}
	// Higher values are drawn higher, the largest at its y on the axis.
	top, bottom := plot(t, root)
	tk := ticks(t, root)
	y0, y1, y2 := pts[0].f(t, "cy"), pts[1].f(t, "cy"), pts[2].f(t, "cy")
	if !(y0 > y1 && y1 > y2) || math.Abs(y0-(bottom-10/tk[len(tk)-1]*(bottom-top))) > 0.1 {
		t.Errorf("ys %v %v %v in %v–%v, ticks %v", y0, y1, y2, top, bottom, tk)
	}
	if x0, x2 := pts[0].f(t, "cx"), pts[2].f(t, "cx"); !(x0 < x2) {
		t.Errorf("x %v ≥ %v", x0, x2)
	}
}

func TestLineGapsBreakTheLine(t *testing.T) {
	labels := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, c := range []struct {
		values       []float64
		lines, lone  int
		pointsInEach []int
	}{
		{[]float64{1, 2, math.NaN(), 4, 5}, 2, 0, []int{2, 2}}, // and f, g missing
		{[]float64{1, 2, 3, 4, 5, 6, 7}, 1, 0, []int{7}},
		{[]float64{math.NaN(), 1, math.NaN(), 2, 3, math.Inf(1), 4}, 1, 2, []int{2}},
		{[]float64{math.NaN(), math.NaN()}, 0, 0, nil},
		{[]float64{3}, 0, 1, nil},
	} {
		root := parse(t, string(Line{Labels: labels, Series: []Series{{Name: "x", Values: c.values}}}.SVG()))
		lines := root.all("polyline", "series")
		var each []int
		for _, l := range lines {
			each = append(each, len(points(t, l.attr["points"])))
		}
		if len(lines) != c.lines || !slices.Equal(each, c.pointsInEach) || len(root.all("circle", "lone")) != c.lone {
			t.Errorf("%v: %d lines of %v points, %d lone; want %d of %v, %d", c.values, len(lines), each,
				len(root.all("circle", "lone")), c.lines, c.pointsInEach, c.lone)
		}
	}
}

// isNice reports whether v is 1, 2 or 5 × 10ⁿ.
func isNice(v float64) bool {
	m := v / math.Pow10(int(math.Floor(math.Log10(v))))
	for _, n := range []float64{1, 2, 5, 10} {
		if math.Abs(m-n) < 1e-6 {
			return true
		}
	}
	return false
}

func TestYAxisTicksAreNice(t *testing.T) {
	for _, c := range []struct {
		values  []float64
		percent bool
		want    []string // the labels, when given
	}{
		{[]float64{0, 0}, false, []string{"0", "1", "2", "3"}},
		{[]float64{1, 2}, false, []string{"0", "1", "2", "3"}},
		{[]float64{7, 3}, false, []string{"0", "2", "4", "6", "8"}},
		{[]float64{0.37}, false, []string{"0", "0.1", "0.2", "0.3", "0.4"}},
		{[]float64{1234, 5}, false, []string{"0", "500", "1k", "1.5k"}},
		{[]float64{999}, false, []string{"0", "200", "400", "600", "800", "1k"}},
		{[]float64{1001}, false, []string{"0", "500", "1k", "1.5k"}},
		{[]float64{3.3e6}, false, []string{"0", "1M", "2M", "3M", "4M"}},
		{[]float64{1e12}, false, []string{"0", "200B", "400B", "600B", "800B", "1T"}},
		{[]float64{-40, 12}, false, []string{"0", "5", "10", "15"}},
		{[]float64{0.93, 0.5}, true, []string{"0%", "20%", "40%", "60%", "80%", "100%"}},
		{[]float64{0.031}, true, []string{"0%", "1%", "2%", "3%", "4%"}},
		{[]float64{0}, true, []string{"0%", "20%", "40%", "60%", "80%", "100%"}},
		{[]float64{math.MaxFloat64}, false, nil},
		{[]float64{123456789}, false, nil},
		{[]float64{42.42}, false, nil},
		{[]float64{1e-9}, false, nil},
	} {
		root := parse(t, string(Line{Labels: []string{"a", "b"}, Series: []Series{{Name: "x", Values: c.values}}, Percent: c.percent}.SVG()))
		var labels []string
		for _, n := range root.all("text", "label", "end") {
			labels = append(labels, n.text)
		}
		if c.want != nil && !slices.Equal(labels, c.want) {
			t.Errorf("%v: ticks %q, want %q", c.values, labels, c.want)
		}
		tk := ticks(t, root)
		if len(tk) < 4 || len(tk) > 6 || tk[0] != 0 {
			t.Errorf("%v: %d ticks %v", c.values, len(tk), tk)
			continue
		}
		step := tk[1]
		for i, v := range tk {
			if math.Abs(v-step*float64(i)) > step*1e-6 {
				t.Errorf("%v: ticks %v not evenly spaced", c.values, tk)
			}
		}
		hi := 0.0
		for _, v := range c.values {
			hi = max(hi, v)
		}
		if !isNice(step) || tk[len(tk)-1] < min(hi, maxValue)*(1-1e-9) {
			t.Errorf("%v: ticks %v, step %v: the top is below the largest value or the step not 1, 2 or 5 × 10ⁿ", c.values, tk, step)
		}
		// No wasted interval above the largest value, but for the
		// least of three intervals.
		if len(tk) > 4 && tk[len(tk)-2] >= hi && hi >= 1e-6 {
			t.Errorf("%v: ticks %v end too high", c.values, tk)
		}
		if g := len(root.all("line", "grid")); g != len(tk)-1 {
			t.Errorf("%v: %d grid lines for %d ticks", c.values, g, len(tk))
		}
	}
}

func TestXLabelsNeverOverlap(t *testing.T) {
	for _, c := range []struct {
		n, width, want int
		label          string
	}{
		{0, 0, 0, "2026-11-%03d"},
		{1, 0, 1, "2026-11-%03d"},
		{3, 0, 3, "2026-11-%03d"},
		{8, 0, 8, "2026-11-%03d"},
		{9, 0, 5, "2026-11-%03d"}, // every second
		{365, 0, 8, "2026-11-%03d"},
		{31, 200, 2, "2026-11-%03d"}, // room for two
		{12, 0, 4, "a very long label, repeated and repeated %d"},
	} {
		labels := make([]string, c.n)
		for i := range labels {
			labels[i] = fmt.Sprintf(c.label, i)
		}
		values := make([]float64, c.n)
		root := parse(t, string(Line{Labels: labels, Width: c.width, Series: []Series{{Values: values}}}.SVG()))
		xl := root.all("text", "label", "mid")
		if len(xl) != c.want {
			t.Errorf("%d labels, width %d: %d shown, want %d", c.n, c.width, len(xl), c.want)
		}
		var xs []float64
		for i, l := range xl {
			x := l.f(t, "x")
			w := textWidth(l.text)
			if i > 0 && x-w/2 < xs[i-1]+textWidth(xl[i-1].text)/2+4 {
				t.Errorf("%d labels: %q at %v overlaps %q at %v", c.n, l.text, x, xl[i-1].text, xs[i-1])
			}
			vb := strings.Fields(root.attr["viewBox"])
			if right, _ := strconv.ParseFloat(vb[2], 64); x-w/2 < 0 || x+w/2 > right {
				t.Errorf("%d labels: %q at %v leaves the chart", c.n, l.text, x)
			}
			xs = append(xs, x)
		}
		// Evenly spaced: every step-th label from the first, each at its
		// point (one per label, as every value is 0).
		var at []float64
		for _, p := range root.all("circle", "point") {
			at = append(at, p.f(t, "cx"))
		}
		step := 1
		for i, l := range xl {
			k := slices.Index(at, xs[i])
			if i == 1 {
				step = k
			}
			if k < 0 || k != i*step {
				t.Errorf("%d labels: %q is at %v, not the %d-th point", c.n, l.text, xs[i], i*step)
				break
			}
			if l.text != labels[k] && (!strings.HasSuffix(l.text, "…") || !strings.HasPrefix(labels[k], strings.TrimSuffix(l.text, "…"))) {
				t.Errorf("%q is not %q", l.text, labels[k])
			}
		}
	}
}

func TestBars(t *testing.T) {
	bars := []Bar{{Label: "deploy", Value: 1234, Note: "82% ok"}, {Label: "build", Value: 617}, {Label: "none", Value: 0},
		{Label: "minus", Value: -5}, {Label: "missing", Value: math.NaN()}, {Label: "tiny", Value: 0.001}}
	svg := string(Bars{Title: "Commands", Bars: bars}.SVG())
	root := parse(t, svg)
	rects := root.all("rect", "bar")
	if len(rects) != len(bars) {
		t.Fatalf("%d bars, want %d", len(rects), len(bars))
	}
	w := make([]float64, len(rects))
	for i, r := range rects {
		w[i] = r.f(t, "width")
	}
	if w[0] <= 100 || math.Abs(w[1]-w[0]/2) > 0.2 || w[2] != 0 || w[3] != 0 || w[4] != 0 || w[5] != 1 {
		t.Errorf("widths %v: want the second half the first, none for 0, negative or no value, 1 for a tiny value", w)
	}
	// In the order given, top down, each with its value and note.
	rows := root.all("g", "row")
	var labels, values, titles []string
	for i, r := range rows {
		labels = append(labels, r.all("text", "label", "end")[0].text)
		values = append(values, r.all("text", "value")[0].text)
		titles = append(titles, r.title())
		if i > 0 && rects[i].f(t, "y") <= rects[i-1].f(t, "y") {
			t.Errorf("bar %d above bar %d", i, i-1)
		}
	}
	if want := []string{"deploy", "build", "none", "minus", "missing", "tiny"}; !slices.Equal(labels, want) {
		t.Errorf("labels %q", labels)
	}
	if want := []string{"1,234 · 82% ok", "617", "0", "0", "–", "0.001"}; !slices.Equal(values, want) {
		t.Errorf("values %q", values)
	}
	if titles[0] != "deploy: 1,234 · 82% ok" {
		t.Errorf("title %q", titles[0])
	}
	// The value is printed at the bar's end.
	if x := rows[0].all("text", "value")[0].f(t, "x"); x < rects[0].f(t, "x")+w[0] {
		t.Errorf("value at %v, the bar ends at %v", x, rects[0].f(t, "x")+w[0])
	}
	// The height follows the number of bars.
	h := func(n int) string {
		return strings.Fields(parse(t, string(Bars{Bars: bars[:n]}.SVG())).attr["viewBox"])[3]
	}
	if h(1) == h(2) || h(2) == h(3) {
		t.Errorf("heights %s, %s, %s for 1, 2, 3 bars", h(1), h(2), h(3))
	}
	// Shares are drawn to 100%.
	root = parse(t, string(Bars{Bars: []Bar{{Label: "a", Value: 0.5}, {Label: "b", Value: 0.25}}, Percent: true}.SVG()))
	rects = root.all("rect", "bar")
	full := 480 - rects[0].f(t, "x") - 6 - textWidth("50.0%") - 6
	if got := rects[0].f(t, "width"); math.Abs(got-full/2) > 0.2 {
		t.Errorf("50%% is %v wide, want half of %v", got, full)
	}
	if v := root.all("text", "value")[1].text; v != "25.0%" {
		t.Errorf("value %q", v)
	}
	// A unit follows the value, at the bar and in its title.
	root = parse(t, string(Bars{Bars: []Bar{{Label: "1.7.0", Value: 2, Unit: "days"}, {Label: "1.6.0", Value: 1, Unit: "days", Note: "late"}}}.SVG()))
	if v, ti := root.all("text", "value")[0].text, root.all("g", "row")[0].title(); v != "2 days" || ti != "1.7.0: 2 days" {
		t.Errorf("with a unit: value %q, title %q", v, ti)
	}
	if v := root.all("text", "value")[1].text; v != "1 days · late" {
		t.Errorf("with a unit and a note: value %q", v)
	}
	// Huge values are compact at the bar, exact in its title.
	root = parse(t, string(Bars{Bars: []Bar{{Label: "a", Value: 1.2e12}}}.SVG()))
	if v, ti := root.all("text", "value")[0].text, root.all("g", "row")[0].title(); v != "1.2T" || ti != "a: 1,200,000,000,000" {
		t.Errorf("value %q, title %q", v, ti)
	}
}

func TestStackedAreaColumnsAddUpToThePlot(t *testing.T) {
	labels := []string{"d1", "d2", "d3", "d4", "d5", "d6", "d7"}
	root := parse(t, string(StackedArea{Title: "Versions", Labels: labels, Series: []Series{
		{Name: "1.0", Values: []float64{3, 1, 0, 5, 1, 0, 2}},
		{Name: "1.1", Values: []float64{1, 3, 0, 5, math.NaN(), 0, 1e12}},
		{Name: "1.2", Values: []float64{0, 0, 0, 0, 0, 0}}, // never drawn
		{Name: "1.3", Values: []float64{0, 2, 0, 1, 3}},    // d6 and d7 missing
	}}.SVG()))
	areas := root.all("path", "area")
	if len(areas) != 3 || !areas[2].has("s3") || areas[2].title() != "1.3" {
		t.Fatalf("%d areas, want 3 (none for 1.2)", len(areas))
	}
	top, bottom := plot(t, root)
	ph := bottom - top
	// d3 and d6 sum to 0: three runs, d1–d2, d4–d5 and d7 alone.
	height := map[float64]float64{}
	for _, a := range areas {
		for _, sp := range subpaths(t, a.attr["d"]) {
			if len(sp)%2 != 0 {
				t.Fatalf("odd subpath %v", sp)
			}
			for i := range len(sp) / 2 {
				up, lo := sp[i], sp[len(sp)-1-i]
				if up[0] != lo[0] || lo[1] < up[1]-1e-9 {
					t.Fatalf("subpath %v: %v is not above %v", sp, up, lo)
				}
				height[up[0]] += lo[1] - up[1]
			}
		}
	}
	if len(height) != 6 { // 2 + 2 + the two edges of d7's column
		t.Errorf("columns at %v, want 6 xs", height)
	}
	for x, h := range height {
		if math.Abs(h-ph) > 0.15 {
			t.Errorf("the column at %v stacks to %v, want the plot's %v", x, h, ph)
		}
	}
	// d1: 1.0 has 3 of 4, from the bottom.
	first := subpaths(t, areas[0].attr["d"])[0]
	if got := first[len(first)-1][1] - first[0][1]; math.Abs(got-0.75*ph) > 0.1 || first[len(first)-1][1] != bottom {
		t.Errorf("1.0's share of d1 is %v high, want %v", got, 0.75*ph)
	}
	// One hover column per label drawn, with each value.
	hits := root.all("rect", "hit")
	if len(hits) != 5 {
		t.Fatalf("%d hover columns, want 5", len(hits))
	}
	if got := hits[0].title(); got != "d1\n1.0: 75.0% (3)\n1.1: 25.0% (1)" {
		t.Errorf("d1's title %q", got)
	}
	if got := hits[4].title(); got != "d7\n1.0: 0.00% (2)\n1.1: 100.0% (1,000,000,000,000)" {
		t.Errorf("d7's title %q", got)
	}
	for i, h := range hits {
		if i > 0 && h.f(t, "x") < hits[i-1].f(t, "x")+hits[i-1].f(t, "width")-0.1 {
			t.Errorf("hover columns %d and %d overlap", i-1, i)
		}
	}
	if keys := root.all("rect", "swatch"); len(keys) != 4 {
		t.Errorf("%d legend keys, want 4", len(keys))
	}
}

// edges are charts at the limits: each must draw a valid SVG.
func edges() map[string]interface{ svg() string } {
	nan := math.NaN()
	many := make([]Series, 30)
	for i := range many {
		many[i] = Series{Name: strings.Repeat("long series name ", i%4), Values: []float64{float64(i), 1}}
	}
	return map[string]interface{ svg() string }{
		"line: empty":            Line{},
		"line: no series":        Line{Labels: []string{"a", "b"}},
		"line: no labels":        Line{Series: []Series{{Name: "x", Values: []float64{1, 2}}}},
		"line: one label":        Line{Labels: []string{"a"}, Series: []Series{{Values: []float64{3}}}},
		"line: zeros":            Line{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{0, 0}}}},
		"line: all NaN":          Line{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{nan, nan}}}},
		"line: negative, inf":    Line{Labels: []string{"a", "b", "c"}, Series: []Series{{Values: []float64{-5, math.Inf(1), math.Inf(-1)}}}},
		"line: huge":             Line{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{1e12, math.MaxFloat64}}}},
		"line: tiny":             Line{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{5e-324, 1e-300}}}},
		"line: short series":     Line{Labels: []string{"a", "b", "c"}, Series: []Series{{Values: []float64{1}}}},
		"line: long series":      Line{Labels: []string{"a"}, Series: []Series{{Values: []float64{1, 2, 3}}}},
		"line: many series":      Line{Labels: []string{"a", "b"}, Series: many},
		"line: tiny size":        Line{Labels: []string{"2026-11-30", "2026-12-01"}, Series: many[:3], Width: 1, Height: 1},
		"line: huge size":        Line{Labels: []string{"a"}, Width: 1 << 40, Height: -3},
		"line: percent":          Line{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{0.2, 1.7}}}, Percent: true},
		"bars: empty":            Bars{},
		"bars: zeros":            Bars{Bars: []Bar{{Label: "a"}, {Label: "b"}}, Percent: true},
		"bars: huge":             Bars{Bars: []Bar{{Label: "a", Value: math.MaxFloat64}, {Label: "b", Value: math.Inf(1)}}},
		"bars: narrow":           Bars{Bars: []Bar{{Label: strings.Repeat("label ", 40), Value: 1, Note: strings.Repeat("note ", 40)}}, Width: 2},
		"stacked: empty":         StackedArea{},
		"stacked: zero columns":  StackedArea{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{0, nan}}}},
		"stacked: one label":     StackedArea{Labels: []string{"a"}, Series: []Series{{Name: "x", Values: []float64{2}}, {Name: "y", Values: []float64{1}}}},
		"stacked: huge":          StackedArea{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{math.MaxFloat64, 1}}, {Values: []float64{math.MaxFloat64, 1e300}}}},
		"stacked: no series":     StackedArea{Labels: []string{"a", "b"}},
		"stacked: many series":   StackedArea{Labels: []string{"a", "b"}, Series: many},
		"stacked: short series":  StackedArea{Labels: []string{"a", "b", "c"}, Series: []Series{{Values: []float64{1}}, {Values: []float64{1, 1, 1, 1}}}},
		"stacked: negative, NaN": StackedArea{Labels: []string{"a", "b"}, Series: []Series{{Values: []float64{-1, nan}}, {Values: []float64{math.Inf(1), 2}}}},
	}
}

func (c Line) svg() string        { return string(c.SVG()) }
func (c Bars) svg() string        { return string(c.SVG()) }
func (c StackedArea) svg() string { return string(c.SVG()) }

func TestEdgesDrawValidSVG(t *testing.T) {
	for name, c := range edges() {
		svg := c.svg()
		root := parse(t, svg)
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%s: %s", name, svg)
		}
		vb := strings.Fields(root.attr["viewBox"])
		w, _ := strconv.Atoi(vb[2])
		h, _ := strconv.Atoi(vb[3])
		if len(vb) != 4 || w < minWidth || w > maxSize || h <= 0 || h > maxSize {
			t.Errorf("%s: viewBox %q", name, root.attr["viewBox"])
		}
		// Nothing is drawn outside the chart.
		for _, tag := range []string{"circle", "rect", "line", "text"} {
			for _, e := range root.all(tag) {
				for _, a := range []string{"x", "cx", "x1", "x2"} {
					if v, ok := e.attr[a]; ok {
						if f, _ := strconv.ParseFloat(v, 64); f < -0.05 || f > float64(w)+0.05 {
							t.Errorf("%s: <%s %s=%s> outside 0–%d", name, tag, a, v, w)
						}
					}
				}
				for _, a := range []string{"y", "cy", "y1", "y2"} {
					if v, ok := e.attr[a]; ok {
						if f, _ := strconv.ParseFloat(v, 64); f < -0.05 || f > float64(h)+0.05 {
							t.Errorf("%s: <%s %s=%s> outside 0–%d", name, tag, a, v, h)
						}
					}
				}
			}
		}
	}
	for name, want := range map[string]int{"line: empty": 1, "line: all NaN": 1, "bars: empty": 1, "stacked: zero columns": 1,
		"line: zeros": 0, "stacked: one label": 0} {
		if n := len(parse(t, edges()[name].svg()).all("text", "empty")); n != want {
			t.Errorf("%s: %d no-data notes, want %d", name, n, want)
		}
	}
	// A legend too long for three rows counts the series left out.
	root := parse(t, edges()["line: many series"].svg())
	keys, more := root.all("line", "series"), root.all("text", "label")
	if len(keys) >= 30 || !slices.ContainsFunc(more, func(n *node) bool {
		return n.text == fmt.Sprintf("+%d more", 30-len(keys))
	}) {
		t.Errorf("%d keys of 30 and no note of the rest", len(keys))
	}
	// A lone label of a stacked chart is a column as wide as the plot.
	root = parse(t, edges()["stacked: one label"].svg())
	if sp := subpaths(t, root.all("path", "area")[0].attr["d"])[0]; len(sp) != 4 || sp[1][0]-sp[0][0] < 100 {
		t.Errorf("lone column %v", sp)
	}
}

func TestDeterministic(t *testing.T) {
	for name, c := range edges() {
		if a, b := c.svg(), c.svg(); a != b {
			t.Errorf("%s: two drawings differ", name)
		}
	}
	series := []Series{{Name: "a", Values: []float64{1.23456789, 2.5, math.Pi}}, {Name: "b", Values: []float64{1e-3, 7, 1e9 / 7}}}
	a := Line{Labels: []string{"x", "y", "z"}, Series: series}.svg()
	b := Line{Labels: []string{"x", "y", "z"}, Series: slices.Clone(series)}.svg()
	if a != b {
		t.Error("the same input draws different bytes")
	}
	// Coordinates have at most one decimal.
	var coords []string
	root := parse(t, a)
	for _, l := range root.all("polyline") {
		coords = append(coords, strings.FieldsFunc(l.attr["points"], func(r rune) bool { return r == ' ' || r == ',' })...)
	}
	for _, c := range root.all("circle") {
		coords = append(coords, c.attr["cx"], c.attr["cy"])
	}
	if len(coords) != 24 {
		t.Fatalf("%d coordinates, want 24", len(coords))
	}
	for _, s := range coords {
		if _, frac, _ := strings.Cut(s, "."); len(frac) > 1 {
			t.Errorf("coordinate %s", s)
		}
	}
}

func TestValueFormats(t *testing.T) {
	for _, c := range []struct {
		v       float64
		percent bool
		want    string
	}{
		{0, false, "0"}, {7, false, "7"}, {1234, false, "1,234"}, {1234567.891, false, "1,234,567.89"},
		{-1234, false, "-1,234"}, {0.5, false, "0.5"}, {0.001, false, "0.001"}, {1e15, false, "1e+15"},
		{0.1234, true, "12.3%"}, {0.004, true, "0.40%"}, {1, true, "100.0%"}, {math.NaN(), false, "–"},
	} {
		if got := value(c.v, c.percent); got != c.want {
			t.Errorf("value(%v, %v) = %q, want %q", c.v, c.percent, got, c.want)
		}
	}
	for v, want := range map[float64]string{999: "999", 1000: "1k", 1234: "1.2k", 949999: "950k", 999949: "1M",
		3.4e6: "3.4M", 2.5e9: "2.5B", 1.2e12: "1.2T", 2e15: "2e+15"} {
		if got := compact(v); got != want {
			t.Errorf("compact(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestCSS(t *testing.T) {
	file, err := os.ReadFile("chart.css")
	if err != nil || !bytes.Equal(file, CSS) {
		t.Fatalf("CSS is not chart.css: %v", err)
	}
	css := string(CSS)
	for _, want := range []string{".chart .s0", ".chart .s7", ".chart .axis", ".chart .grid", ".chart .label", ".chart .bar",
		".chart .area", ".chart .series", ".chart .point", ".chart .hit", "@media (prefers-color-scheme: dark)"} {
		if !strings.Contains(css, want) {
			t.Errorf("chart.css has no %s", want)
		}
	}
	if i := strings.Index(css, ".chart .previous {"); i < 0 || !strings.Contains(css[i:i+strings.Index(css[i:], "}")], "stroke-dasharray") {
		t.Error("the previous period is not dashed")
	}
	if strings.Count(css, "{") != strings.Count(css, "}") {
		t.Error("unbalanced braces")
	}
}

// FuzzLine draws charts of random labels and values: each must be
// well-formed XML with the points the values call for.
func FuzzLine(f *testing.F) {
	le := func(vs ...float64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		return b
	}
	f.Add("2026-11-29|2026-11-30|"+hostile, le(1, math.NaN(), 1234), hostile, "previous", false, 0, 0)
	f.Add("", le(), "", "", true, 1, 1)
	f.Add("a|b|c|d", le(-1, math.Inf(1), math.MaxFloat64, 5e-324), "\xff\xfe", "<x>", true, 300, 100)
	f.Fuzz(func(t *testing.T, labels string, values []byte, name, class string, percent bool, width, height int) {
		var ls []string
		if labels != "" {
			ls = strings.Split(labels, "|")
		}
		if len(ls) > 500 {
			ls = ls[:500]
		}
		var vs []float64
		for i := 0; i+8 <= len(values) && i < 8*500; i += 8 {
			vs = append(vs, math.Float64frombits(binary.LittleEndian.Uint64(values[i:])))
		}
		second := slices.Clone(vs)
		slices.Reverse(second)
		series := []Series{{Name: name, Values: vs, Class: class}, {Name: class, Values: second}}
		svg := string(Line{Title: name, Labels: ls, Series: series, Width: width, Height: height, Percent: percent}.SVG())
		root := parse(t, svg)
		want := 0
		for _, s := range series {
			for i := range ls {
				if i < len(s.Values) && !math.IsNaN(s.Values[i]) && !math.IsInf(s.Values[i], 0) {
					want++
				}
			}
		}
		if got := len(root.all("circle", "point")); got != want {
			t.Fatalf("%d points, want %d", got, want)
		}
		if n := len(root.all("text", "label", "mid")); n > 8 || n > len(ls) || (len(ls) > 0) != (n > 0) {
			t.Fatalf("%d x labels for %d", n, len(ls))
		}
		if tk := ticks(t, root); len(tk) < 4 || len(tk) > 6 {
			t.Fatalf("%d ticks", len(tk))
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Fatal(svg)
		}
		if again := string(Line{Title: name, Labels: ls, Series: series, Width: width, Height: height, Percent: percent}.SVG()); again != svg {
			t.Fatal("not deterministic")
		}

		parse(t, string(StackedArea{Title: name, Labels: ls, Series: series, Width: width, Height: height}.SVG()))
		bars := make([]Bar, min(len(ls), len(vs)))
		for i := range bars {
			bars[i] = Bar{Label: ls[i], Value: vs[i], Note: name}
		}
		root = parse(t, string(Bars{Title: name, Bars: bars, Width: width, Percent: percent}.SVG()))
		if got := len(root.all("rect", "bar")); got != len(bars) {
			t.Fatalf("%d bars, want %d", got, len(bars))
		}
	})
}
