package server

import (
	"context"
	"encoding/json"
	"time"
)

// RejectionCounter is a [Store] that keeps, per project and day, the
// number of events rejected by reason, for the query API's data quality.
type RejectionCounter interface {
	// CountRejections adds n events rejected for each reason, today.
	CountRejections(ctx context.Context, projectID int64, byReason map[string]int64) error
}

// QualityDay is one UTC day's data quality: events dropped by clients
// (counted on the day the server heard of it), events the server rejected
// by reason, and values of stored events that the rollups' cardinality caps
// folded into "(other)", by dimension.
type QualityDay struct {
	Day      time.Time
	Dropped  int64
	Rejected map[string]int64
	Folded   map[string]int64
}

// QualityQuery asks for the data quality of a range of UTC days.
type QualityQuery struct {
	From, To time.Time // both included
}

// ParseQualityQuery reads {"date_range": …}.
func ParseQualityQuery(body []byte, now time.Time) (QualityQuery, error) {
	var w struct {
		DateRange json.RawMessage `json:"date_range"`
	}
	if err := decodeStrict(body, "data quality query", &w); err != nil {
		return QualityQuery{}, err
	}
	from, to, _, err := parseDateRange(w.DateRange, now)
	if err != nil {
		return QualityQuery{}, err
	}
	return QualityQuery{From: from, To: to}, nil
}
