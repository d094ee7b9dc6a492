package mount

import (
	"io"
	"sync"
)

// bufPipe is io.Pipe with a bounded queue between the two sides, so that
// the kernel's next write and the upload of the previous ones overlap: with
// a synchronous pipe every write would wait until the erasure encoder had
// taken all of it. The writer's bytes are copied (FUSE reuses its request
// buffer once Write returns) into pooled buffers; at most depth writes wait
// in the queue.
type bufPipe struct {
	ch     chan []byte
	cur    []byte // what the reader has left of the current write
	buf    []byte // the pooled buffer cur is part of
	werr   error  // set before ch is closed: nil means EOF
	closed sync.Once

	once sync.Once
	done chan struct{} // closed when the reader gives up
	rerr error         // why, set before done is closed
}

func newBufPipe(depth int) *bufPipe {
	return &bufPipe{ch: make(chan []byte, depth), done: make(chan struct{})}
}

// Write queues a copy of p; it waits only while the queue is full.
func (p *bufPipe) Write(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, p.rerr
	default:
	}
	c := getBuf(len(b))
	copy(c, b)
	select {
	case p.ch <- c:
		return len(b), nil
	case <-p.done:
		return 0, p.rerr
	}
}

// Close ends the stream: the reader gets what is queued, then EOF.
func (p *bufPipe) Close() error { return p.CloseWithError(nil) }

// CloseWithError ends the stream; the reader gets err (nil: EOF) after
// what is queued. Only the writer calls it; calls after the first do
// nothing.
func (p *bufPipe) CloseWithError(err error) error {
	p.closed.Do(func() {
		p.werr = err
		close(p.ch)
	})
	return nil
}

// Read implements io.Reader for the upload.
func (p *bufPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.buf != nil {
			putBuf(p.buf)
			p.buf = nil
		}
		c, ok := <-p.ch
		if !ok {
			if p.werr != nil {
				return 0, p.werr
			}
			return 0, io.EOF
		}
		p.cur, p.buf = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// stop is the reader's side giving up: writers blocked or to come get err.
func (p *bufPipe) stop(err error) {
	p.once.Do(func() {
		p.rerr = err
		close(p.done)
	})
}

// bufSize is the size of pooled buffers: the largest FUSE write or read
// (MountOptions.MaxWrite), and the read-ahead's piece size.
const bufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// getBuf returns a buffer of n bytes, pooled when n is at most bufSize. Its
// contents are garbage.
func getBuf(n int) []byte {
	if n > bufSize {
		return make([]byte, n)
	}
	return bufPool.Get().(*[bufSize]byte)[:n]
}

// putBuf returns a buffer from getBuf to the pool; nothing may use it
// afterwards.
func putBuf(b []byte) {
	if cap(b) == bufSize {
		bufPool.Put((*[bufSize]byte)(b[:bufSize]))
	}
}
