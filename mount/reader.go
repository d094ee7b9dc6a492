package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// Read-ahead: a sequential reader gets a background stream that fetches
// raChunk-sized pieces up to raDepth ahead of what the kernel asked for;
// chunks already handed out are kept a little while, because the kernel
// sends concurrent reads that arrive slightly out of order.
const (
	raChunk  = bufSize
	raDepth  = 8
	raKeep   = 8
	raMaxGap = 16 << 20 // a read further ahead than this is a seek, not a stream
)

// fileReader reads one version of an object (the record held since open),
// so a file open for reading sees one consistent version even if someone
// replaces it meanwhile.
type fileReader struct {
	cl  *client.Client
	obj metaapi.Object

	mu   sync.Mutex
	ra   *readAhead
	last int64 // where the previous read ended
}

func newFileReader(cl *client.Client, obj metaapi.Object) *fileReader {
	return &fileReader{cl: cl, obj: obj, last: -1}
}

// read reads up to len(p) bytes at off; fewer only at the end of the
// object. The answer is p's bytes, or, when the range lies within one piece
// the read-ahead already holds (or in the record), those bytes themselves,
// without a copy.
func (r *fileReader) read(ctx context.Context, p []byte, off int64) (fuse.ReadResult, error) {
	if off >= r.obj.Size {
		return fuse.ReadResultData(nil), nil
	}
	p = p[:min(int64(len(p)), r.obj.Size-off)]
	if len(r.obj.Segments) == 0 {
		if int64(len(r.obj.Inline)) != r.obj.Size {
			return nil, fmt.Errorf("read %s: record holds %d of %d bytes", r.obj.Key, len(r.obj.Inline), r.obj.Size)
		}
		return fuse.ReadResultData(r.obj.Inline[off : off+int64(len(p))]), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ra != nil {
		if res, n, ok, err := r.ra.readAt(ctx, p, off); ok {
			r.last = off + int64(n)
			return res, err
		}
	}
	if off == r.last || off == 0 {
		if r.ra != nil {
			r.ra.close()
		}
		r.ra = startReadAhead(r.cl, r.obj, off)
		res, n, _, err := r.ra.readAt(ctx, p, off)
		r.last = off + int64(n)
		return res, err
	}
	// A random read: fetch exactly this range.
	rd, err := r.cl.Open(ctx, r.obj, off, int64(len(p)))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	n, err := io.ReadFull(rd, p)
	r.last = off + int64(n)
	return fuse.ReadResultData(p[:n]), err
}

func (r *fileReader) close() {
	r.mu.Lock()
	if r.ra != nil {
		r.ra.close()
		r.ra = nil
	}
	r.mu.Unlock()
}

// raPiece is a piece of the stream, in a pooled buffer that goes back to the
// pool when neither the read-ahead nor a reply to the kernel holds it.
type raPiece struct {
	off  int64
	data []byte
	err  error
	refs atomic.Int32
}

func (c *raPiece) release() {
	if c.refs.Add(-1) == 0 {
		putBuf(c.data)
		c.data = nil
	}
}

// pieceResult answers a read with bytes of a piece; go-fuse calls Done once
// they are sent (if it never does, the buffer is left to the collector).
type pieceResult struct {
	c *raPiece
	b []byte
}

func (r *pieceResult) Bytes([]byte) ([]byte, fuse.Status) { return r.b, fuse.OK }
func (r *pieceResult) Size() int                          { return len(r.b) }
func (r *pieceResult) Done()                              { r.c.release() }

// readAhead streams an object from an offset to its end in the background.
type readAhead struct {
	cancel context.CancelFunc
	ch     <-chan *raPiece
	kept   []*raPiece // handed out or skipped over, oldest first
	start  int64      // offset of the stream's first byte
	next   int64      // offset of the next piece to arrive
	err    error      // the stream's failure, once seen
}

func startReadAhead(cl *client.Client, obj metaapi.Object, off int64) *readAhead {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *raPiece, raDepth)
	go func() {
		defer close(ch)
		rd, err := cl.Open(ctx, obj, off, -1)
		if err != nil {
			ch <- &raPiece{off: off, err: err}
			return
		}
		defer rd.Close()
		for pos := off; pos < obj.Size; {
			c := &raPiece{off: pos, data: getBuf(int(min(raChunk, obj.Size-pos)))}
			c.refs.Store(1)
			n, err := io.ReadFull(rd, c.data)
			c.data, c.err = c.data[:n], err
			select {
			case ch <- c:
			case <-ctx.Done():
				c.release()
				return
			}
			if err != nil {
				return
			}
			pos += int64(n)
		}
	}()
	return &readAhead{cancel: cancel, ch: ch, start: off, next: off}
}

// readAt serves a read from the stream; ok is false when the range is not
// one the stream can serve (behind what it kept, or too far ahead). n is
// how many bytes the answer holds.
func (ra *readAhead) readAt(ctx context.Context, p []byte, off int64) (res fuse.ReadResult, n int, ok bool, err error) {
	lo := ra.next
	if len(ra.kept) > 0 {
		lo = ra.kept[0].off
	}
	if off < lo || off > ra.next+raMaxGap {
		return nil, 0, false, nil
	}
	for n < len(p) {
		pos := off + int64(n)
		if c := ra.find(pos); c != nil {
			if n == 0 && pos+int64(len(p)) <= c.off+int64(len(c.data)) {
				// All of it is in this piece: answer with the piece itself.
				c.refs.Add(1)
				return &pieceResult{c: c, b: c.data[pos-c.off : pos-c.off+int64(len(p))]}, len(p), true, nil
			}
			n += copy(p[n:], c.data[pos-c.off:])
			continue
		}
		if pos < ra.next {
			return fuse.ReadResultData(p[:n]), n, n > 0, nil // dropped already
		}
		if ra.err != nil {
			return fuse.ReadResultData(p[:n]), n, true, ra.err
		}
		select {
		case c, open := <-ra.ch:
			if !open {
				ra.err = io.ErrUnexpectedEOF
				continue
			}
			if c.err != nil && !errors.Is(c.err, io.ErrUnexpectedEOF) && !errors.Is(c.err, io.EOF) || len(c.data) == 0 {
				ra.err = c.err
				if ra.err == nil {
					ra.err = io.ErrUnexpectedEOF
				}
			}
			if len(c.data) == 0 {
				c.release()
				continue
			}
			ra.kept = append(ra.kept, c)
			ra.next = c.off + int64(len(c.data))
			if len(ra.kept) > raKeep {
				ra.kept[0].release()
				ra.kept[0] = nil
				ra.kept = ra.kept[1:]
			}
		case <-ctx.Done():
			return fuse.ReadResultData(p[:n]), n, true, ctx.Err()
		}
	}
	return fuse.ReadResultData(p[:n]), n, true, nil
}

func (ra *readAhead) find(pos int64) *raPiece {
	for _, c := range ra.kept {
		if pos >= c.off && pos < c.off+int64(len(c.data)) {
			return c
		}
	}
	return nil
}

// close stops the stream and gives its pieces back; replies still being
// sent keep theirs until they are.
func (ra *readAhead) close() {
	ra.cancel()
	for _, c := range ra.kept {
		c.release()
	}
	ra.kept = nil
}
