package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A panic inside a transaction on a healthy file is recovered and returned
// as an error; the file, which reads through cleanly, is kept.
func TestPanicOnHealthyFileKeepsIt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, Record{ID: "kept", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	err = q.do(ctx, true, func(*bolt.Tx) error {
		var m map[string]int
		m["boom"]++ // a panic that has nothing to do with the file
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("do = %v, want a recovered panic", err)
	}
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 0 {
		t.Fatalf("healthy file moved aside: %v", moved)
	}
	n, err := q.Len(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Len = %d, %v; want 1", n, err)
	}
}

func TestUnreadableFileMovedAside(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	if err := os.WriteFile(path, []byte("secret"), 0o000); err != nil {
		t.Fatal(err)
	}
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, Record{ID: "a", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 1 {
		t.Fatalf("moved-aside files: %v", moved)
	}
}

// If bbolt is left holding its own mutex after a panic, closing the file
// would block forever; the operation still returns and the file lock is
// released.
func TestPanicWithStuckDBDoesNotHang(t *testing.T) {
	ctx := context.Background()
	q, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(ctx, Record{ID: "kept", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(release) })
	done := make(chan error, 1)
	go func() {
		done <- q.do(ctx, false, func(tx *bolt.Tx) error {
			db := tx.DB()
			go func() {
				wtx, err := db.Begin(true) // holds bbolt's writer mutex
				close(stuck)
				if err == nil {
					<-release
					_ = wtx.Rollback()
				}
			}()
			<-stuck
			panic("boom")
		})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "panic") {
			t.Fatalf("do = %v, want a recovered panic", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("operation hung after a panic")
	}
	// The file lock was released: the queue works and still has its event.
	if err := q.Append(ctx, Record{ID: "next", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2", n, err)
	}
	if spooled := q.spoolLen(); spooled != 0 {
		t.Fatalf("%d events went to the spool: the lock was not released", spooled)
	}
}
