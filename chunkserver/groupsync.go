package chunkserver

import (
	"context"
	"sync"
	"sync/atomic"
)

// groupSync makes a disk's writes durable in batches. A shard write needs
// two flushes — its data before the rename into place, the rename before the
// answer — and with per-file fdatasync and directory fsync, N concurrent
// writes cost 2N device flushes, each a round trip to the disk. Here every
// writer that asks while a flush is running waits for the next one, and one
// filesystem-wide flush (syncfs) covers them all, so N concurrent writes
// cost about two flushes per batch instead.
type groupSync struct {
	flush func() error // makes everything written so far durable
	// batches counts the flushes run, for metrics.
	batches atomic.Int64

	mu      sync.Mutex
	waiting []chan error
	running bool
}

// wait returns once everything the caller wrote before calling it is durable.
func (g *groupSync) wait(ctx context.Context) error {
	ch := make(chan error, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, ch)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *groupSync) loop() {
	for {
		g.mu.Lock()
		// Whoever arrives after this point may have written after the
		// flush below began, so it waits for the next round.
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		err := g.flush()
		g.batches.Add(1)
		for _, ch := range batch {
			ch <- err
		}
	}
}
