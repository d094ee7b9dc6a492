package erasure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Rebuild regenerates the shards listed in targets (shard index to
// destination) of a segment of segSize data bytes written with layout l.
// It reads K other shards through open, stripe by stripe, skipping the
// targets and any shard that fails (reported through opts.OnBadShard), and
// writes every target's full shard to its writer, the targets in parallel.
// It does not close the writers. A failing target writer fails the whole
// Rebuild, with an error naming the shard; the other targets may then be
// incomplete.
func Rebuild(ctx context.Context, l Layout, segSize int64, open ShardOpener, targets map[int]io.Writer, opts ReaderOptions) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if segSize < 0 {
		return fmt.Errorf("%w: segment size %d", ErrRange, segSize)
	}
	if open == nil {
		return fmt.Errorf("erasure: nil ShardOpener")
	}
	total := l.K + l.M
	ws := make([]io.Writer, total)
	want := make([]bool, total)
	for i, w := range targets {
		if i < 0 || i >= total {
			return fmt.Errorf("erasure: rebuild shard %d of a %d+%d layout", i, l.K, l.M)
		}
		if w == nil {
			return fmt.Errorf("erasure: rebuild shard %d: nil writer", i)
		}
		ws[i], want[i] = w, true
	}
	if len(targets) > l.M {
		return fmt.Errorf("%w: cannot rebuild %d shards of a %d+%d layout", ErrTooFewShards, len(targets), l.K, l.M)
	}
	if len(targets) == 0 || segSize == 0 {
		return nil
	}
	f, err := newFetcher(ctx, l, segSize, 0, segSize, want, open, opts)
	if err != nil {
		return err
	}
	defer f.close()
	out := newFanout(ws, 0)
	var jobs sync.Pool
	for {
		if out.tooMany() {
			break
		}
		st, err := f.nextStripe()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.close()
			return fmt.Errorf("erasure: rebuild: %w", err)
		}
		// Hand the reconstructed blocks to the writers; they go back to
		// the pool when the last writer is done with them.
		j, _ := jobs.Get().(*rebuildJob)
		if j == nil {
			j = &rebuildJob{bufs: make([]*[]byte, total)}
			j.blocks = make([][]byte, total)
			j.done = func() {
				for i, b := range j.bufs {
					if b != nil {
						f.blocks.Put(b)
						j.bufs[i], j.blocks[i] = nil, nil
					}
				}
				jobs.Put(j)
			}
		}
		for i := range want {
			if want[i] {
				j.blocks[i] = st.pieces[i]
				j.bufs[i], st.out[i] = st.out[i], nil
			}
		}
		f.release(st)
		out.send(&j.batch)
	}
	out.close()
	if out.tooMany() {
		for _, err := range out.shardErrors() {
			if err != nil {
				return fmt.Errorf("erasure: rebuild: %w", err)
			}
		}
	}
	return nil
}

type rebuildJob struct {
	batch
	bufs []*[]byte
}
