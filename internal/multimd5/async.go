package multimd5

import (
	"crypto/md5"
	"hash"
)

// asyncChunk is how much an asyncHash gathers before handing it to its
// goroutine, and asyncDepth how many chunks may wait there: enough to ride
// out a scheduling delay of the hashing goroutine without stalling the
// stream, little enough that 16 concurrent uploads hold a few MiB.
const (
	asyncChunk = 128 << 10
	asyncDepth = 4
)

// asyncHash is crypto/md5 run on a goroutine of its own, fed copies of
// what is written. MD5 is sequential within a stream, so the only way to
// take it off a stream's critical path is to overlap it with the stream's
// other work (reading the body, erasure coding, sending shards); the copy
// costs a small fraction of the hashing it moves. Bodies smaller than one
// chunk are hashed inline and start no goroutine.
type asyncHash struct {
	p      *Pool
	h      hash.Hash
	cur    []byte        // being filled; nil when none
	work   chan []byte   // chunks to hash; nil: a barrier
	free   chan []byte   // hashed chunks, for reuse
	ack    chan struct{} // the worker passed a barrier
	exit   chan struct{} // the worker is gone
	nbuf   int           // chunks taken from the pool
	busy   bool          // chunks were sent since the last barrier
	closed bool
}

func newAsync(p *Pool) *asyncHash { return &asyncHash{p: p, h: md5.New()} }

func (a *asyncHash) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if a.cur == nil {
			a.cur = a.buffer()
		}
		k := copy(a.cur[len(a.cur):cap(a.cur)], b)
		a.cur = a.cur[:len(a.cur)+k]
		b = b[k:]
		if len(a.cur) == cap(a.cur) {
			a.send()
		}
	}
	return n, nil
}

// buffer returns an empty chunk: a new one while fewer than asyncDepth+1
// exist, else one the worker has finished with, which is what bounds how
// far the writer runs ahead.
func (a *asyncHash) buffer() []byte {
	if a.work != nil {
		select {
		case b := <-a.free:
			return b[:0]
		default:
		}
	}
	if a.nbuf <= asyncDepth {
		a.nbuf++
		return a.p.chunk()[:0]
	}
	return (<-a.free)[:0]
}

func (a *asyncHash) send() {
	if a.work == nil {
		a.work = make(chan []byte, asyncDepth)
		a.free = make(chan []byte, asyncDepth+1)
		a.ack = make(chan struct{})
		a.exit = make(chan struct{})
		go a.run()
	}
	a.work <- a.cur
	a.cur = nil
	a.busy = true
}

func (a *asyncHash) run() {
	defer close(a.exit)
	for b := range a.work {
		if b == nil {
			a.ack <- struct{}{}
			continue
		}
		a.h.Write(b)
		a.free <- b
	}
}

// drain brings a.h up to date with everything written.
func (a *asyncHash) drain() {
	if a.busy {
		a.work <- nil
		<-a.ack
		a.busy = false
	}
	if len(a.cur) > 0 {
		a.h.Write(a.cur)
		a.cur = a.cur[:0]
	}
}

func (a *asyncHash) Sum(b []byte) []byte {
	a.drain()
	return a.h.Sum(b)
}

func (a *asyncHash) Reset() {
	a.drain()
	a.h.Reset()
}

func (a *asyncHash) Size() int      { return md5.Size }
func (a *asyncHash) BlockSize() int { return md5.BlockSize }

func (a *asyncHash) Close() {
	if a.closed {
		return
	}
	a.closed = true
	if a.work != nil {
		close(a.work)
		<-a.exit
		for len(a.free) > 0 {
			a.p.putChunk(<-a.free)
		}
	}
	if a.cur != nil {
		a.p.putChunk(a.cur)
	}
	a.cur = nil
	a.p.done(false)
}
