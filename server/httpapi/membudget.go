package httpapi

import (
	"io"
	"sync"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// Request bodies are held within one server-wide budget of bytes, so that
// no mix of requests (gzip bombs, the largest valid batches, many at once)
// can make the server's memory grow past it: a request whose body would
// need more than is left is refused with 503 and Retry-After at once,
// without waiting.
const (
	// DefaultDecodeMemory is the default budget.
	DefaultDecodeMemory = 48 << 20
	// smallBody is what any request may take of the whole budget. Beyond
	// it, a request may only take what leaves decodeReserve free, so that
	// large bodies can never take the last of the budget from ordinary
	// requests (the SDK's are well under it).
	smallBody = 256 << 10
	// gzipState is what the state of one gzip reader is counted as.
	gzipState = 64 << 10
	// storeFactor is how many times its body a request holds while its
	// events are stored: the body, and the copies the database driver
	// makes of their strings.
	storeFactor = 3
)

// memBudget counts the bytes that request bodies hold. A nil *memBudget
// allows everything.
type memBudget struct {
	mu      sync.Mutex
	total   int64
	reserve int64 // kept for the first smallBody bytes of requests
	used    int64
}

func newMemBudget(total int64) *memBudget {
	if total < 0 {
		return nil
	}
	return &memBudget{total: total, reserve: max(total/6, 2*smallBody)}
}

// take takes n more bytes for a request that holds held bytes; it reports
// false, taking nothing, when the budget cannot spare them.
func (b *memBudget) take(held, n int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.total
	if held+n > smallBody {
		limit -= b.reserve
	}
	if b.used+n > limit {
		return false
	}
	b.used += n
	return true
}

func (b *memBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes held now.
func (b *memBudget) inUse() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// errNoMemory is a body that the budget cannot hold now.
var errNoMemory = &server.Error{Kind: server.KindUnavailable, Message: "the server is busy, retry later"}

// claim is what one request holds of the budget.
type claim struct {
	budget *memBudget
	held   int64
}

// grow takes n more bytes.
func (c *claim) grow(n int64) bool {
	if !c.budget.take(c.held, n) {
		return false
	}
	c.held += n
	return true
}

// shrink gives n bytes back.
func (c *claim) shrink(n int64) {
	c.budget.release(n)
	c.held -= n
}

// done gives everything back.
func (c *claim) done() { c.shrink(c.held) }

// bufs holds body buffers of at most maxPooledBody bytes for reuse, so that
// small bodies, the usual case, allocate nothing.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// maxPooledBody is the largest body buffer kept for reuse; larger ones are
// left to the garbage collector so that one big request does not pin memory.
const maxPooledBody = 256 << 10

// readLimited reads src to its end into a buffer held by c, at most limit
// bytes plus one (so that the caller sees that src was longer). It starts
// with room for hint bytes and grows by doubling, holding the old and the
// new buffer while it copies. It fails with errNoMemory when c cannot
// grow. The buffer is to be given back with putBuffer.
func readLimited(src io.Reader, hint, limit int, c *claim) (*[]byte, error) {
	var bp *[]byte
	if hint <= maxPooledBody {
		bp = bufs.Get().(*[]byte)
		*bp = (*bp)[:0]
	} else {
		b := make([]byte, 0, min(hint, limit)+1)
		bp = &b
	}
	if !c.grow(int64(cap(*bp))) {
		putBuffer(bp)
		return nil, errNoMemory
	}
	for {
		b := *bp
		if len(b) == cap(b) {
			if len(b) > limit {
				return bp, nil
			}
			n := min(max(2*cap(b), 32<<10), limit+1)
			if !c.grow(int64(n)) {
				putBuffer(bp)
				return nil, errNoMemory
			}
			nb := make([]byte, len(b), n)
			copy(nb, b)
			c.shrink(int64(cap(b)))
			putBuffer(bp)
			bp = &nb
			b = nb
		}
		n, err := src.Read(b[len(b):cap(b)])
		*bp = b[:len(b)+n]
		if err == io.EOF {
			return bp, nil
		}
		if err != nil {
			return bp, err
		}
	}
}

// putBuffer keeps a small buffer for reuse; nothing may refer to its bytes
// afterwards.
func putBuffer(bp *[]byte) {
	if bp != nil && cap(*bp) <= maxPooledBody {
		bufs.Put(bp)
	}
}
