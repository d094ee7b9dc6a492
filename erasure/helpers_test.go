package erasure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/klauspost/reedsolomon"
	"github.com/talusfs/talus/erasure"
)

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// writeSegment stripes data with a Writer, feeding it in random-sized
// pieces through Write, or through ReadFrom, and returns the shards.
func writeSegment(t testing.TB, l erasure.Layout, data []byte, viaReadFrom bool, rng *rand.Rand) [][]byte {
	t.Helper()
	bufs := make([]*bytes.Buffer, l.K+l.M)
	ws := make([]io.Writer, len(bufs))
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	w, err := erasure.NewWriter(l, ws, erasure.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if viaReadFrom {
		n, err := w.ReadFrom(&choppyReader{data: data, rng: rng})
		if err != nil || n != int64(len(data)) {
			t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(data))
		}
	} else {
		for p := data; len(p) > 0; {
			c := min(len(p), 1+rng.IntN(3*l.BlockSize))
			n, err := w.Write(p[:c])
			if err != nil || n != c {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, c)
			}
			p = p[c:]
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if w.Written() != int64(len(data)) {
		t.Fatalf("Written = %d, want %d", w.Written(), len(data))
	}
	out := make([][]byte, len(bufs))
	for i, b := range bufs {
		out[i] = b.Bytes()
	}
	return out
}

// choppyReader delivers data in random-sized reads.
type choppyReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *choppyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+r.rng.IntN(5000))], r.data)
	r.data = r.data[n:]
	return n, nil
}

// referenceShards computes the shards of data from the layout's definition,
// independently of the package's striping code.
func referenceShards(t testing.TB, l erasure.Layout, data []byte) [][]byte {
	t.Helper()
	enc, err := reedsolomon.New(l.K, l.M)
	if err != nil {
		t.Fatal(err)
	}
	shards := make([][]byte, l.K+l.M)
	for i := range shards {
		shards[i] = []byte{}
	}
	ss := l.K * l.BlockSize
	for off := 0; off < len(data); off += ss {
		chunk := data[off:min(off+ss, len(data))]
		bs := l.BlockSize
		if len(chunk) < ss {
			bs = (len(chunk) + l.K - 1) / l.K
		}
		blocks := make([][]byte, l.K+l.M)
		for i := range blocks {
			blocks[i] = make([]byte, bs)
			if i < l.K {
				copy(blocks[i], chunk[min(i*bs, len(chunk)):min((i+1)*bs, len(chunk))])
			}
		}
		if l.M > 0 {
			if err := enc.Encode(blocks); err != nil {
				t.Fatal(err)
			}
		}
		for i := range blocks {
			shards[i] = append(shards[i], blocks[i]...)
		}
	}
	return shards
}

type faultKind int

const (
	faultNone       faultKind = iota
	faultOpen                 // open fails
	faultReadErr              // reads fail from shard offset at on
	faultShort                // the stream ends early at shard offset at
	faultStall                // reads block (until ctx is done) from shard offset at
	faultStallOpen            // open blocks until ctx is done
	faultHang                 // open blocks, ignoring ctx, until the store is closed
	faultReopen               // the first open is fine; later ones fail after at bytes
	faultNoProgress           // reads return 0, nil from shard offset at on
)

func (k faultKind) String() string {
	return [...]string{"none", "open", "readErr", "short", "stall", "stallOpen", "hang", "reopen", "noProgress"}[k]
}

type fault struct {
	kind faultKind
	at   int64 // shard offset for faultReadErr, faultShort, faultStall
}

type openRec struct {
	idx    int
	off, n int64
}

// store serves shards from memory through a ShardOpener, injecting faults
// and recording every open.
type store struct {
	t      testing.TB
	shards [][]byte
	faults map[int]fault
	rng    *rand.Rand // chops reads; guarded by mu
	hang   chan struct{}

	mu        sync.Mutex
	opens     []openRec
	triggered map[int]bool // faults that took effect
}

func newStore(t testing.TB, shards [][]byte, faults map[int]fault) *store {
	s := &store{
		t:         t,
		shards:    shards,
		faults:    faults,
		rng:       rand.New(rand.NewPCG(1, 2)),
		hang:      make(chan struct{}),
		triggered: map[int]bool{},
	}
	t.Cleanup(func() { close(s.hang) })
	return s
}

func (s *store) trigger(idx int) {
	s.mu.Lock()
	s.triggered[idx] = true
	s.mu.Unlock()
}

func (s *store) open(ctx context.Context, idx int, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	prior := 0
	for _, o := range s.opens {
		if o.idx == idx {
			prior++
		}
	}
	s.opens = append(s.opens, openRec{idx, off, n})
	s.mu.Unlock()
	if idx < 0 || idx >= len(s.shards) || off < 0 || n <= 0 || off+n > int64(len(s.shards[idx])) {
		s.t.Errorf("open(%d, %d, %d): bad arguments for %d shards of %d bytes", idx, off, n, len(s.shards), len(s.shards[0]))
		return nil, errors.New("bad open arguments")
	}
	f := s.faults[idx]
	switch f.kind {
	case faultOpen:
		s.trigger(idx)
		return nil, fmt.Errorf("shard %d is missing", idx)
	case faultStallOpen:
		s.trigger(idx)
		<-ctx.Done()
		return nil, ctx.Err()
	case faultHang:
		s.trigger(idx)
		<-s.hang
		return nil, errors.New("hung open released")
	case faultReopen:
		if prior == 0 {
			f = fault{}
		} else {
			f = fault{kind: faultReadErr, at: off + f.at}
		}
	}
	return &shardStream{s: s, ctx: ctx, idx: idx, data: s.shards[idx][off : off+n], pos: off, f: f}, nil
}

func (s *store) openLog() []openRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.opens)
}

func (s *store) triggeredSet() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.triggered)
}

type shardStream struct {
	s    *store
	ctx  context.Context
	idx  int
	data []byte
	pos  int64 // shard offset of data[0]
	f    fault
}

func (r *shardStream) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.s.mu.Lock()
	n := min(len(p), len(r.data), 1+r.s.rng.IntN(9000))
	r.s.mu.Unlock()
	switch r.f.kind {
	case faultReadErr, faultShort, faultStall, faultNoProgress:
		if r.pos >= r.f.at {
			r.s.trigger(r.idx)
			switch r.f.kind {
			case faultNoProgress:
				return 0, nil
			case faultReadErr:
				return 0, fmt.Errorf("shard %d: checksum mismatch at %d", r.idx, r.pos)
			case faultShort:
				return 0, io.EOF
			default:
				<-r.ctx.Done()
				return 0, r.ctx.Err()
			}
		}
		n = min(n, int(r.f.at-r.pos))
	}
	copy(p, r.data[:n])
	r.data = r.data[n:]
	r.pos += int64(n)
	return n, nil
}

func (r *shardStream) Close() error { return nil }

// readAll reads the whole Reader, with WriteTo or with Reads of random
// sizes.
func readAll(r *erasure.Reader, viaWriteTo bool, rng *rand.Rand) ([]byte, error) {
	var out bytes.Buffer
	if viaWriteTo {
		_, err := r.WriteTo(&out)
		return out.Bytes(), err
	}
	buf := make([]byte, 70000)
	for {
		n, err := r.Read(buf[:1+rng.IntN(len(buf))])
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}
