package bench

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// Generated bodies are cut from one pool of random bytes: block i of a body
// is pool[a:] XOR pool[b:] for two offsets drawn from the body's seed and i.
// XOR of two different positions of a random pool is as random as the pool,
// so bodies do not compress, differ between objects and between the blocks
// of one object, and cost one vectorized XOR per byte instead of a PRNG
// call per word (see BenchmarkGenerator).
const (
	poolSpan  = 1 << 20  // offsets are drawn from [0, poolSpan)
	blockSize = 64 << 10 // bytes generated from one pair of offsets
)

// Generator produces object bodies. It is immutable once made and safe for
// concurrent use; the Bodies it makes are not.
type Generator struct {
	pool []byte
}

// NewGenerator returns a generator whose bodies are a function of seed and
// of each body's own seed.
func NewGenerator(seed uint64) *Generator {
	pool := make([]byte, poolSpan+blockSize)
	var key [32]byte
	for i := range 4 {
		k := splitmix(seed + uint64(i))
		for j := range 8 {
			key[i*8+j] = byte(k >> (8 * j))
		}
	}
	rand.NewChaCha8(key).Read(pool)
	return &Generator{pool: pool}
}

// Body returns a body of size bytes determined by seed.
func (g *Generator) Body(seed uint64, size int64) *Body {
	b := &Body{g: g}
	b.Reset(seed, size)
	return b
}

// Body is a generated object body: an io.Reader that can also seek, as SDKs
// rewind bodies to retry or to hash them.
type Body struct {
	g         *Generator
	seed      uint64
	size, off int64
	// The offsets of the current block, cached because most reads stay in
	// one block.
	block int64
	a, b  int
}

// Reset makes b the body of the given seed and size, positioned at its
// start, so a worker can reuse one Body for every request.
func (b *Body) Reset(seed uint64, size int64) {
	b.seed, b.size, b.off, b.block = seed, size, 0, -1
}

// Size is the body's length.
func (b *Body) Size() int64 { return b.size }

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	n := 0
	for len(p) > 0 && b.off < b.size {
		m := b.fill(p)
		p = p[m:]
		n += m
	}
	return n, nil
}

// fill generates into p from the current offset to at most the end of the
// current block, and returns how many bytes it wrote.
func (b *Body) fill(p []byte) int {
	blk, in := b.off/blockSize, int(b.off%blockSize)
	if blk != b.block {
		k := splitmix(b.seed ^ splitmix(uint64(blk)))
		b.a, b.b = int(k%poolSpan), int((k>>32)%poolSpan)
		if b.a == b.b { // XOR of a region with itself is all zeros
			b.b = (b.b + 1) % poolSpan
		}
		b.block = blk
	}
	m := min(len(p), blockSize-in, int(min(b.size-b.off, blockSize)))
	subtle.XORBytes(p[:m], b.g.pool[b.a+in:b.a+in+m], b.g.pool[b.b+in:b.b+in+m])
	b.off += int64(m)
	return m
}

var errSeek = errors.New("seek outside the body")

// Seek implements io.Seeker.
func (b *Body) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	default:
		return b.off, fmt.Errorf("seek whence %d: %w", whence, errSeek)
	}
	if offset < 0 {
		return b.off, fmt.Errorf("seek to %d: %w", offset, errSeek)
	}
	b.off = offset
	return offset, nil
}

// splitmix is the SplitMix64 finalizer: a cheap bijective mix of a counter
// into a well-distributed 64-bit value.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
