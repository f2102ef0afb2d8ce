package server

import (
	"errors"
	"fmt"
	"time"
)

// Key errors. [Store.KeyByHash] returns ErrKeyNotFound when no key has the
// hash; [Store.Ingest] returns one of them when the key it was given is no
// longer a valid write key of its project.
var (
	ErrKeyNotFound = errors.New("key not found")
	ErrKeyRevoked  = errors.New("key revoked")
	ErrNotWriteKey = errors.New("not a write key")
)

// Kind classifies an [Error]; each kind maps to one HTTP status.
type Kind int

// Error kinds.
const (
	KindInternal         Kind = iota // 500: a bug
	KindBadRequest                   // 400: the body is not a valid batch
	KindUnauthorized                 // 401: missing or unknown key
	KindForbidden                    // 403: revoked key, or a key of the other kind
	KindTooLarge                     // 413: body or event count over the limits
	KindUnsupportedMedia             // 415: wrong Content-Type or Content-Encoding
	KindRateLimited                  // 429: too many requests for this key
	KindUnavailable                  // 503: the database cannot commit now
	KindNotFound                     // 404: the project has no such thing
)

// Error is an error with a kind, a message safe to show to the client and,
// for 429 and 503, how long the client should wait.
type Error struct {
	Kind       Kind
	Message    string        // shown to the client
	RetryAfter time.Duration // sent as Retry-After when > 0
	Err        error         // the cause, logged, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an [*Error] of kind whose message, shown to the client, is
// formatted as with fmt.Sprintf.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Status is the HTTP status code of an error of this kind.
func (k Kind) Status() int {
	switch k {
	case KindBadRequest:
		return 400
	case KindUnauthorized:
		return 401
	case KindForbidden:
		return 403
	case KindTooLarge:
		return 413
	case KindUnsupportedMedia:
		return 415
	case KindRateLimited:
		return 429
	case KindUnavailable:
		return 503
	case KindNotFound:
		return 404
	default:
		return 500
	}
}
