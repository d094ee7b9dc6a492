package erasure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/reedsolomon"
)

// readAhead is how many stripes a fetcher keeps requested: the one being
// assembled and two behind it, so every shard stream has a block to read
// while the caller consumes the current stripe.
const readAhead = 3

// ShardOpener opens bytes [off, off+n) of shard idx for sequential reading.
// The returned reader must deliver exactly n bytes, and its Read must return
// once ctx is done (as an http.Response body does); the caller closes it.
// Any error or short read marks the shard bad for the rest of the read.
type ShardOpener func(ctx context.Context, idx int, off, n int64) (io.ReadCloser, error)

// ReaderOptions tunes how a Reader (or Rebuild) treats failing shards.
type ReaderOptions struct {
	// OnBadShard, if set, is called once for every shard that failed:
	// could not be opened, returned an error, ended early or timed out.
	// It runs in the goroutine calling Read, WriteTo or Rebuild, must not
	// call back into the Reader, and should return quickly (queue a
	// repair, do not perform it).
	OnBadShard func(idx int, err error)
	// ShardTimeout is how long a shard may deliver nothing, while it is
	// being read, before it counts as failed and the data is
	// reconstructed from the others. Zero means no timeout.
	ShardTimeout time.Duration
}

// A fetcher reads the blocks that a byte range (or a rebuild) wants from a
// segment's shards, stripe by stripe, and reconstructs those it cannot read.
//
// Each shard in use has one goroutine with one open stream (shardConn); the
// fetcher sends it one request per stripe, and the stream moves forward
// through the shard, so the healthy case opens every needed data shard once.
// All bookkeeping lives in the goroutine calling nextStripe; shard
// goroutines only read into buffers they were handed and hand them back.
type fetcher struct {
	ctx     context.Context
	cancel  context.CancelFunc
	l       Layout
	enc     reedsolomon.Encoder
	segSize int64
	open    ShardOpener
	opts    ReaderOptions
	blocks  *sync.Pool

	// Reader: data bytes [off, end) are wanted. Rebuild: targets[i]
	// marks the shards wanted whole.
	off, end    int64
	targets     []bool
	first, last int64 // stripes the fetch covers

	// Open-range hints: exactEnd[i] is the end of the bytes of data shard
	// i that the range wants; hullEnd is the end of what any shard can be
	// asked for when blocks must be reconstructed.
	exactEnd []int64
	hullEnd  int64

	conns   []*shardConn
	replies chan reply
	bad     []bool
	badErr  []error
	nbad    int

	ring    [readAhead]stripeState
	planned int64 // next stripe to plan
	cur     int64 // next stripe nextStripe returns

	rsShards [][]byte // scratch for ReconstructSome
	required []bool
}

type reqState uint8

const (
	reqNone reqState = iota
	reqPending
	reqOK
	reqFailed
)

// blockReq is a request for columns [lo, hi) of one shard's block of a
// stripe. buf is set only while the fetcher owns the buffer: a pending
// request's buffer belongs to the shard goroutine.
type blockReq struct {
	state  reqState
	lo, hi int
	buf    *[]byte
}

// has reports whether r holds columns [lo, hi). Blocks that a shard
// delivered before it failed are as good as any: the failure is in what
// came after.
func (r *blockReq) has(lo, hi int) bool {
	return r.state == reqOK && r.lo <= lo && hi <= r.hi
}

type stripeState struct {
	s        int64
	bs       int // block size of this stripe
	dlo, dhi int // Reader: wanted data bytes, relative to the stripe start
	pending  int
	reqs     []blockReq // by shard
	out      []*[]byte  // reconstructed blocks, by shard
	pieces   [][]byte   // wanted bytes of each shard, once assembled
}

type fetchReq struct {
	stripe int64
	off    int64 // shard offset of buf[0]
	end    int64 // where to end the shard range if a stream must be opened
	buf    *[]byte
	n      int
}

type reply struct {
	idx    int
	stripe int64 // -1: not about a request (the shard timed out)
	buf    *[]byte
	err    error
}

