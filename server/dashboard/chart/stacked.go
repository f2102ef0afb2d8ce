package chart

import (
	"html/template"
	"math"
	"strings"
)

// StackedArea draws percent-stacked areas (each label's values normalised
// to 100%), e.g. version adoption over days.
//
// The first series is at the bottom. A label whose values sum to 0 (or
// have none) draws nothing: the areas break there, and a label between two
// such breaks is drawn as a column. Each label's column has a <title>
// with every series' share and value; the legend names the series.
type StackedArea struct {
	Title         string
	Labels        []string
	Series        []Series
	Width, Height int // zero means 720×240
}

// SVG draws the chart.
func (c StackedArea) SVG() template.HTML {
	w, h := size(c.Width, defaultWidth, minWidth), size(c.Height, defaultHeight, minHeight)
	n := len(c.Labels)
	// Each column's shares: its values over their sum, summed after
	// dividing by the column's largest so that huge values never overflow.
	peak := make([]float64, n)
	for _, s := range c.Series {
		for i := range n {
			if v := at(s.Values, i); v > peak[i] {
				peak[i] = v
			}
		}
	}
	total := make([]float64, n)
	for _, s := range c.Series {
		for i := range n {
			if v := at(s.Values, i); v > 0 {
				total[i] += v / peak[i]
			}
		}
	}
	share := func(s Series, i int) float64 {
		if v := at(s.Values, i); v > 0 {
			return v / peak[i] / total[i]
		}
		return 0
	}
	var runs [][2]int // the columns drawn, [from, to)
	for i := 0; i < n; {
		if total[i] == 0 {
			i++
			continue
		}
		j := i
		for j < n && total[j] > 0 {
			j++
		}
		runs = append(runs, [2]int{i, j})
		i = j
	}

	sc := scale{top: 1, step: 0.2, n: 5}
	lw := labelWidth(c.Labels, float64(w))
	f := newFrame(w, h, c.Series, tickWidth(sc, true), lw)
	var b svg
	b.open("stacked", c.Title, int(math.Ceil(f.w)), int(math.Ceil(f.h)))
	b.yAxis(f, sc, true)
	xa := newXAxis(c.Labels, f.left, f.pw, lw)
	xa.write(&b, f.top+f.ph+16)
	y := func(s float64) float64 { return f.top + f.ph - min(s, 1)*f.ph }
	// A column's extent: halfway to its neighbours, within the plot.
	edges := func(i int) (float64, float64) {
		l, r := f.left, f.left+f.pw
		if i > 0 {
			l = (xa.x(i-1) + xa.x(i)) / 2
		}
		if i < n-1 {
			r = (xa.x(i) + xa.x(i+1)) / 2
		}
		return l, r
	}

	base := make([]float64, n) // the shares stacked so far
	for si, s := range c.Series {
		var d strings.Builder
		for _, run := range runs {
			drawn := false
			for i := run[0]; i < run[1]; i++ {
				drawn = drawn || share(s, i) > 0
			}
			if !drawn {
				continue
			}
			// The upper edge left to right, then the lower edge back.
			type pt struct{ x, lo, hi float64 }
			var pts []pt
			if run[1]-run[0] == 1 {
				i := run[0]
				l, r := edges(i)
				lo, hi := base[i], base[i]+share(s, i)
				pts = []pt{{l, lo, hi}, {r, lo, hi}}
			} else {
				for i := run[0]; i < run[1]; i++ {
					pts = append(pts, pt{xa.x(i), base[i], base[i] + share(s, i)})
				}
			}
			for k, p := range pts {
				if k == 0 {
					d.WriteByte('M')
				} else {
					d.WriteByte('L')
				}
				d.WriteString(num(p.x) + "," + num(y(p.hi)))
			}
			for k := len(pts) - 1; k >= 0; k-- {
				d.WriteString("L" + num(pts[k].x) + "," + num(y(pts[k].lo)))
			}
			d.WriteByte('Z')
		}
		for i := range n {
			if total[i] > 0 {
				base[i] += share(s, i)
			}
		}
		if d.Len() > 0 {
			b.WriteString(`<path class="area ` + classes(si, s.Class) + `" d="` + d.String() + `"><title>` + esc(s.Name) + `</title></path>`)
		}
	}
	// Each column's values, on hover.
	for _, run := range runs {
		for i := run[0]; i < run[1]; i++ {
			l, r := edges(i)
			b.WriteString(`<rect class="hit" x="` + num(l) + `" y="` + num(f.top) + `" width="` + num(r-l) + `" height="` + num(f.ph) + `"><title>` + esc(c.Labels[i]))
			for _, s := range c.Series {
				if v := at(s.Values, i); v > 0 {
					b.WriteString("\n" + esc(s.Name) + ": " + value(share(s, i), true) + " (" + value(v, false) + ")")
				}
			}
			b.WriteString(`</title></rect>`)
		}
	}
	b.writeLegend(f.legend, f.legendTop, false)
	if len(runs) == 0 {
		b.empty(f.left, f.top, f.pw, f.ph)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
