package client

import (
	"errors"
	"io"
	"sync"
)

// A handoff carries one shard's blocks from the erasure writer to the
// shard's upload. Like io.Pipe, Write blocks until the upload has taken all
// of p; unlike it, the upload's body can take p with WriteTo and write it
// to the connection from where it lies, in the stripe buffer, instead of
// copying it into a buffer of its own first. That is one copy fewer of
// every byte the cluster stores, parity included.
type handoff struct {
	blocks chan []byte
	acks   chan int // bytes of the block taken, once written out

	once [2]sync.Once
	// rdone is closed when the reading side gives up (rerr says why),
	// wdone when the writer is done (werr: nil for the end of the data).
	rdone, wdone chan struct{}
	rerr, werr   error

	pending []byte // the part of a block a short Read left over
	size    int    // the length of the block pending is part of
}

var errHandoffClosed = errors.New("client: write to a closed handoff")

func newHandoff() *handoff {
	return &handoff{
		blocks: make(chan []byte),
		acks:   make(chan int),
		rdone:  make(chan struct{}),
		wdone:  make(chan struct{}),
	}
}

// Write hands p to the reader and waits until it has been written out.
func (h *handoff) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	select {
	case h.blocks <- p:
	case <-h.rdone:
		return 0, h.rerr
	case <-h.wdone:
		return 0, errHandoffClosed
	}
	// The reader answers for every block it takes, unless its side is
	// closed, which happens only once it has stopped using p.
	select {
	case n := <-h.acks:
		return n, nil
	case <-h.rdone:
		return 0, h.rerr
	}
}

func (h *handoff) answer(n int) {
	select {
	case h.acks <- n:
	case <-h.rdone:
	}
}

// CloseWrite ends the data: the reader sees err, or io.EOF if err is nil.
func (h *handoff) CloseWrite(err error) {
	h.once[1].Do(func() {
		h.werr = err
		close(h.wdone)
	})
}

// CloseRead makes every Write, pending or later, fail with err. The
// reading side must call it once it stops reading, whatever the reason:
// a Write whose block failed to go out waits for it.
func (h *handoff) CloseRead(err error) {
	h.once[0].Do(func() {
		h.rerr = err
		close(h.rdone)
	})
}

// next waits for the writer's next block; ok is false at the end of the
// data, with err nil or the writer's error.
func (h *handoff) next() (p []byte, ok bool, err error) {
	select {
	case p = <-h.blocks:
		return p, true, nil
	case <-h.wdone:
		// A block sent before the close still counts.
		select {
		case p = <-h.blocks:
			return p, true, nil
		default:
		}
		if h.werr != nil {
			return nil, false, h.werr
		}
		return nil, false, io.EOF
	}
}

func (h *handoff) Read(p []byte) (int, error) {
	if len(h.pending) == 0 {
		b, ok, err := h.next()
		if !ok {
			return 0, err
		}
		h.pending, h.size = b, len(b)
	}
	n := copy(p, h.pending)
	h.pending = h.pending[n:]
	if len(h.pending) == 0 {
		h.pending = nil
		h.answer(h.size)
	}
	return n, nil
}

// ShardBody marks a handoff as a body that chunkserver.Client.Put may
// send with WriteTo.
func (h *handoff) ShardBody() {}

// WriteTo writes every block to w as it comes, until the writer is done.
func (h *handoff) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(h.pending) > 0 {
		// Only a mix of Read and WriteTo gets here.
		n, err := w.Write(h.pending)
		total += int64(n)
		h.pending = nil
		if err != nil {
			return total, err // see below
		}
		h.answer(h.size)
	}
	for {
		b, ok, err := h.next()
		if !ok {
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			// The writer's Write is left waiting for CloseRead, whose
			// reason (the server's answer, typically: disk full) says
			// more than the connection's error.
			return total, err
		}
		h.answer(n)
	}
}