func newFetcher(ctx context.Context, l Layout, segSize, off, end int64, targets []bool, open ShardOpener, opts ReaderOptions) (*fetcher, error) {
	enc, err := encoderFor(l.K, l.M)
	if err != nil {
		return nil, err
	}
	n := l.K + l.M
	f := &fetcher{
		l:        l,
		enc:      enc,
		segSize:  segSize,
		open:     open,
		opts:     opts,
		blocks:   blockPool(l.BlockSize),
		off:      off,
		end:      end,
		targets:  targets,
		exactEnd: make([]int64, l.K),
		conns:    make([]*shardConn, n),
		replies:  make(chan reply, n*(readAhead+1)),
		bad:      make([]bool, n),
		badErr:   make([]error, n),
		rsShards: make([][]byte, n),
		required: make([]bool, n),
	}
	ss := l.StripeSize()
	f.first, f.last = off/ss, (end-1)/ss
	f.planned, f.cur = f.first, f.first
	for i := range f.ring {
		f.ring[i] = stripeState{
			s:      -1,
			reqs:   make([]blockReq, n),
			out:    make([]*[]byte, n),
			pieces: make([][]byte, n),
		}
	}
	for i := range f.bad {
		if targets != nil && targets[i] {
			// Shards being rebuilt are not there to read.
			f.bad[i] = true
			f.nbad++
		}
	}
	if targets != nil {
		f.hullEnd = l.ShardSize(segSize)
	} else {
		var probe stripeState
		for i := range l.K {
			f.exactEnd[i] = -1
			for s := f.last; s >= f.first && s >= f.last-2; s-- {
				f.geometry(&probe, s)
				if _, hi, ok := f.want(&probe, i); ok {
					f.exactEnd[i] = s*int64(l.BlockSize) + int64(hi)
					break
				}
			}
		}
		f.geometry(&probe, f.last)
		for i := range l.K {
			if _, hi, ok := f.want(&probe, i); ok {
				f.hullEnd = max(f.hullEnd, f.last*int64(l.BlockSize)+int64(hi))
			}
		}
	}
	f.ctx, f.cancel = context.WithCancel(ctx)
	return f, nil
}

// geometry fills in where stripe s lies and what it wants.
func (f *fetcher) geometry(st *stripeState, s int64) {
	ss := f.l.StripeSize()
	st.s = s
	st.bs = f.l.stripeBlockSize(f.segSize, s)
	start := s * ss
	st.dlo = int(max(f.off, start) - start)
	st.dhi = int(min(f.end, start+ss) - start)
}

// want reports which columns of shard i's block of st are wanted.
func (f *fetcher) want(st *stripeState, i int) (lo, hi int, ok bool) {
	if f.targets != nil {
		return 0, st.bs, f.targets[i]
	}
	if i >= f.l.K {
		return 0, 0, false
	}
	blo := i * st.bs
	lo = max(st.dlo, blo) - blo
	hi = min(st.dhi, blo+st.bs) - blo
	return lo, hi, lo < hi
}

func (f *fetcher) slot(s int64) *stripeState { return &f.ring[s%readAhead] }

// nextStripe returns the next stripe with pieces[i] holding the wanted bytes
// of every wanted shard i. The caller must call release on it before calling
// nextStripe again. It returns io.EOF after the last stripe.
func (f *fetcher) nextStripe() (*stripeState, error) {
	if f.cur > f.last {
		return nil, io.EOF
	}
	for ; f.planned <= f.last && f.planned < f.cur+readAhead; f.planned++ {
		f.plan(f.planned)
	}
	st := f.slot(f.cur)
	for {
		for st.pending > 0 {
			select {
			case rp := <-f.replies:
				f.handle(rp)
			case <-f.ctx.Done():
			}
			if err := f.ctx.Err(); err != nil {
				return nil, fmt.Errorf("erasure: read stripe %d: %w", st.s, context.Cause(f.ctx))
			}
		}
		done, err := f.settle(st)
		if err != nil {
			return nil, err
		}
		if done {
			f.cur++
			return st, nil
		}
	}
}

// plan issues the requests for stripe s.
func (f *fetcher) plan(s int64) {
	st := f.slot(s)
	f.geometry(st, s)
	f.fillRequests(st)
}

