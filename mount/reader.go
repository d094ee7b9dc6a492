package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// Read-ahead: a sequential reader gets a background stream that fetches
// raChunk-sized pieces up to raDepth ahead of what the kernel asked for;
// chunks already handed out are kept a little while, because the kernel
// sends concurrent reads that arrive slightly out of order.
const (
	raChunk  = 1 << 20
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

// ReadAt reads up to len(p) bytes at off; fewer only at the end of the object.
func (r *fileReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= r.obj.Size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), r.obj.Size-off)]
	if len(r.obj.Segments) == 0 {
		if int64(len(r.obj.Inline)) != r.obj.Size {
			return 0, fmt.Errorf("read %s: record holds %d of %d bytes", r.obj.Key, len(r.obj.Inline), r.obj.Size)
		}
		return copy(p, r.obj.Inline[off:]), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ra != nil {
		if n, ok, err := r.ra.readAt(ctx, p, off); ok {
			r.last = off + int64(n)
			return n, err
		}
	}
	if off == r.last || off == 0 {
		if r.ra != nil {
			r.ra.close()
		}
		r.ra = startReadAhead(r.cl, r.obj, off)
		n, _, err := r.ra.readAt(ctx, p, off)
		r.last = off + int64(n)
		return n, err
	}
	// A random read: fetch exactly this range.
	rd, err := r.cl.Open(ctx, r.obj, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	n, err := io.ReadFull(rd, p)
	r.last = off + int64(n)
	return n, err
}

func (r *fileReader) close() {
	r.mu.Lock()
	if r.ra != nil {
		r.ra.close()
		r.ra = nil
	}
	r.mu.Unlock()
}

type raPiece struct {
	off  int64
	data []byte
	err  error
}

// readAhead streams an object from an offset to its end in the background.
type readAhead struct {
	cancel context.CancelFunc
	ch     <-chan raPiece
	kept   []raPiece // handed out or skipped over, oldest first
	start  int64     // offset of the stream's first byte
	next   int64     // offset of the next piece to arrive
	err    error     // the stream's failure, once seen
}

func startReadAhead(cl *client.Client, obj metaapi.Object, off int64) *readAhead {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan raPiece, raDepth)
	go func() {
		defer close(ch)
		rd, err := cl.Open(ctx, obj, off, -1)
		if err != nil {
			ch <- raPiece{off: off, err: err}
			return
		}
		defer rd.Close()
		for pos := off; pos < obj.Size; {
			buf := make([]byte, min(raChunk, obj.Size-pos))
			n, err := io.ReadFull(rd, buf)
			select {
			case ch <- raPiece{off: pos, data: buf[:n], err: err}:
			case <-ctx.Done():
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
// one the stream can serve (behind what it kept, or too far ahead).
func (ra *readAhead) readAt(ctx context.Context, p []byte, off int64) (n int, ok bool, err error) {
	lo := ra.next
	if len(ra.kept) > 0 {
		lo = ra.kept[0].off
	}
	if off < lo || off > ra.next+raMaxGap {
		return 0, false, nil
	}
	for n < len(p) {
		pos := off + int64(n)
		if c := ra.find(pos); c != nil {
			n += copy(p[n:], c.data[pos-c.off:])
			continue
		}
		if pos < ra.next {
			return n, n > 0, nil // dropped already
		}
		if ra.err != nil {
			return n, true, ra.err
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
			if len(c.data) > 0 {
				ra.kept = append(ra.kept, c)
				ra.next = c.off + int64(len(c.data))
				if len(ra.kept) > raKeep {
					ra.kept = ra.kept[1:]
				}
			}
		case <-ctx.Done():
			return n, true, ctx.Err()
		}
	}
	return n, true, nil
}

func (ra *readAhead) find(pos int64) *raPiece {
	for i := range ra.kept {
		c := &ra.kept[i]
		if pos >= c.off && pos < c.off+int64(len(c.data)) {
			return c
		}
	}
	return nil
}

func (ra *readAhead) close() { ra.cancel() }
