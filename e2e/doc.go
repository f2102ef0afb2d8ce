// Package e2e holds end-to-end tests of the whole path: example tools built
// and run as real processes, recording events that their detached senders
// deliver to a real tk-server on a real PostgreSQL.
package e2e