// fillRequests issues what st still lacks a request for: the wanted columns
// of every wanted shard if none of them is known to be bad, or else a
// column window wide enough to reconstruct them from the first K shards not
// known to be bad. It is called again for every planned stripe when a shard
// goes bad, in stripe order, so each shard's stream keeps moving forward.
func (f *fetcher) fillRequests(st *stripeState) {
	missing := false
	hlo, hhi := st.bs, 0
	for i := range st.reqs {
		if lo, hi, ok := f.want(st, i); ok {
			hlo, hhi = min(hlo, lo), max(hhi, hi)
			missing = missing || f.bad[i] && !st.reqs[i].has(lo, hi)
		}
	}
	if !missing {
		for i := range st.reqs {
			if lo, hi, ok := f.want(st, i); ok && st.reqs[i].state == reqNone {
				f.request(st, i, lo, hi, f.exactEnd[i])
			}
		}
		return
	}
	for i, n := 0, 0; i < len(st.reqs) && n < f.l.K; i++ {
		if f.bad[i] {
			continue
		}
		n++
		if st.reqs[i].state == reqNone {
			f.request(st, i, hlo, hhi, f.hullEnd)
		}
	}
}

func (f *fetcher) request(st *stripeState, i, lo, hi int, end int64) {
	r := &st.reqs[i]
	buf := r.buf
	if buf == nil {
		buf = f.blocks.Get().(*[]byte)
	}
	*r = blockReq{state: reqPending, lo: lo, hi: hi}
	st.pending++
	c := f.conn(i)
	q := fetchReq{stripe: st.s, off: st.s*int64(f.l.BlockSize) + int64(lo), end: end, buf: buf, n: hi - lo}
	select {
	case c.reqs <- q: // never blocks: a shard has at most one request per slot
	case <-f.ctx.Done():
	}
}

func (f *fetcher) conn(i int) *shardConn {
	if c := f.conns[i]; c != nil {
		return c
	}
	c := &shardConn{f: f, idx: i, reqs: make(chan fetchReq, readAhead)}
	c.ctx, c.cancel = context.WithCancel(f.ctx)
	if f.opts.ShardTimeout > 0 {
		c.timer = time.AfterFunc(time.Hour, c.timedOut)
		c.timer.Stop()
	}
	f.conns[i] = c
	go c.run()
	return c
}

// handle records a shard goroutine's reply.
func (f *fetcher) handle(rp reply) {
	if f.ctx.Err() != nil {
		return // the fetch is over; failures now are ours, not the shard's
	}
	if f.bad[rp.idx] {
		if rp.buf != nil {
			f.blocks.Put(rp.buf) // a late answer from a shard given up on
		}
		return
	}
	if rp.stripe < 0 {
		f.markBad(rp.idx, rp.err)
		return
	}
	st := f.slot(rp.stripe)
	r := &st.reqs[rp.idx]
	if st.s != rp.stripe || r.state != reqPending {
		panic(fmt.Sprintf("erasure: unexpected reply from shard %d for stripe %d", rp.idx, rp.stripe))
	}
	r.buf = rp.buf
	st.pending--
	if rp.err != nil {
		r.state = reqFailed
		f.markBad(rp.idx, rp.err)
		return
	}
	r.state = reqOK
}

// markBad gives up on shard i: its stream is abandoned, its outstanding
// requests count as failed, and the buffers it holds become its own to
// return, since it may still be writing into them.
func (f *fetcher) markBad(i int, err error) {
	if f.bad[i] {
		return
	}
	f.bad[i] = true
	f.badErr[i] = err
	f.nbad++
	if c := f.conns[i]; c != nil {
		c.cancel()
	}
	for j := range f.ring {
		st := &f.ring[j]
		if r := &st.reqs[i]; r.state == reqPending {
			r.state = reqFailed
			st.pending--
		}
	}
	if f.opts.OnBadShard != nil {
		f.opts.OnBadShard(i, err)
	}
	for s := f.cur; s < f.planned; s++ {
		f.fillRequests(f.slot(s))
	}
}

