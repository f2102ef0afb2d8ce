package chart

import (
	_ "embed"
	"math"
	"strconv"
	"strings"
)

// CSS is the stylesheet of the charts' classes (chart.css), for light and
// dark schemes.
//
//go:embed chart.css
var CSS []byte

// Series is one line or one stacked band.
type Series struct {
	Name   string
	Values []float64 // one per label; math.NaN() means no value (gap)
	Class  string    // optional extra CSS class, e.g. "previous" for the dashed previous-period overlay
}

// Bar is one bar of [Bars].
type Bar struct {
	Label string
	Value float64
	Unit  string // optional, printed after the value with a space, e.g. "days"
	Note  string // optional, printed after the value, e.g. "82% ok"
}

// Sizes, in SVG user units (CSS pixels at the chart's natural size).
const (
	defaultWidth  = 720
	defaultHeight = 240
	defaultBarsW  = 480
	minWidth      = 160
	minHeight     = 80
	maxSize       = 8192

	// Text widths are estimated for the 11px font that chart.css sets.
	charWidth = 6.3  // a narrow character's estimated width
	wideWidth = 11.0 // a wide (CJK, emoji) character's estimated width

	maxLabelWidth  = 120.0 // an x label is shortened to this width
	maxLegendWidth = 140.0 // a legend's name is shortened to this width
	legendRow      = 16.0
	maxLegendRows  = 3
	series         = 8 // classes s0 … s7

	// maxValue bounds the values on a scale, so that the axis' arithmetic
	// stays finite; larger values are drawn at the top of the axis.
	maxValue = 1e300
)

// size returns v within [lo, maxSize], or def when v is 0 or less.
func size(v, def, lo int) int {
	if v <= 0 {
		v = def
	}
	return min(max(v, lo), maxSize)
}

// clamp returns the value a chart draws for v: NaN (no value) for NaN and
// infinities, 0 for negative values, at most maxValue.
func clamp(v float64) float64 {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return math.NaN()
	case v < 0:
		return 0
	case v > maxValue:
		return maxValue
	}
	return v
}

// at returns the i-th value of values as clamped, NaN when it has none.
func at(values []float64, i int) float64 {
	if i < 0 || i >= len(values) {
		return math.NaN()
	}
	return clamp(values[i])
}

// num formats a coordinate to one decimal, without a trailing ".0".
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	r := math.Round(v*10) / 10
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// clean returns s as one line of text that XML allows: control characters
// and line separators become spaces, invalid UTF-8 and the non-characters
// U+FFFE and U+FFFF become U+FFFD, and bidirectional embeddings, overrides
// and isolates (which could make a label look like another) are dropped.
func clean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == 0x2028, r == 0x2029:
			b.WriteByte(' ')
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		case r == 0xfffe, r == 0xffff:
			b.WriteRune(0xfffd)
		default:
			b.WriteRune(r) // an invalid byte comes as U+FFFD
		}
	}
	return b.String()
}

// esc returns s cleaned and escaped for XML text and attribute values.
func esc(s string) string {
	s = clean(s)
	if !strings.ContainsAny(s, `<>&"'`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
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
			b.WriteRune(r)
		}
	}
	return b.String()
}

// runeWidth estimates the width of r.
func runeWidth(r rune) float64 {
	switch {
	case r >= 0x300 && r <= 0x36f, r == 0x200b, r == 0x200d, r >= 0xfe00 && r <= 0xfe0f:
		return 0 // combining marks, joiners, variation selectors
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0xa4cf, r >= 0xac00 && r <= 0xd7a3,
		r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f, r >= 0xff00 && r <= 0xff60,
		r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300:
		return wideWidth
	}
	return charWidth
}

// textWidth estimates the width of s.
func textWidth(s string) float64 {
	w := 0.0
	for _, r := range s {
		w += runeWidth(r)
	}
	return w
}

// fit returns s cleaned and, when wider than width, shortened with an
// ellipsis to fit it.
func fit(s string, width float64) string {
	s = clean(s)
	if textWidth(s) <= width {
		return s
	}
	w := runeWidth('…')
	for i, r := range s {
		if w+runeWidth(r) > width {
			return s[:i] + "…"
		}
		w += runeWidth(r)
	}
	return s
}

// classes returns the classes of the i-th series: s0 … s7, cycling, and
// the series' own class, reduced to the characters of a CSS identifier.
func classes(i int, extra string) string {
	c := "s" + strconv.Itoa(i%series)
	for _, f := range strings.Fields(extra) {
		f = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return -1
		}, f)
		if f != "" {
			c += " " + f
		}
	}
	return c
}

// svg builds a chart's markup.
type svg struct {
	strings.Builder
}

// open writes the <svg> element's start and its <title>.
func (b *svg) open(kind, title string, w, h int) {
	t := esc(title)
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `)
	b.WriteString(strconv.Itoa(w) + " " + strconv.Itoa(h))
	b.WriteString(`" role="img" aria-label="` + t + `" class="chart ` + kind + `"><title>` + t + `</title>`)
}

