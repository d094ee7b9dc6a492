package erasure

import (
	"fmt"
	"io"

	"github.com/klauspost/reedsolomon"
)

// WriterOptions tunes a Writer.
type WriterOptions struct {
	// MaxFailures is how many shard writers may fail before the Writer
	// itself fails with ErrTooManyFailures. The zero value means M, the
	// most the code can survive; a negative value means none may fail.
	// Values above M are rejected: with more than M shards missing the
	// data could not be read back.
	MaxFailures int
}

// A stripe is a Writer's buffer for one stripe: K data blocks followed by M
// parity blocks in one contiguous allocation. It goes back to the Writer's
// free list when every shard lane is done with it, and to the Layout's pool
// when the Writer closes.
type stripe struct {
	batch
	mem  []byte
	home *freeList // where done returns it
}

// Writer stripes the data written to it over K+M shard writers: every K*B
// bytes are encoded into K data and M parity blocks, and block i is
// appended to shard i. Segment boundaries are the caller's: write one
// segment, Close, and start a new Writer for the next.
//
// Stripes are encoded in the calling goroutine and written to the shards by
// one goroutine per shard, with a few stripes in flight, so a slow shard
// writer does not hold up the others until it is several stripes behind.
// A shard writer must unblock by itself when the upload it feeds is
// abandoned (an io.Pipe whose reader is closed does). A Writer is not safe
// for concurrent use, and it must be closed, even after an error: Close
// stops its shard goroutines.
type Writer struct {
	l       Layout
	enc     reedsolomon.Encoder
	free    freeList
	out     *fanout
	cur     *stripe // being filled; nil between stripes
	fill    int     // data bytes in cur
	written int64
	err     error // sticky
	closed  bool
}

// NewWriter returns a Writer that stripes data over shards, which must hold
// exactly K+M writers: shards[i] receives shard i. The Writer does not close
// them.
func NewWriter(l Layout, shards []io.Writer, opts WriterOptions) (*Writer, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if len(shards) != l.K+l.M {
		return nil, fmt.Errorf("erasure: %d shard writers for layout %v, want %d", len(shards), l, l.K+l.M)
	}
	for i, w := range shards {
		if w == nil {
			return nil, fmt.Errorf("erasure: shard writer %d is nil", i)
		}
	}
	maxFail := opts.MaxFailures
	switch {
	case maxFail == 0:
		maxFail = l.M
	case maxFail < 0:
		maxFail = 0
	case maxFail > l.M:
		return nil, fmt.Errorf("erasure: MaxFailures %d exceeds %d parity shards", maxFail, l.M)
	}
	enc, err := encoderFor(l.K, l.M)
	if err != nil {
		return nil, err
	}
	return &Writer{
		l:    l,
		enc:  enc,
		free: freeList{pool: stripePool(l), idle: make([]*stripe, 0, laneDepth+2)},
		out:  newFanout(shards, maxFail),
	}, nil
}

// Write stripes p. It returns an error wrapping ErrTooManyFailures once more
// shard writers have failed than allowed; n is then how much of p the
// Writer accepted.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	ss := int(w.l.StripeSize())
	n := 0
	for len(p) > 0 {
		if w.cur == nil {
			w.cur = w.free.get()
		}
		c := copy(w.cur.mem[w.fill:ss], p)
		w.fill += c
		w.written += int64(c)
		n += c
		p = p[c:]
		if w.fill == ss {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom stripes everything r delivers until io.EOF, reading straight into
// the stripe buffers. Errors from r are returned as they are.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	ss := int(w.l.StripeSize())
	var total int64
	for {
		if w.cur == nil {
			w.cur = w.free.get()
		}
		n, err := r.Read(w.cur.mem[w.fill:ss])
		if n < 0 || n > ss-w.fill {
			return total, fmt.Errorf("erasure: reader returned invalid count %d", n)
		}
		w.fill += n
		w.written += int64(n)
		total += int64(n)
		if w.fill == ss {
			if ferr := w.flush(); ferr != nil {
				return total, ferr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close encodes the final partial stripe, if any, and waits until every
// block has been written to (or has failed on) its shard writer. It does not
// close the shard writers. It returns an error wrapping ErrTooManyFailures
// if more shard writers failed than allowed; failures within the allowance
// are reported by ShardErrors only.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil && w.fill > 0 {
		w.flush() // leaves any failure in w.err
	} else if w.cur != nil {
		w.free.put(w.cur)
		w.cur = nil
	}
	w.out.close()
	w.free.drain()
	if w.err == nil && w.out.tooMany() {
		w.err = w.out.failure()
	}
	return w.err
}

// ShardErrors reports, by shard index, why a shard writer failed, or nil
// where every block written so far reached it. After Close, a nil entry
// means the shard is complete.
func (w *Writer) ShardErrors() []error { return w.out.shardErrors() }

// Written is the number of data bytes the Writer has accepted.
func (w *Writer) Written() int64 { return w.written }

func (w *Writer) check() error {
	if w.closed {
		return ErrClosed
	}
	if w.err == nil && w.out.tooMany() {
		w.err = w.out.failure()
	}
	return w.err
}

// flush encodes the current stripe and hands it to the shard lanes.
func (w *Writer) flush() error {
	s, l := w.cur, w.l
	w.cur = nil
	// A full stripe has blocks of BlockSize; the final partial one of rem
	// bytes has blocks of ceil(rem/K), so its data blocks are the first
	// K*ceil(rem/K) bytes of mem, zero-padded.
	bs := l.BlockSize
	if w.fill < int(l.StripeSize()) {
		bs = (w.fill + l.K - 1) / l.K
		clear(s.mem[w.fill : l.K*bs])
	}
	w.fill = 0
	for i := range l.K {
		s.blocks[i] = s.mem[i*bs : (i+1)*bs]
	}
	for i := l.K; i < l.K+l.M; i++ {
		s.blocks[i] = s.mem[i*l.BlockSize : i*l.BlockSize+bs]
	}
	if l.M > 0 {
		if err := w.enc.Encode(s.blocks); err != nil {
			w.free.put(s)
			w.err = fmt.Errorf("erasure: encode stripe: %w", err)
			return w.err
		}
	}
	w.out.send(&s.batch)
	return w.check()
}
