package chart

import (
	"html/template"
	"math"
)

// Line draws one or more series over shared X labels (dates like
// "2026-11-30"); the y axis starts at 0 with "nice" ticks (1, 2, 5 × 10^n)
// and thousands formatted compactly (1.2k, 3.4M).
//
// A NaN value is a gap that breaks the line, as are the values missing
// at the end of a series shorter than the labels; negative values are
// drawn as 0. Each value is a point whose <title> reads
// "2026-11-30 · name: 1,234"; a value between two gaps is drawn as a dot.
// Two or more series have a legend, in their order.
type Line struct {
	Title         string   // accessible name (aria-label and <title>)
	Labels        []string // x labels
	Series        []Series
	Width, Height int  // zero means 720×240
	Percent       bool // y values are shares 0–1, ticks shown as percents
}

// dotsUpTo is the number of labels up to which a line shows all its points
// (chart.css shows points of a longer line on hover only).
const dotsUpTo = 40

// SVG draws the chart.
func (c Line) SVG() template.HTML {
	w, h := size(c.Width, defaultWidth, minWidth), size(c.Height, defaultHeight, minHeight)
	n := len(c.Labels)
	hi, whole, values := 0.0, true, 0
	for _, s := range c.Series {
		for i := range n {
			v := at(s.Values, i)
			if math.IsNaN(v) {
				continue
			}
			values++
			hi = max(hi, v)
			whole = whole && v == math.Trunc(v)
		}
	}
	sc := niceScale(hi, whole && !c.Percent)
	var keys []Series
	if len(c.Series) > 1 {
		keys = c.Series
	}
	lw := labelWidth(c.Labels, float64(w))
	f := newFrame(w, h, keys, tickWidth(sc, c.Percent), lw)
	kind := "line"
	if n <= dotsUpTo {
		kind += " dots"
	}
	var b svg
	b.open(kind, c.Title, int(math.Ceil(f.w)), int(math.Ceil(f.h)))
	b.yAxis(f, sc, c.Percent)
	xa := newXAxis(c.Labels, f.left, f.pw, lw)
	xa.write(&b, f.top+f.ph+16)
	y := func(v float64) float64 { return f.top + f.ph - min(v, sc.top)/sc.top*f.ph }

	// The lines, each broken at its gaps; then the points above them all,
	// so that every point can be hovered.
	lone := make([][]bool, len(c.Series))
	for si, s := range c.Series {
		lone[si] = make([]bool, n)
		cls := classes(si, s.Class)
		for i := 0; i < n; {
			if math.IsNaN(at(s.Values, i)) {
				i++
				continue
			}
			j := i
			for j < n && !math.IsNaN(at(s.Values, j)) {
				j++
			}
			if j-i == 1 {
				lone[si][i] = true
			} else {
				b.WriteString(`<polyline class="series ` + cls + `" points="`)
				for k := i; k < j; k++ {
					if k > i {
						b.WriteByte(' ')
					}
					b.WriteString(num(xa.x(k)) + "," + num(y(at(s.Values, k))))
				}
				b.WriteString(`"/>`)
			}
			i = j
		}
	}
	for si, s := range c.Series {
		cls := "point " + classes(si, s.Class)
		name := clean(s.Name)
		for i := range n {
			v := at(s.Values, i)
			if math.IsNaN(v) {
				continue
			}
			title := clean(c.Labels[i])
			if name != "" {
				title += " · " + name
			}
			title += ": " + value(v, c.Percent)
			class := cls
			if lone[si][i] {
				class += " lone"
			}
			b.WriteString(`<circle class="` + class + `" cx="` + num(xa.x(i)) + `" cy="` + num(y(v)) + `" r="3"><title>` +
				esc(title) + `</title></circle>`)
		}
	}
	b.writeLegend(f.legend, f.legendTop, true)
	if values == 0 {
		b.empty(f.left, f.top, f.pw, f.ph)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
