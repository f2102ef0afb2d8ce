package core_test

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// holdLock opens the queue's bbolt file, holding its lock as another process
// would, until the returned function is called.
func holdLock(t testing.TB, path string) func() {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return func() { db.Close() }
}
