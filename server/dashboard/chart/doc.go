// Package chart draws the dashboard's charts as SVG on the server, with the
// standard library only: lines over time ([Line]), horizontal bars ([Bars])
// and percent-stacked areas ([StackedArea]).
//
// The output is a complete <svg> element, ready to be placed in an
// html/template page as it is ([template.HTML]): every text in it, from
// labels and series names that come from event data, is XML-escaped here,
// and characters that XML does not allow are replaced.
//
// The output has no script, no style attribute and no <style> element, so
// that it is shown under a Content-Security-Policy with no script and
// `style-src 'self'`. Colours come from classes that [CSS] (the file
// chart.css, embedded) defines for light and dark schemes, with the
// Okabe–Ito palette that readers with common colour-vision deficiencies can
// tell apart:
//
//   - chart: the <svg> element, with line, bars or stacked for its kind
//   - s0 … s7: the series, by position, cycling; a series' own Class is
//     added (previous: the previous period, drawn dashed)
//   - series (a line), point (a value of a line), area (a stacked band),
//     bar, swatch (a legend's key)
//   - axis, grid, label, value (a bar's value), empty (no data)
//   - hit: a transparent column of a stacked chart that shows its values
//
// Attributes carry geometry only (x, y, width, height, points, d, r).
//
// Every chart has an accessible name (its <title> and aria-label), and
// every value a <title> that the browser shows on hover, without
// JavaScript: each point of a line, each bar and each column of a stacked
// chart. The y axis of a line starts at 0 and ends at a round number, with
// 4 to 6 ticks at 1, 2 or 5 × 10ⁿ; at most 8 x labels are shown, evenly
// spaced and shortened so that they never overlap.
//
// Charts never fail: no labels, no series, gaps (NaN), negative values
// (drawn as 0), infinite values (gaps) and huge values all draw a valid
// SVG, and the same input always draws the same bytes.
package chart
