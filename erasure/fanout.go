package erasure

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// laneDepth is how many batches may queue for one shard writer. Together
// with the batch being written and the one being filled, it bounds a
// Writer to about 4 stripes in flight: enough for a slow shard to fall a
// little behind without stalling the others, little enough to bound memory.
const laneDepth = 2

// A batch is one stripe's blocks on their way to the shard writers.
type batch struct {
	blocks [][]byte // blocks[i] goes to shard i
	refs   atomic.Int32
	done   func() // called by whichever lane finishes with the batch last
}

func (b *batch) unref() {
	if b.refs.Add(-1) == 0 {
		b.done()
	}
}

// fanout writes batches to a set of shard writers, one goroutine per shard,
// so that a slow shard writer (an HTTP upload behind an io.Pipe, typically)
// delays only its own shard. A shard whose Write fails is marked failed and
// gets no more blocks.
type fanout struct {
	lanes   []lane
	maxFail int
	nfail   atomic.Int32
	wg      sync.WaitGroup

	mu   sync.Mutex
	errs []error // by shard index; guarded by mu
}

type lane struct {
	w      io.Writer // nil: no lane for this shard
	ch     chan *batch
	failed atomic.Bool
}

// newFanout starts a lane for every non-nil writer in ws.
func newFanout(ws []io.Writer, maxFail int) *fanout {
	f := &fanout{
		lanes:   make([]lane, len(ws)),
		maxFail: maxFail,
		errs:    make([]error, len(ws)),
	}
	for i, w := range ws {
		if w == nil {
			continue
		}
		f.lanes[i].w = w
		f.lanes[i].ch = make(chan *batch, laneDepth)
		f.wg.Add(1)
		go f.run(i)
	}
	return f
}

func (f *fanout) run(i int) {
	defer f.wg.Done()
	ln := &f.lanes[i]
	for b := range ln.ch {
		if !ln.failed.Load() {
			blk := b.blocks[i]
			n, err := ln.w.Write(blk)
			if err == nil && n != len(blk) {
				err = io.ErrShortWrite
			}
			if err != nil {
				f.fail(i, err)
			}
		}
		b.unref()
	}
}

func (f *fanout) fail(i int, err error) {
	f.mu.Lock()
	f.errs[i] = fmt.Errorf("erasure: write shard %d: %w", i, err)
	f.mu.Unlock()
	f.lanes[i].failed.Store(true)
	f.nfail.Add(1)
}

// send hands b to every lane that has not failed. It blocks while a lane's
// queue is full, which is what bounds the stripes in flight.
func (f *fanout) send(b *batch) {
	live := int32(0)
	for i := range f.lanes {
		if f.lanes[i].w != nil && !f.lanes[i].failed.Load() {
			live++
		}
	}
	// One reference per live lane plus one held by send, so the batch
	// cannot be recycled before every lane has been offered it.
	b.refs.Store(live + 1)
	sent := int32(0)
	for i := range f.lanes {
		ln := &f.lanes[i]
		if ln.w != nil && !ln.failed.Load() && sent < live {
			ln.ch <- b
			sent++
		}
	}
	// Lanes that failed between counting and sending did not get b.
	for ; sent < live+1; sent++ {
		b.unref()
	}
}

// close waits for every lane to write what it was sent.
func (f *fanout) close() {
	for i := range f.lanes {
		if f.lanes[i].ch != nil {
			close(f.lanes[i].ch)
		}
	}
	f.wg.Wait()
}

func (f *fanout) tooMany() bool { return int(f.nfail.Load()) > f.maxFail }

func (f *fanout) shardErrors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.errs...)
}

// failure describes the failed shards, for the Writer's error. It wraps
// each shard's error too, so a caller can tell a full disk (say) from a
// network fault with errors.Is.
func (f *fanout) failure() error {
	var sb strings.Builder
	errs := []error{ErrTooManyFailures}
	for _, err := range f.shardErrors() {
		if err == nil {
			continue
		}
		if len(errs) > 1 {
			sb.WriteString("; ")
		}
		sb.WriteString(strings.TrimPrefix(err.Error(), "erasure: "))
		errs = append(errs, err)
	}
	return &failureError{
		msg:  fmt.Sprintf("%v: %d of %d shards failed, %d allowed (%s)", ErrTooManyFailures, len(errs)-1, len(f.lanes), f.maxFail, sb.String()),
		errs: errs,
	}
}

type failureError struct {
	msg  string
	errs []error
}

func (e *failureError) Error() string   { return e.msg }
func (e *failureError) Unwrap() []error { return e.errs }
