package erasure

import (
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// The caches below are keyed by layout parameters. A process uses a handful
// of layouts (one per storage class), so they stay small; every value in them
// is safe for concurrent use.
var (
	encoders    sync.Map // [2]int{K, M} -> reedsolomon.Encoder
	stripePools sync.Map // Layout -> *sync.Pool of *stripe
	blockPools  sync.Map // block size -> *sync.Pool of *[]byte
)

// encoderFor returns the shared encoder for k+m. Building one inverts
// matrices, so it is done once per (k, m).
//
// The encoder works on the calling goroutine. Left to itself it splits a
// stripe across goroutines and waits for them; with a stripe encoded in
// about 100µs and several streams keeping the cores busy, goroutine
// samples of a 4-stream PUT found the uploads waiting on those splits a
// fifth of the time, for no gain in CPU.
func encoderFor(k, m int) (reedsolomon.Encoder, error) {
	key := [2]int{k, m}
	if e, ok := encoders.Load(key); ok {
		return e.(reedsolomon.Encoder), nil
	}
	e, err := reedsolomon.New(k, m, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return nil, fmt.Errorf("erasure: new %d+%d encoder: %w", k, m, err)
	}
	actual, _ := encoders.LoadOrStore(key, e)
	return actual.(reedsolomon.Encoder), nil
}

// stripePool returns the pool of Writer stripes for l: one contiguous buffer
// of (K+M)*BlockSize bytes each, so a stripe's data is one slice that Write
// and ReadFrom fill directly.
func stripePool(l Layout) *sync.Pool {
	if p, ok := stripePools.Load(l); ok {
		return p.(*sync.Pool)
	}
	p := &sync.Pool{New: func() any {
		s := &stripe{
			mem:   make([]byte, (l.K+l.M)*l.BlockSize),
			batch: batch{blocks: make([][]byte, l.K+l.M)},
		}
		s.done = func() { s.home.put(s) }
		return s
	}}
	actual, _ := stripePools.LoadOrStore(l, p)
	return actual.(*sync.Pool)
}

// A freeList holds one Writer's idle stripes, most recently used on top.
// The stripe released last is the one most likely still in cache, and
// sync.Pool would not hand it back: the lane goroutine that releases it
// often runs on another P, whose private slot the Writer cannot see.
type freeList struct {
	pool *sync.Pool
	mu   sync.Mutex
	idle []*stripe // guarded by mu
}

func (f *freeList) get() *stripe {
	f.mu.Lock()
	if n := len(f.idle); n > 0 {
		s := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return s
	}
	f.mu.Unlock()
	s := f.pool.Get().(*stripe)
	s.home = f
	return s
}

func (f *freeList) put(s *stripe) {
	f.mu.Lock()
	f.idle = append(f.idle, s)
	f.mu.Unlock()
}

// drain returns the idle stripes to the shared pool. The Writer calls it
// once no stripe of its is in flight.
func (f *freeList) drain() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.idle {
		f.pool.Put(s)
		f.idle[i] = nil
	}
	f.idle = f.idle[:0]
}

// blockPool returns the pool of size-byte buffers the Reader reads shard
// blocks into. Pointers avoid an allocation on every Put.
func blockPool(size int) *sync.Pool {
	if p, ok := blockPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p := &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}}
	actual, _ := blockPools.LoadOrStore(size, p)
	return actual.(*sync.Pool)
}