// settle decides, once no requests of st are pending, whether st can be
// assembled. If not, it requests what is still needed and returns false.
func (f *fetcher) settle(st *stripeState) (bool, error) {
	// Columns [wlo, whi) of every block must be reconstructed that the
	// fetch wants and could not read.
	wlo, whi := st.bs, 0
	for i := range st.reqs {
		st.pieces[i] = nil // an earlier pass may have pointed into a buffer since re-requested
		lo, hi, ok := f.want(st, i)
		if !ok {
			continue
		}
		if r := &st.reqs[i]; r.has(lo, hi) {
			st.pieces[i] = (*r.buf)[lo-r.lo : hi-r.lo]
			continue
		}
		wlo, whi = min(wlo, lo), max(whi, hi)
	}
	if wlo >= whi {
		return true, nil
	}
	covers := func(i int) bool { return st.reqs[i].has(wlo, whi) }
	srcs, avail := 0, 0
	for i := range st.reqs {
		if covers(i) {
			srcs++
			avail++
		} else if !f.bad[i] {
			avail++
		}
	}
	if srcs >= f.l.K {
		return true, f.reconstruct(st, wlo, whi, covers)
	}
	if avail < f.l.K {
		return false, f.tooFew(st.s, avail)
	}
	for i := 0; i < len(st.reqs) && srcs < f.l.K; i++ {
		if f.bad[i] || covers(i) {
			continue
		}
		lo, hi := wlo, whi
		if r := &st.reqs[i]; r.state == reqOK {
			// Keep what it already delivered usable as its own piece.
			lo, hi = min(lo, r.lo), max(hi, r.hi)
		}
		f.request(st, i, lo, hi, f.hullEnd)
		srcs++
	}
	return false, nil
}

func (f *fetcher) reconstruct(st *stripeState, wlo, whi int, covers func(int) bool) error {
	n := whi - wlo
	srcs := 0
	for i := range st.reqs {
		f.rsShards[i], f.required[i] = nil, false
		if srcs < f.l.K && covers(i) {
			r := &st.reqs[i]
			f.rsShards[i] = (*r.buf)[wlo-r.lo : whi-r.lo]
			srcs++
		}
	}
	for i := range st.reqs {
		if _, _, ok := f.want(st, i); !ok || f.rsShards[i] != nil || st.pieces[i] != nil {
			continue
		}
		if st.out[i] == nil {
			st.out[i] = f.blocks.Get().(*[]byte)
		}
		f.rsShards[i] = (*st.out[i])[:0:n]
		f.required[i] = true
	}
	if err := f.enc.ReconstructSome(f.rsShards, f.required); err != nil {
		return fmt.Errorf("erasure: reconstruct stripe %d: %w", st.s, err)
	}
	for i := range st.reqs {
		if f.required[i] {
			lo, hi, _ := f.want(st, i)
			st.pieces[i] = f.rsShards[i][lo-wlo : hi-wlo]
		}
	}
	return nil
}

func (f *fetcher) tooFew(s int64, avail int) error {
	var sb strings.Builder
	for i, err := range f.badErr {
		if err != nil {
			if sb.Len() > 0 {
				sb.WriteString("; ")
			}
			sb.WriteString(strings.TrimPrefix(err.Error(), "erasure: "))
		} else if f.bad[i] {
			if sb.Len() > 0 {
				sb.WriteString("; ")
			}
			fmt.Fprintf(&sb, "shard %d: being rebuilt", i)
		}
	}
	total := f.l.K + f.l.M
	return fmt.Errorf("%w: stripe %d: %d of %d shards readable, need %d (%s)",
		ErrTooFewShards, s, avail, total, f.l.K, sb.String())
}

// release returns st's buffers for reuse by later stripes.
func (f *fetcher) release(st *stripeState) {
	for i := range st.reqs {
		if r := &st.reqs[i]; r.state != reqPending {
			if r.buf != nil {
				f.blocks.Put(r.buf)
			}
			*r = blockReq{}
		}
		if st.out[i] != nil {
			f.blocks.Put(st.out[i])
			st.out[i] = nil
		}
		st.pieces[i] = nil
	}
}

// close stops every shard goroutine. It does not wait for them: one stuck
// in a misbehaving stream must not hold up the caller, and each returns the
// buffers it holds when it exits.
func (f *fetcher) close() {
	f.cancel()
	for i := range f.ring {
		f.release(&f.ring[i])
	}
}

