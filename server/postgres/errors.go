package postgres

import "errors"

// ErrExists is returned when a project with the same name exists.
var ErrExists = errors.New("already exists")

// ErrNotFound is returned when a project or key does not exist.
var ErrNotFound = errors.New("not found")
