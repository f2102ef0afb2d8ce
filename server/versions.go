package server

import (
	"encoding/json"
	"time"
)

// VersionsQuery asks how each version of a tool was adopted over a range:
// its users and events in the range, when it was first seen, and how long
// it took, from then, until it or a later version was the version of at
// least half of a day's active users.
type VersionsQuery struct {
	From, To time.Time // UTC days, both included
	Filters  []Filter
}

// VersionAdoption is one version's answer to a [VersionsQuery].
type VersionAdoption struct {
	Version string
	// FirstSeen is the UTC day of the version's first event in the stored
	// history, whatever the filters: when it came out, as far as the
	// server knows.
	FirstSeen time.Time
	// Users and Events are the version's distinct users and events in the
	// range.
	Users, Events int64
	// HalfReached is the first UTC day, from FirstSeen's, on which at
	// least half of the day's active users ran this version or a later
	// one (their newest version of the day, by semantic version); nil if
	// none did in the range, or if the version is not a semantic version.
	HalfReached *time.Time
}

// DaysToHalf is the number of days from the version's first day to the
// day half of the active users had it, or -1.
func (v VersionAdoption) DaysToHalf() int {
	if v.HalfReached == nil {
		return -1
	}
	return int(v.HalfReached.Sub(v.FirstSeen) / (24 * time.Hour))
}

// ParseVersionsQuery reads {"date_range": …, "filters": […]}.
func ParseVersionsQuery(body []byte, now time.Time) (VersionsQuery, error) {
	var w struct {
		DateRange json.RawMessage   `json:"date_range"`
		Filters   []json.RawMessage `json:"filters"`
	}
	if err := decodeStrict(body, "versions query", &w); err != nil {
		return VersionsQuery{}, err
	}
	var q VersionsQuery
	var err error
	if q.From, q.To, _, err = parseDateRange(w.DateRange, now); err != nil {
		return VersionsQuery{}, err
	}
	if q.Filters, err = parseFilters(w.Filters); err != nil {
		return VersionsQuery{}, err
	}
	return q, nil
}
