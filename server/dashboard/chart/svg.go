// Package chart draws the dashboard's charts as SVG on the server: lines
// over time, horizontal bars and percent-stacked areas. The output has no
// script and no inline style (the dashboard's Content-Security-Policy
// allows neither): colours come from the classes that CSS, embedded here,
// defines for light and dark schemes. Every chart has an accessible name,
// and each point or bar a <title> that shows its value on hover; the
// dashboard shows the table behind each chart as well.
package chart

import (
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// CSS styles the charts' classes.
//
//go:embed chart.css
var CSS []byte

// Series is one line or one stacked band.
type Series struct {
	Name   string
	Values []float64 // one per label; NaN is no value
	Class  string    // an extra CSS class, such as "previous"
}

// Line draws series over shared x labels, the y axis from 0.
type Line struct {
	Title         string
	Labels        []string
	Series        []Series
	Width, Height int  // zero: 720×240
	Percent       bool // values are shares 0–1
}

// Bar is one bar of [Bars].
type Bar struct {
	Label string
	Value float64
	Note  string // shown after the value
}

// Bars draws horizontal bars in the order given.
type Bars struct {
	Title   string
	Bars    []Bar
	Width   int // zero: 480
	Percent bool
}

// StackedArea draws each label's values as shares of their sum, stacked.
type StackedArea struct {
	Title         string
	Labels        []string
	Series        []Series
	Width, Height int // zero: 720×240
}

// esc escapes text for SVG (XML).
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		default:
			if r < 0x20 && r != '\t' && r != '\n' || r == 0xFFFD || (r >= 0xD800 && r <= 0xDFFF) {
				b.WriteRune(' ')
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// num formats a coordinate.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// Compact formats a value for an axis or a tooltip: 1,234, 12.3k, 4.5M,
// or a percent.
func Compact(v float64, percent bool) string {
	if percent {
		return strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// niceMax returns a round top of the axis at or above v, and its step.
func niceMax(v float64, percent bool) (top, step float64) {
	if percent {
		if v <= 0.5 {
			v = math.Max(v, 0.01)
		} else {
			return 1, 0.25
		}
	}
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	raw := v / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return step * math.Ceil(v/step), step
}

// value clamps a chart value: NaN stays, negatives and infinities go to 0.
func value(v float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	if v < 0 || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func open(b *strings.Builder, class, title string, w, h int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" class="chart %s"><title>%s</title>`,
		w, h, esc(title), class, esc(title))
}

// seriesClass returns the classes of the i-th series.
func seriesClass(i int, s Series) string {
	c := fmt.Sprintf("s%d", i%8)
	if s.Class != "" {
		c += " " + esc(s.Class)
	}
	return c
}

// xScale places n labels evenly over the plot's width, from left.
func xScale(n int, left, width float64) func(i int) float64 {
	return func(i int) float64 {
		if n <= 1 {
			return left + width/2
		}
		return left + width*float64(i)/float64(n-1)
	}
}

// xLabels writes at most 8 evenly spaced x labels.
func xLabels(b *strings.Builder, labels []string, x func(i int) float64, y float64) {
	n := len(labels)
	every := max(1, (n+7)/8)
	for i := 0; i < n; i += every {
		anchor := "middle"
		switch {
		case n == 1:
		case i == 0:
			anchor = "start"
		case i+every >= n && i == n-1:
			anchor = "end"
		}
		fmt.Fprintf(b, `<text class="label" x="%s" y="%s" text-anchor="%s">%s</text>`, num(x(i)), num(y), anchor, esc(labels[i]))
	}
}

// yAxis writes the grid lines and labels of an axis from 0 to top.
func yAxis(b *strings.Builder, top, step float64, percent bool, left, right, y0, h float64) {
	for v := 0.0; v <= top+step/2; v += step {
		y := y0 - v/top*h
		fmt.Fprintf(b, `<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>`, num(left), num(right), num(y), num(y))
		fmt.Fprintf(b, `<text class="label" x="%s" y="%s" text-anchor="end">%s</text>`, num(left-6), num(y+4), Compact(v, percent))
	}
}

// SVG draws the line chart.
func (c Line) SVG() template.HTML {
	w, h := orDefault(c.Width, 720), orDefault(c.Height, 240)
	const left, right, top, bottom = 56.0, 12.0, 12.0, 28.0
	pw, ph := float64(w)-left-right, float64(h)-top-bottom
	var b strings.Builder
	open(&b, "line", c.Title, w, h)
	hi := 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if v = value(v); !math.IsNaN(v) && v > hi {
				hi = v
			}
		}
	}
	axisTop, step := niceMax(hi, c.Percent)
	yAxis(&b, axisTop, step, c.Percent, left, left+pw, top+ph, ph)
	n := len(c.Labels)
	x := xScale(n, left, pw)
	xLabels(&b, c.Labels, x, float64(h)-8)
	for si, s := range c.Series {
		cls := seriesClass(si, s)
		var seg []string
		flush := func() {
			if len(seg) > 1 {
				fmt.Fprintf(&b, `<polyline class="series %s" fill="none" points="%s"/>`, cls, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for i := 0; i < n && i < len(s.Values); i++ {
			v := value(s.Values[i])
			if math.IsNaN(v) {
				flush()
				continue
			}
			seg = append(seg, num(x(i))+","+num(top+ph-v/axisTop*ph))
		}
		flush()
		for i := 0; i < n && i < len(s.Values); i++ {
			v := value(s.Values[i])
			if math.IsNaN(v) {
				continue
			}
			fmt.Fprintf(&b, `<circle class="point %s" cx="%s" cy="%s" r="2.5"><title>%s · %s: %s</title></circle>`,
				cls, num(x(i)), num(top+ph-v/axisTop*ph), esc(c.Labels[i]), esc(s.Name), Compact(v, c.Percent))
		}
	}
	legend(&b, c.Series, left, 12)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// legend names the series when there are several.
func legend(b *strings.Builder, series []Series, x, y float64) {
	if len(series) < 2 {
		return
	}
	for i, s := range series {
		fmt.Fprintf(b, `<g class="legend"><rect class="swatch %s" x="%s" y="%s" width="10" height="10"/><text class="label" x="%s" y="%s">%s</text></g>`,
			seriesClass(i, s), num(x+8), num(y-9), num(x+22), num(y), esc(s.Name))
		x += 30 + 7*float64(len([]rune(s.Name)))
	}
}

// SVG draws the bars.
func (c Bars) SVG() template.HTML {
	w := orDefault(c.Width, 480)
	const row, labelW = 22.0, 150.0
	h := int(row*float64(len(c.Bars))) + 8
	var b strings.Builder
	open(&b, "bars", c.Title, w, max(h, 30))
	hi := 0.0
	for _, bar := range c.Bars {
		if v := value(bar.Value); !math.IsNaN(v) && v > hi {
			hi = v
		}
	}
	if hi == 0 {
		hi = 1
	}
	if c.Percent {
		hi = math.Max(hi, 1)
	}
	pw := float64(w) - labelW - 70
	for i, bar := range c.Bars {
		v := value(bar.Value)
		if math.IsNaN(v) {
			v = 0
		}
		y := 4 + row*float64(i)
		text := Compact(v, c.Percent)
		if bar.Note != "" {
			text += " · " + bar.Note
		}
		name := []rune(bar.Label)
		if len(name) > 22 {
			name = append(name[:21], '…')
		}
		fmt.Fprintf(&b, `<g class="bar-row"><title>%s: %s</title><text class="label" x="%s" y="%s" text-anchor="end">%s</text>`+
			`<rect class="bar s%d" x="%s" y="%s" width="%s" height="%s"/><text class="label value" x="%s" y="%s">%s</text></g>`,
			esc(bar.Label), esc(text), num(labelW-6), num(y+14), esc(string(name)),
			0, num(labelW), num(y+3), num(math.Max(v/hi*pw, 0)), num(row-6), num(labelW+v/hi*pw+4), num(y+14), esc(text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// SVG draws the stacked areas.
func (c StackedArea) SVG() template.HTML {
	w, h := orDefault(c.Width, 720), orDefault(c.Height, 240)
	const left, right, top, bottom = 48.0, 12.0, 12.0, 28.0
	pw, ph := float64(w)-left-right, float64(h)-top-bottom
	var b strings.Builder
	open(&b, "area", c.Title, w, h)
	yAxis(&b, 1, 0.25, true, left, left+pw, top+ph, ph)
	n := len(c.Labels)
	x := xScale(n, left, pw)
	xLabels(&b, c.Labels, x, float64(h)-8)
	// The columns' totals, and the running bottom of each.
	totals := make([]float64, n)
	for _, s := range c.Series {
		for i := 0; i < n && i < len(s.Values); i++ {
			if v := value(s.Values[i]); !math.IsNaN(v) {
				totals[i] += v
			}
		}
	}
	base := make([]float64, n)
	for si, s := range c.Series {
		var upper, lower []string
		for i := 0; i < n; i++ {
			if totals[i] == 0 {
				continue
			}
			v := 0.0
			if i < len(s.Values) {
				if v = value(s.Values[i]); math.IsNaN(v) {
					v = 0
				}
			}
			share := v / totals[i]
			upper = append(upper, num(x(i))+","+num(top+ph-(base[i]+share)*ph))
			lower = append(lower, num(x(i))+","+num(top+ph-base[i]*ph))
			base[i] += share
		}
		if len(upper) == 0 {
			continue
		}
		for l, r := 0, len(lower)-1; l < r; l, r = l+1, r-1 {
			lower[l], lower[r] = lower[r], lower[l]
		}
		fmt.Fprintf(&b, `<polygon class="area %s" points="%s"><title>%s</title></polygon>`,
			seriesClass(si, s), strings.Join(append(upper, lower...), " "), esc(s.Name))
	}
	legend(&b, c.Series, left, 12)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}
