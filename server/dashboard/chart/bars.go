package chart

import (
	"html/template"
	"math"
)

// Bars draws horizontal bars, one per item, longest first as given (no
// re-sorting), value printed at the bar end.
//
// Bars are drawn to scale from 0 to the largest value, or to 100% when
// Percent is set; the label is at the left, shortened to fit, and each
// bar's <title> has the label, the exact value (with its unit) and the
// note.
type Bars struct {
	Title   string
	Bars    []Bar
	Width   int // zero means 480; height follows the number of bars
	Percent bool
}

// SVG draws the chart.
func (c Bars) SVG() template.HTML {
	w := float64(size(c.Width, defaultBarsW, minWidth))
	const row, barH, pad, gap = 24.0, 16.0, 6.0, 6.0
	h := 2*pad + row*float64(max(len(c.Bars), 1))
	texts := make([]string, len(c.Bars))
	hi, lw, vw := 0.0, 0.0, 0.0
	for i, bar := range c.Bars {
		v := clamp(bar.Value)
		if !math.IsNaN(v) {
			hi = max(hi, v)
		}
		texts[i] = barValue(v, c.Percent) + unit(bar.Unit)
		if note := clean(bar.Note); note != "" {
			texts[i] += " · " + note
		}
		lw = max(lw, textWidth(clean(bar.Label)))
		vw = max(vw, textWidth(texts[i]))
	}
	lw, vw = min(lw, 0.4*w), min(vw, 0.3*w)
	if c.Percent {
		hi = max(hi, 1)
	}
	if hi == 0 {
		hi = 1
	}
	x0 := pad + lw + gap            // where bars start
	long := w - x0 - gap - vw - pad // the longest bar
	var b svg
	b.open("bars", c.Title, int(w), int(h))
	for i, bar := range c.Bars {
		v := clamp(bar.Value)
		length := 0.0
		if v > 0 {
			length = max(min(v, hi)/hi*long, 1) // a value above 0 is never invisible
		}
		top := pad + row*float64(i)
		title := clean(bar.Label) + ": " + value(v, c.Percent) + unit(bar.Unit)
		if note := clean(bar.Note); note != "" {
			title += " · " + note
		}
		b.WriteString(`<g class="row"><title>` + esc(title) + `</title>`)
		b.text("label end", x0-gap, top+row/2+4, fit(bar.Label, lw))
		b.rect("bar", x0, top+(row-barH)/2, length, barH)
		b.text("label value", x0+length+gap, top+row/2+4, fit(texts[i], vw))
		b.WriteString(`</g>`)
	}
	if len(c.Bars) == 0 {
		b.empty(0, 0, w, h)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barValue formats the value printed at a bar's end: in full up to a
// million, compact above.
func barValue(v float64, percent bool) string {
	if !percent && v >= 1e6 {
		return compact(v)
	}
	return value(v, percent)
}

// unit is the text printed after a value: a space and the unit, if any.
func unit(u string) string {
	if u = clean(u); u != "" {
		return " " + u
	}
	return ""
}
