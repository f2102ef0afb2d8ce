package store

import "errors"

var (
	// ErrLocked is returned when the queue file's lock could not be had within Options.LockTimeout.
	ErrLocked = errors.New("store: queue file is locked by another process")

	// ErrInvalidOptions is returned by Open for an empty path or negative limits.
	ErrInvalidOptions = errors.New("store: invalid options")

	// ErrInvalidRecord is returned by Append for a record with an empty or overlong ID; nothing is stored.
	ErrInvalidRecord = errors.New("store: invalid record")

	// ErrTooLarge is returned by Append for a record whose Data alone exceeds Options.MaxBytes; it is dropped and counted.
	ErrTooLarge = errors.New("store: record larger than the queue's byte limit")

	// ErrNotStored is returned by Append when neither the queue file nor the spool could take a record.
	ErrNotStored = errors.New("store: record could not be stored")

	// ErrInvalidKey is returned by GetMeta and PutMeta for an empty key.
	ErrInvalidKey = errors.New("store: invalid meta key")
)
