package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
		//lint:ignore SA5000 a panic that has nothing to do with the file
		m["boom"]++
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

// Where an open file cannot be renamed (Windows), a damaged file is copied
// aside and emptied instead.
func TestCorruptFileCopiedAsideWhenRenameFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"rejected at open", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"panic in transaction", func(t *testing.T, path string) {
			q, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if err := q.Append(context.Background(), Record{ID: fmt.Sprint("old-", i), Data: make([]byte, 1000)}); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m := b[16:] // meta page 0, after the page header
			if m1 := b[4096+16:]; binary.LittleEndian.Uint64(m1[48:]) > binary.LittleEndian.Uint64(m[48:]) {
				m = m1
			}
			free, pgid := binary.LittleEndian.Uint64(m[32:]), binary.LittleEndian.Uint64(m[40:])
			for p := uint64(2); p < pgid; p++ {
				if p != free {
					copy(b[p*4096:(p+1)*4096], bytes.Repeat([]byte{0xA5}, 4096))
				}
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "queue.db")
			tc.damage(t, path)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			q, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			q.rename = func(string, string) error { return errors.New("file in use") }
			if err := q.Append(ctx, Record{ID: "fresh", Data: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			if n, err := q.Len(ctx); err != nil || n != 1 {
				t.Fatalf("Len = %d, %v; want 1", n, err)
			}
			if spooled := q.spoolLen(); spooled != 0 {
				t.Fatalf("%d events went to the spool", spooled)
			}
			moved, _ := filepath.Glob(path + ".corrupt-*")
			if len(moved) != 1 {
				t.Fatalf("moved-aside files: %v", moved)
			}
			if b, _ := os.ReadFile(moved[0]); !bytes.Equal(b, damaged) {
				t.Fatalf("moved-aside copy holds %d bytes, want the %d damaged ones", len(b), len(damaged))
			}
		})
	}
}
