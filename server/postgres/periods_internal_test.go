package postgres

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// The pieces of a range cover each of its days that is built and kept
// once, and no other; each lies in one bucket of the time dimension; and
// the month and week rows are used wherever a whole one fits.
func TestPeriodPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	for i := 0; i < 5000; i++ {
		from := base.AddDate(0, 0, r.IntN(400))
		to := from.AddDate(0, 0, r.IntN(200))
		built := from.AddDate(0, 0, r.IntN(260)-30)
		floor := from.AddDate(0, 0, r.IntN(60)-40)
		for _, td := range []server.Dimension{"", server.DimDay, server.DimWeek, server.DimMonth} {
			months, weeks, days := periodPieces(from, to, built, floor, td)
			covered := map[string]int{}
			for _, m := range months {
				if m.Day() != 1 || td == server.DimDay || td == server.DimWeek {
					t.Fatalf("%s..%s by %q: month %s", day(from), day(to), td, day(m))
				}
				for d := m; d.Month() == m.Month(); d = d.AddDate(0, 0, 1) {
					covered[day(d)]++
				}
			}
			for _, w := range weeks {
				end := w.AddDate(0, 0, 6)
				if w.Weekday() != time.Monday || td == server.DimDay || (td != server.DimWeek && end.Month() != w.Month()) {
					t.Fatalf("%s..%s by %q: week %s", day(from), day(to), td, day(w))
				}
				for d := w; !d.After(end); d = d.AddDate(0, 0, 1) {
					covered[day(d)]++
				}
			}
			for _, d := range days {
				covered[day(d)]++
			}
			n := 0
			for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
				want := 0
				if !d.After(built) && !d.Before(floor) {
					want = 1
					n++
				}
				if covered[day(d)] != want {
					t.Fatalf("%s..%s (built %s, floor %s) by %q: %s covered %d times, want %d",
						day(from), day(to), day(built), day(floor), td, day(d), covered[day(d)], want)
				}
			}
			if len(covered) != n {
				t.Fatalf("%s..%s by %q: %d days covered, %d in range", day(from), day(to), td, len(covered), n)
			}
			// No day row where a whole month or week would do.
			for _, d := range days {
				if td != server.DimDay && td != server.DimWeek && d.Day() == 1 && !d.AddDate(0, 1, -1).After(to) &&
					!d.AddDate(0, 1, -1).After(built) {
					t.Fatalf("%s..%s by %q: day %s starts a whole month", day(from), day(to), td, day(d))
				}
				if end := d.AddDate(0, 0, 6); td != server.DimDay && d.Weekday() == time.Monday && !end.After(to) &&
					!end.After(built) && (td == server.DimWeek || end.Month() == d.Month()) {
					t.Fatalf("%s..%s by %q: day %s starts a whole week", day(from), day(to), td, day(d))
				}
			}
		}
	}
}
