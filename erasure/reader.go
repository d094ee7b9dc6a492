package erasure

import (
	"context"
	"fmt"
	"io"
)

// Reader reads a byte range of a segment from its shards.
//
// In the healthy case it opens only the data shards the range touches, each
// once, for exactly the bytes it needs, and reads them in parallel a few
// stripes ahead. When a shard fails (cannot be opened, errs, ends early or,
// with ShardTimeout, stalls) the Reader reports it through OnBadShard and,
// from the stripe where it failed, reads enough other shards (other data
// shards first, then parity) to reconstruct the missing bytes. A stripe's
// bytes are returned only once all of them are in hand, so a failure never
// leaves wrong bytes behind.
//
// A Reader is not safe for concurrent use. It must be closed, which stops
// its shard goroutines; Close does not wait for a stream stuck in a Read
// that ignores its context.
type Reader struct {
	f      *fetcher // nil for an empty range
	st     *stripeState
	pieces [][]byte // the current stripe's unread bytes, in order
	order  [][]byte // backing array for pieces
	err    error    // sticky
}

// NewReader returns a Reader for data bytes [off, off+n) of a segment of
// segSize data bytes written with layout l, reading shards through open.
// No shard is opened before the first Read or WriteTo. ctx bounds all of
// the Reader's work.
func NewReader(ctx context.Context, l Layout, segSize, off, n int64, open ShardOpener, opts ReaderOptions) (*Reader, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if segSize < 0 || off < 0 || n < 0 || off > segSize || n > segSize-off {
		return nil, fmt.Errorf("%w: bytes [%d,+%d) of a %d-byte segment", ErrRange, off, n, segSize)
	}
	if open == nil {
		return nil, fmt.Errorf("erasure: nil ShardOpener")
	}
	if n == 0 {
		return &Reader{err: io.EOF}, nil
	}
	f, err := newFetcher(ctx, l, segSize, off, off+n, nil, open, opts)
	if err != nil {
		return nil, err
	}
	return &Reader{f: f, order: make([][]byte, 0, l.K)}, nil
}

// Read reads up to len(p) bytes of the range.
func (r *Reader) Read(p []byte) (int, error) {
	if len(r.pieces) == 0 {
		if err := r.advance(); err != nil {
			return 0, err
		}
	}
	n := 0
	for n < len(p) && len(r.pieces) > 0 {
		c := copy(p[n:], r.pieces[0])
		n += c
		r.consume(c)
	}
	return n, nil
}

// WriteTo writes the rest of the range to w straight from the Reader's
// buffers. It is what io.Copy uses.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(r.pieces) > 0 {
			n, err := w.Write(r.pieces[0])
			total += int64(n)
			r.consume(n)
			if err != nil {
				return total, err
			}
			if n == 0 {
				return total, io.ErrShortWrite
			}
		}
		if err := r.advance(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
	}
}

// Close stops all reading and releases the Reader's buffers.
func (r *Reader) Close() error {
	if r.err == ErrClosed {
		return nil
	}
	r.err = ErrClosed
	r.pieces = nil
	if r.f != nil {
		r.f.close()
	}
	return nil
}

func (r *Reader) consume(n int) {
	r.pieces[0] = r.pieces[0][n:]
	if len(r.pieces[0]) == 0 {
		r.pieces = r.pieces[1:]
	}
}

// advance releases the current stripe and assembles the next.
func (r *Reader) advance() error {
	if r.err != nil {
		return r.err
	}
	if r.st != nil {
		r.f.release(r.st)
		r.st = nil
	}
	st, err := r.f.nextStripe()
	if err != nil {
		r.err = err
		return err
	}
	r.st = st
	r.pieces = r.order[:0]
	for i := range r.f.l.K {
		if len(st.pieces[i]) > 0 {
			r.pieces = append(r.pieces, st.pieces[i])
		}
	}
	return nil
}
