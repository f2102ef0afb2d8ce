package httpapi

import (
	"bytes"
	"io"
	"testing"
)

// The budget keeps its reserve for the first smallBody bytes of requests:
// large bodies stop short of it, small ones may use it.
func TestMemBudgetReserve(t *testing.T) {
	b := newMemBudget(12 << 20)
	large := claim{budget: b}
	for large.grow(1 << 20) {
	}
	if free := b.total - b.used; free < b.reserve || free >= b.reserve+1<<20 {
		t.Fatalf("a large body left %d bytes, want the reserve %d", free, b.reserve)
	}
	var small []claim
	for {
		c := claim{budget: b}
		if !c.grow(smallBody) {
			break
		}
		small = append(small, c)
	}
	if want := int(b.reserve / smallBody); len(small) != want {
		t.Fatalf("%d small bodies fit beside it, want %d", len(small), want)
	}
	if (&claim{budget: b}).grow(1) {
		t.Fatal("the budget gave more than it has")
	}
	large.done()
	for i := range small {
		small[i].done()
	}
	if b.used != 0 {
		t.Fatalf("%d bytes still held", b.used)
	}
}

// readLimited holds what its buffers take, the old and the new one while
// it grows, and stops at the limit plus one byte.
func TestReadLimited(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3<<20)
	b := newMemBudget(64 << 20)
	c := claim{budget: b}
	bp, err := readLimited(bytes.NewReader(data), 0, 8<<20, &c)
	if err != nil || !bytes.Equal(*bp, data) {
		t.Fatalf("read %d bytes, %v", len(*bp), err)
	}
	if c.held != int64(cap(*bp)) || b.used != c.held {
		t.Fatalf("holds %d (budget %d) for a buffer of %d", c.held, b.used, cap(*bp))
	}
	c.done()

	c = claim{budget: b}
	bp, err = readLimited(io.MultiReader(bytes.NewReader(data), bytes.NewReader(data)), 0, 4<<20, &c)
	if err != nil || len(*bp) != 4<<20+1 {
		t.Fatalf("over the limit: read %d bytes, %v", len(*bp), err)
	}
	c.done()

	// A budget too small for the body: refused, nothing held.
	small := newMemBudget(2 << 20)
	c = claim{budget: small}
	if _, err := readLimited(bytes.NewReader(data), 0, 8<<20, &c); err != errNoMemory {
		t.Fatalf("got %v, want errNoMemory", err)
	}
	c.done()
	if small.used != 0 {
		t.Fatalf("%d bytes held after the refusal", small.used)
	}
}