// text writes a <text> of class at (x, y); s is escaped.
func (b *svg) text(class string, x, y float64, s string) {
	b.WriteString(`<text class="` + class + `" x="` + num(x) + `" y="` + num(y) + `">` + esc(s) + `</text>`)
}

// line writes a <line> of class from (x1, y1) to (x2, y2).
func (b *svg) line(class string, x1, y1, x2, y2 float64) {
	b.WriteString(`<line class="` + class + `" x1="` + num(x1) + `" y1="` + num(y1) + `" x2="` + num(x2) + `" y2="` + num(y2) + `"/>`)
}

// rect writes a <rect> of class.
func (b *svg) rect(class string, x, y, w, h float64) {
	b.WriteString(`<rect class="` + class + `" x="` + num(x) + `" y="` + num(y) + `" width="` + num(max(w, 0)) + `" height="` + num(max(h, 0)) + `"/>`)
}

// empty writes the "No data" note at the middle of a plot.
func (b *svg) empty(left, top, w, h float64) {
	b.text("label empty", left+w/2, top+h/2+4, "No data")
}

// more names the series a legend leaves out.
func more(n int) string { return "+" + strconv.Itoa(n) + " more" }

// legendItem is a series' key: its name and position.
type legendItem struct {
	class, name string
	x, y        float64
}

// legend lays out the keys of series in rows across width w, at most
// maxLegendRows; a last key names how many series were left out. It
// returns the keys and the legend's height.
func legend(ss []Series, w float64) ([]legendItem, float64) {
	if len(ss) == 0 {
		return nil, 0
	}
	const swatch, gap, pad = 18.0, 14.0, 8.0
	var items []legendItem
	x, row := pad, 0
	for i, s := range ss {
		name := fit(s.Name, min(maxLegendWidth, w-2*pad-swatch))
		iw := swatch + textWidth(name)
		if x > pad && x+iw > w-pad {
			if row+1 == maxLegendRows {
				// The rest is counted; the note takes the place of the
				// row's last keys when it does not fit after them.
				left := len(ss) - i
				for last := len(items) - 1; last >= 0 && items[last].y == float64(row)*legendRow &&
					x+textWidth(more(left)) > w-pad; last-- {
					x = items[last].x
					items = items[:last]
					left++
				}
				items = append(items, legendItem{class: "more", name: more(left), x: x, y: float64(row) * legendRow})
				break
			}
			x, row = pad, row+1
		}
		items = append(items, legendItem{class: classes(i, s.Class), name: name, x: x, y: float64(row) * legendRow})
		x += iw + gap
	}
	return items, float64(row+1)*legendRow + 4
}

// writeLegend draws the keys from y0 down; a line chart's key is a short
// line (dashed for the previous period), a stacked chart's a square.
func (b *svg) writeLegend(items []legendItem, y0 float64, lines bool) {
	for _, it := range items {
		y := y0 + it.y
		if it.class == "more" {
			b.text("label", it.x, y+11, it.name)
			continue
		}
		if lines {
			b.line("series "+it.class, it.x, y+7, it.x+13, y+7)
		} else {
			b.rect("swatch "+it.class, it.x+1, y+2, 10, 10)
		}
		b.text("label", it.x+18, y+11, it.name)
	}
}

// scale is a y axis from 0: top = step × n.
type scale struct {
	top, step float64
	n         int
}

// niceScale returns the axis from 0 to a round number at or above hi, in
// 3 to 5 steps of 1, 2 or 5 × 10ⁿ (4 to 6 ticks). Steps are at least 1
// when every value is a whole number.
func niceScale(hi float64, whole bool) scale {
	if !(hi > 0) {
		hi = 1
	}
	hi = min(max(hi, 1e-6), maxValue)
	e := int(math.Floor(math.Log10(hi / 5)))
	step := 0.0
	for k := e - 1; k <= e+1 && step == 0; k++ {
		for _, m := range []float64{1, 2, 5} {
			if s := m * math.Pow10(k); math.Ceil(hi/s-1e-9) <= 5 {
				step = s
				break
			}
		}
	}
	if step == 0 { // not reached: 10^(e+1) ≥ hi/5
		step = math.Pow10(e + 2)
	}
	if whole && step < 1 {
		step = 1
	}
	n := max(int(math.Ceil(hi/step-1e-9)), 3)
	return scale{top: step * float64(n), step: step, n: n}
}

// decimals returns how many decimals show a multiple of step exactly.
func decimals(step float64) int {
	if step <= 0 {
		return 0
	}
	return min(max(int(-math.Floor(math.Log10(step)+1e-9)), 0), 9)
}

// trimZeros drops the trailing zeros of a decimal number.
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// units are the suffixes of compact numbers.
var units = []struct {
	size   float64
	suffix string
}{{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "k"}}

// tick formats the axis value v, a multiple of step: compact (1.2k, 3.4M)
// or a percent.
func tick(v, step float64, percent bool) string {
	if percent {
		return trimZeros(strconv.FormatFloat(100*v, 'f', decimals(100*step), 64)) + "%"
	}
	if v >= 1e15 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	for _, u := range units {
		if v >= u.size {
			return trimZeros(strconv.FormatFloat(v/u.size, 'f', decimals(step/u.size), 64)) + u.suffix
		}
	}
	return trimZeros(strconv.FormatFloat(v, 'f', decimals(step), 64))
}

