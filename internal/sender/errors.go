package sender

import "errors"

var (
	// ErrBusy is returned when another sender holds the queue's send lock.
	ErrBusy = errors.New("upload: another sender is running for this queue")

	// ErrUnauthorized is returned when the server refused the write key (401
	// or 403); sending pauses for Config.AuthBlock, the queue is kept.
	ErrUnauthorized = errors.New("upload: the server refused the write key")

	// ErrDeferred is returned when the server was unreachable, failed or asked
	// to slow down; the events stay queued and the next attempt is scheduled.
	ErrDeferred = errors.New("upload: server unavailable; next attempt scheduled")

	// ErrNoEndpoint is returned by New for an empty or unusable endpoint.
	ErrNoEndpoint = errors.New("upload: no usable endpoint")
)
