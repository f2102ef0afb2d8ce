package wire

import "time"

// ErasuresPath is where a tool asks, with its write key, to erase what it
// sent under one anonymous ID (POST, an [ErasureRequest]; the answer is an
// [ErasureResponse]). The erasure is done when the answer comes.
const ErasuresPath = "/v1/erasures"

// ErasureRequest is the body of a request to [ErasuresPath].
type ErasureRequest struct {
	UserID string `json:"user_id"` // "anon_" and 64 lower-case hex digits
	// RequestedAt is when the person asked: events of the user recorded
	// before it are erased, and discarded should they arrive later.
	RequestedAt time.Time `json:"requested_at"`
}

// ErasureResponse says what the server erased.
type ErasureResponse struct {
	Events       int64     `json:"events"`        // raw events
	UserRows     int64     `json:"user_rows"`     // per-user rows of the rollups
	Sketches     int64     `json:"sketches"`      // rollup sketches that held the user's hash
	ErasedBefore time.Time `json:"erased_before"` // events recorded before this are discarded
}
