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
// matrices and sizes work splits, so it is done once per (k, m).
func encoderFor(k, m int) (reedsolomon.Encoder, error) {
	key := [2]int{k, m}
	if e, ok := encoders.Load(key); ok {
		return e.(reedsolomon.Encoder), nil
	}
	e, err := reedsolomon.New(k, m)
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
	p := new(sync.Pool)
	p.New = func() any {
		s := &stripe{
			mem: make([]byte, (l.K+l.M)*l.BlockSize),
			batch: batch{
				blocks: make([][]byte, l.K+l.M),
			},
		}
		s.done = func() { p.Put(s) }
		return s
	}
	actual, _ := stripePools.LoadOrStore(l, p)
	return actual.(*sync.Pool)
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
