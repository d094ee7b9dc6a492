package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// groupSync makes a disk's writes durable in batches. A shard write needs
// its data and its rename durable before the answer; with per-file
// fdatasync and a directory fsync, N concurrent writes cost 2N device
// flushes, each a round trip to the disk. Here every writer that asks
// while a flush is running waits for the next one, and one
// filesystem-wide flush (syncfs) covers them all, so N concurrent writes
// cost about one flush per batch instead.
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

// SharedFlush lets chunk servers in one process share group commits on
// disks that are on the same filesystem. A flush (syncfs) makes all of a
// filesystem's writes durable, not just one disk directory's, so when
// several servers' disks share a filesystem, as in talus dev, one flush
// can serve the writes of all of them instead of each server flushing
// the same filesystem on its own schedule. Give the same SharedFlush to
// each server's Config; close it after the last of them has stopped.
type SharedFlush struct {
	mu     sync.Mutex
	groups map[uint64]*groupSync // by filesystem (device id)
	files  []*os.File            // held open for the flushes
}

// NewSharedFlush returns an empty SharedFlush.
func NewSharedFlush() *SharedFlush {
	return &SharedFlush{groups: make(map[uint64]*groupSync)}
}

// group returns the group commit of the filesystem holding dir.
func (sf *SharedFlush) group(dir string) (*groupSync, error) {
	fs, err := filesystemID(dir)
	if err != nil {
		return nil, err
	}
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if g := sf.groups[fs]; g != nil {
		return g, nil
	}
	// Its own handle on the filesystem, so that the flushes go on when
	// the server whose disk it came from stops.
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s for flushing: %w", dir, err)
	}
	sf.files = append(sf.files, f)
	g := &groupSync{flush: func() error { return syncFS(f) }}
	sf.groups[fs] = g
	return g, nil
}

// Close releases the files held for flushing.
func (sf *SharedFlush) Close() error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	var errs []error
	for _, f := range sf.files {
		errs = append(errs, f.Close())
	}
	sf.files, sf.groups = nil, make(map[uint64]*groupSync)
	return errors.Join(errs...)
}