// compact formats v to about three digits: 950, 12.3k, 4.5M.
func compact(v float64) string {
	switch {
	case v >= 1e15:
		return strconv.FormatFloat(v, 'g', 3, 64)
	case v < 1000:
		return value(v, false)
	}
	for _, u := range units { // the largest unit that v rounds to 1 of
		if r := math.Round(v/u.size*10) / 10; r >= 1 {
			return trimZeros(strconv.FormatFloat(r, 'f', 1, 64)) + u.suffix
		}
	}
	return value(v, false)
}

// value formats v in full: 1,234, 1,234.5, 0.0012, 12.3%.
func value(v float64, percent bool) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case percent:
		p := 100 * v
		if p != 0 && math.Abs(p) < 1 {
			return strconv.FormatFloat(p, 'f', 2, 64) + "%"
		}
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	case math.Abs(v) >= 1e15:
		return strconv.FormatFloat(v, 'g', 4, 64)
	case v != 0 && math.Abs(v) < 0.01:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	s := trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	whole, frac, _ := strings.Cut(s, ".")
	sign := ""
	if strings.HasPrefix(whole, "-") {
		sign, whole = "-", whole[1:]
	}
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if frac != "" {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// xAxis is the x positions of n labels and which of them are shown.
type xAxis struct {
	left, width float64
	n           int
	shown       []int    // the indexes of the labels shown
	text        []string // their text, shortened to fit
}

// x returns the position of the i-th label: evenly spread over the plot,
// the only one in its middle.
func (a xAxis) x(i int) float64 {
	if a.n <= 1 {
		return a.left + a.width/2
	}
	return a.left + a.width*float64(i)/float64(a.n-1)
}

// labelWidth returns the width that x labels are shortened to in a chart
// of width w: the widest label's, at most maxLabelWidth and w/2.5 (room
// for a date in the narrowest chart).
func labelWidth(labels []string, w float64) float64 {
	lw := 0.0
	for _, l := range labels {
		lw = max(lw, textWidth(clean(l)))
		if lw >= maxLabelWidth {
			break
		}
	}
	return min(lw, maxLabelWidth, w/2.5)
}

// newXAxis picks the labels to show over a plot from left, width wide: at
// most 8, every step-th from the first, far enough apart that labels of
// width lw never overlap.
func newXAxis(labels []string, left, width, lw float64) xAxis {
	a := xAxis{left: left, width: width, n: len(labels)}
	if a.n == 0 {
		return a
	}
	step := 1
	if a.n > 1 {
		spacing := width / float64(a.n-1)
		step = max((a.n-1+6)/7, int(math.Ceil((lw+12)/spacing)), 1)
	}
	for i := 0; i < a.n; i += step {
		a.shown = append(a.shown, i)
		a.text = append(a.text, fit(labels[i], lw))
	}
	return a
}

// write draws the shown labels below the plot, centred on their points.
func (a xAxis) write(b *svg, y float64) {
	for k, i := range a.shown {
		b.text("label mid", a.x(i), y, a.text[k])
	}
}

// frame is a plot's area inside the chart and the legend above it.
type frame struct {
	w, h                float64 // the chart
	left, top, pw, ph   float64 // the plot
	legend              []legendItem
	legendTop, legendsH float64
}

// newFrame lays out a chart of w×h with a legend for legendSeries, y tick
// labels up to tickW wide and x labels up to lw wide. The height grows
// when the legend would leave the plot too little room.
func newFrame(w, h int, legendSeries []Series, tickW, lw float64) frame {
	f := frame{w: float64(w), h: float64(h)}
	f.legend, f.legendsH = legend(legendSeries, f.w)
	f.legendTop = 6
	f.top = 10 + f.legendsH
	const bottom = 22.0
	f.left = max(tickW+12, lw/2+4)
	right := max(12, lw/2+4)
	f.pw = max(f.w-f.left-right, 1)
	f.ph = f.h - f.top - bottom
	if f.ph < 40 {
		f.ph = 40
		f.h = f.top + f.ph + bottom
	}
	return f
}

// yAxis draws the grid lines and tick labels of s, and the axes.
func (b *svg) yAxis(f frame, s scale, percent bool) {
	y0 := f.top + f.ph
	for i := 1; i <= s.n; i++ {
		y := y0 - f.ph*float64(i)/float64(s.n)
		b.line("grid", f.left, y, f.left+f.pw, y)
	}
	for i := 0; i <= s.n; i++ {
		y := y0 - f.ph*float64(i)/float64(s.n)
		b.text("label end", f.left-6, y+4, tick(s.step*float64(i), s.step, percent))
	}
	b.line("axis", f.left, f.top, f.left, y0)
	b.line("axis", f.left, y0, f.left+f.pw, y0)
}

// tickWidth returns the width of s's widest tick label.
func tickWidth(s scale, percent bool) float64 {
	w := 0.0
	for i := 0; i <= s.n; i++ {
		w = max(w, textWidth(tick(s.step*float64(i), s.step, percent)))
	}
	return w
}
