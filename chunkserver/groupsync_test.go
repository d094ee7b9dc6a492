package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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

// Servers given one SharedFlush share the group commit of the filesystem
// their disks are on, and go on flushing when one of them stops.
func TestSharedFlush(t *testing.T) {
	sf := NewSharedFlush()
	defer sf.Close()
	root := t.TempDir()
	var servers []*Server
	for i := range 2 {
		s, err := New(Config{Disks: []string{filepath.Join(root, fmt.Sprint("d", i))}, SharedFlush: sf})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers = append(servers, s)
	}
	a, b := servers[0].disks[0].durable, servers[1].disks[0].durable
	if a != b {
		t.Fatal("two disks on one filesystem got separate group commits")
	}
	alone, err := New(Config{Disks: []string{filepath.Join(root, "alone")}})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	if alone.disks[0].durable == a {
		t.Fatal("a server without the SharedFlush joined its group commit")
	}
	servers[0].Close()
	before := b.batches.Load()
	if err := servers[1].waitDurable(context.Background(), servers[1].disks[0], "sync shard"); err != nil {
		t.Fatalf("flush after the other server stopped: %v", err)
	}
	if b.batches.Load() != before+1 {
		t.Errorf("flushes %d, want %d", b.batches.Load(), before+1)
	}
}