// shardConn reads one shard's blocks in the order they are requested,
// keeping one stream open across requests as long as they move forward.
type shardConn struct {
	f      *fetcher
	idx    int
	reqs   chan fetchReq
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer // fires when the shard delivers nothing for ShardTimeout
	stuck  atomic.Bool

	rc       io.ReadCloser
	pos, end int64 // rc delivers shard bytes [pos, end)
	err      error // sticky: once a shard fails it is not read again
}

func (c *shardConn) run() {
	defer func() {
		if c.rc != nil {
			c.rc.Close()
		}
		for {
			select {
			case q := <-c.reqs:
				c.f.blocks.Put(q.buf)
			default:
				return
			}
		}
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case q := <-c.reqs:
			err := c.fetch(q)
			select {
			case c.f.replies <- reply{idx: c.idx, stripe: q.stripe, buf: q.buf, err: err}:
			case <-c.ctx.Done():
				c.f.blocks.Put(q.buf)
				return
			}
		}
	}
}

// skipLimit is the largest gap a stream reads through rather than being
// reopened at the new offset.
func (c *shardConn) skipLimit() int64 { return int64(c.f.l.BlockSize) }

func (c *shardConn) fetch(q fetchReq) error {
	if c.err != nil {
		return c.err
	}
	if c.timer != nil {
		c.timer.Reset(c.f.opts.ShardTimeout)
		defer c.timer.Stop()
	}
	err := c.read(q)
	if err != nil {
		if c.stuck.Load() {
			err = fmt.Errorf("erasure: shard %d: nothing for %v: %w", c.idx, c.f.opts.ShardTimeout, ErrShardTimeout)
		}
		c.err = err
		if c.rc != nil {
			c.rc.Close()
			c.rc = nil
		}
	}
	return err
}

func (c *shardConn) read(q fetchReq) error {
	n := int64(q.n)
	if c.rc != nil && (q.off < c.pos || q.off-c.pos > c.skipLimit() || q.off+n > c.end) {
		c.rc.Close()
		c.rc = nil
	}
	if c.rc == nil {
		end := max(q.end, q.off+n)
		rc, err := c.f.open(c.ctx, c.idx, q.off, end-q.off)
		if err == nil && rc == nil {
			err = errors.New("opener returned no reader")
		}
		if err != nil {
			return fmt.Errorf("erasure: open shard %d [%d,%d): %w", c.idx, q.off, end, err)
		}
		c.rc, c.pos, c.end = rc, q.off, end
		c.progress()
	}
	buf := (*q.buf)[:q.n]
	for gap := q.off - c.pos; gap > 0; {
		// Read through the gap using the destination as scratch.
		m, err := c.fill(buf[:min(int64(len(buf)), gap)])
		gap -= int64(m)
		if err != nil {
			return err
		}
	}
	_, err := c.fill(buf)
	return err
}

// fill reads len(p) bytes from the stream.
func (c *shardConn) fill(p []byte) (int, error) {
	n, empty := 0, 0
	for n < len(p) {
		m, err := c.rc.Read(p[n:])
		n += m
		if m > 0 {
			c.progress()
			empty = 0
		} else if err == nil {
			if empty++; empty == 100 {
				err = io.ErrNoProgress // a broken stream; do not spin on it
			}
		}
		if err != nil {
			if n == len(p) && err == io.EOF {
				break
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.pos += int64(n)
			return n, fmt.Errorf("erasure: read shard %d at %d: %w", c.idx, c.pos, err)
		}
	}
	c.pos += int64(n)
	return n, nil
}

func (c *shardConn) progress() {
	if c.timer != nil {
		c.timer.Reset(c.f.opts.ShardTimeout)
	}
}

// timedOut runs when the shard delivered nothing for ShardTimeout. It
// reports the shard at once, so the fetch moves on even if the stream
// ignores cancellation and the goroutine reading it never returns.
func (c *shardConn) timedOut() {
	if !c.stuck.CompareAndSwap(false, true) {
		return
	}
	c.cancel()
	err := fmt.Errorf("erasure: shard %d: nothing for %v: %w", c.idx, c.f.opts.ShardTimeout, ErrShardTimeout)
	select {
	case c.f.replies <- reply{idx: c.idx, stripe: -1, err: err}:
	case <-c.f.ctx.Done():
	}
}
