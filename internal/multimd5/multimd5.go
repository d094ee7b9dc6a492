// Package multimd5 computes the MD5 digests of concurrent streams. S3 makes
// the MD5 of a body its ETag, so every byte a client stores is hashed; on
// one core crypto/md5 runs at under 1 GB/s and is the largest single cost
// of a large PUT. When enough streams run at once, their blocks are hashed
// together, one stream per SIMD lane (github.com/minio/md5-simd, up to 16
// lanes with AVX-512), which does the same work for a fraction of the CPU.
// Lanes pay for themselves only when most of them are busy: the 16-lane
// kernel costs the same with 4 streams in it as with 16, and all streams
// wait on the one goroutine that runs it. Below minLanes concurrent streams
// a Pool hands out crypto/md5 running on a goroutine per stream instead,
// which hashes in parallel with the rest of the stream's work.
package multimd5

import (
	"hash"
	"sync"
	"time"

	md5simd "github.com/minio/md5-simd"
)

// Hash is an MD5 hash.Hash that must be closed when done with, after its
// last Sum.
type Hash interface {
	hash.Hash
	Close()
}

// minLanes is how many streams must be hashing, counting the new one, for
// it to go to the lanes. Measured on a 2-core AVX-512 machine: at 4 streams
// of 64 MiB the lanes cost as much CPU per byte as crypto/md5 (750 MB/s a
// core) and held every upload waiting on the lanes' goroutine most of the
// time (bench/RESULTS.md, session of 2026-12-03 afternoon).
const minLanes = 8

// idleClose is how long the lanes' server outlives its last stream, so that
// back-to-back uploads do not start and stop it each time.
const idleClose = 10 * time.Second

// A Pool hands out MD5 hashes. Its zero value is not usable; call New. A
// Pool holds no goroutine while none of its lane hashes is in use (after a
// grace period), so it needs no Close.
type Pool struct {
	mu     sync.Mutex
	active int            // hashes handed out and not yet closed
	srv    md5simd.Server // started on demand
	lanes  int            // hashes open on srv
	idle   *time.Timer    // stops srv once lanes has stayed 0

	chunks sync.Pool // *[]byte of asyncChunk, for asyncHash
}

// New returns an empty Pool.
func New() *Pool { return &Pool{} }

// New returns a new MD5 hash.
func (p *Pool) New() Hash {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active++
	if p.active < minLanes {
		return newAsync(p)
	}
	if p.srv == nil {
		p.srv = md5simd.NewServer()
	}
	if p.idle != nil {
		p.idle.Stop()
		p.idle = nil
	}
	p.lanes++
	return &laneHash{Hasher: p.srv.NewHash(), p: p}
}

func (p *Pool) chunk() []byte {
	if b, ok := p.chunks.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, asyncChunk)
}

func (p *Pool) putChunk(b []byte) {
	b = b[:cap(b)]
	p.chunks.Put(&b)
}

func (p *Pool) done(lane bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active--
	if !lane {
		return
	}
	p.lanes--
	if p.lanes > 0 {
		return
	}
	srv := p.srv
	var t *time.Timer
	t = time.AfterFunc(idleClose, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		// A hash opened meanwhile stopped this timer, or replaced it.
		if p.idle != t || p.lanes > 0 || p.srv != srv {
			return
		}
		p.srv, p.idle = nil, nil
		srv.Close()
	})
	p.idle = t
}

// laneHash is a hash on the lanes.
type laneHash struct {
	md5simd.Hasher
	p      *Pool
	closed bool
}

func (h *laneHash) Close() {
	if h.closed {
		return
	}
	h.closed = true
	h.Hasher.Close()
	h.p.done(true)
}
