package server

import (
	"encoding/json"
	"time"
)

// RetentionQuery asks how the users first seen in each week of a range
// come back in the weeks after, and how many users are new, returning and
// dormant each week. Weeks are ISO weeks in UTC, starting on Monday.
type RetentionQuery struct {
	// From and To are the Mondays of the first and last cohort weeks.
	From, To time.Time
	// Weeks is how many weeks each cohort is followed, the first week
	// (week 0, always 100%) included.
	Weeks int
	// Filters select the events that count as activity, as in [Query].
	Filters []Filter
}

// Retention is the answer to a [RetentionQuery].
type Retention struct {
	Cohorts []Cohort
	Weeks   []WeekActivity
}

// Cohort is the users first seen in one week, and how many of them were
// active in each week since: Active[k] in the k-th week after Week
// (Active[0] is Users). Weeks that have not begun yet are left out.
type Cohort struct {
	Week   time.Time
	Users  int64
	Active []int64
}

// WeekActivity counts a week's users: Active were active in the week; New
// were first seen in it; Returning were active and first seen before it;
// Dormant were active the week before and not in this one.
type WeekActivity struct {
	Week                            time.Time
	Active, New, Returning, Dormant int64
}

// Retention limits.
const (
	DefaultRetentionWeeks = 12
	MaxRetentionWeeks     = 52
)

// ParseRetentionQuery reads a retention query: {"date_range": …, "weeks":
// 12, "filters": […]}. The range's days are widened to whole weeks.
func ParseRetentionQuery(body []byte, now time.Time) (RetentionQuery, error) {
	var w struct {
		DateRange json.RawMessage   `json:"date_range"`
		Weeks     *int              `json:"weeks"`
		Filters   []json.RawMessage `json:"filters"`
	}
	if err := decodeStrict(body, "retention query", &w); err != nil {
		return RetentionQuery{}, err
	}
	from, to, _, err := parseDateRange(w.DateRange, now)
	if err != nil {
		return RetentionQuery{}, err
	}
	q := RetentionQuery{From: Monday(from), To: Monday(to), Weeks: DefaultRetentionWeeks}
	if w.Weeks != nil {
		if *w.Weeks < 1 || *w.Weeks > MaxRetentionWeeks {
			return RetentionQuery{}, badQuery("weeks must be between 1 and %d", MaxRetentionWeeks)
		}
		q.Weeks = *w.Weeks
	}
	if q.Filters, err = parseFilters(w.Filters); err != nil {
		return RetentionQuery{}, err
	}
	return q, nil
}

// Monday is the start of t's ISO week, in UTC.
func Monday(t time.Time) time.Time {
	d := t.UTC().Truncate(24 * time.Hour)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}
