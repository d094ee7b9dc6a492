package chunkserver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupSync checks the one property durability rests on: a waiter is
// released only by a flush that began after it asked. It also checks that
// concurrent waiters share flushes.
func TestGroupSync(t *testing.T) {
	var started, finished atomic.Int64
	g := &groupSync{flush: func() error {
		started.Add(1)
		time.Sleep(2 * time.Millisecond)
		finished.Add(1)
		return nil
	}}
	const waiters = 200
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := started.Load()
			if err := g.wait(context.Background()); err != nil {
				t.Error(err)
				return
			}
			if finished.Load() < before+1 {
				t.Errorf("released after %d flushes, but %d had started when it asked", finished.Load(), before)
			}
		}()
	}
	wg.Wait()
	if n := started.Load(); n >= waiters/2 {
		t.Errorf("%d flushes for %d concurrent waiters; want them batched", n, waiters)
	}
	t.Logf("%d waiters, %d flushes", waiters, started.Load())

	boom := errors.New("disk on fire")
	g2 := &groupSync{flush: func() error { return boom }}
	if err := g2.wait(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("flush error not passed on: %v", err)
	}
}

// TestCancelledWaitKeepsDiskHealthy: a client hanging up while its shard
// waits for a flush must not take the disk out of service.
func TestCancelledWaitKeepsDiskHealthy(t *testing.T) {
	s, err := New(Config{Disks: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.disks[0]
	release := make(chan struct{})
	d.durable.flush = func() error { <-release; return nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.waitDurable(ctx, d, "sync data") }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	close(release)
	if !d.healthy() {
		t.Fatal("a cancelled wait marked the disk failed")
	}
}
