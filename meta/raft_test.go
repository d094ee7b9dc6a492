package meta_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/internal/node"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// putMany writes n small (inline) objects with 32 writers.
func putMany(t *testing.T, cl *client.Client, bucket, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				body := []byte(fmt.Sprintf("object %d", i))
				if _, err := cl.Put(context.Background(), bucket, fmt.Sprintf("%s%07d", prefix, i), bytes.NewReader(body), int64(len(body)), client.PutOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func countObjects(t *testing.T, mc *metaapi.Client, bucket string) int {
	t.Helper()
	n, after := 0, ""
	for {
		res, err := mc.List(context.Background(), metaapi.ListRequest{Bucket: bucket, After: after, Max: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n += len(res.Objects)
		if res.Next == "" {
			return n
		}
		after = res.Next
	}
}

func waitApplied(t *testing.T, addr string, secret []byte, index uint64) metaapi.MetaStatus {
	t.Helper()
	mc, _ := metaapi.NewClient([]string{addr}, secret, nil)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := mc.MetaStatus(context.Background())
		if err == nil && st.AppliedIdx >= index {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("node at %s applied %d of %d after 60s (%v)", addr, st.AppliedIdx, index, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCatchUp has new metadata nodes join a group that holds many objects
// and compacted its log (so they catch up from a snapshot), then has one node
// miss thousands of commits and catch up from the log; finally the original
// node goes away and the newcomers serve everything.
func TestCatchUp(t *testing.T) {
	objects, missed := 100_000, 10_000
	if testing.Short() {
		objects, missed = 5_000, 1_000
	}
	secret := []byte("catch-up")
	c, err := dev.Start(context.Background(), dev.Options{
		Dir: t.TempDir(), Secret: secret, Logger: quietLogger(), Heartbeat: 200 * time.Millisecond,
		Meta: meta.Config{SnapshotThreshold: 1024},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	mc := cl.Meta()
	if err := mc.CreateBucket(context.Background(), metaapi.Bucket{Name: "many"}); err != nil {
		t.Fatal(err)
	}
	putMany(t, cl, "many", "a/", objects)
	lead, err := mc.MetaStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Two new nodes join; the log behind the leader's snapshot is gone, so
	// they can only catch up by installing it.
	var joined []*node.Meta
	for i := range 2 {
		m, err := node.StartMeta(context.Background(), "127.0.0.1:0", meta.Config{
			Dir: t.TempDir(), Secret: secret, Logger: quietLogger(), ID: fmt.Sprintf("new%d", i),
			Join: []string{c.MetaAddr()}, SnapshotThreshold: 1024,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Stop()
		joined = append(joined, m)
		waitApplied(t, m.Addr(), secret, lead.CommitIndex)
	}

	// One newcomer misses a batch of commits, then comes back.
	dir := t.TempDir()
	_ = dir
	missedAddr := joined[1].Addr()
	joined[1].Stop()
	putMany(t, cl, "many", "b/", missed)
	lead, _ = mc.MetaStatus(context.Background())
	m, err := node.StartMeta(context.Background(), missedAddr, meta.Config{
		Dir: joined[1].Server.Dir(), Secret: secret, Logger: quietLogger(), ID: "new1", SnapshotThreshold: 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitApplied(t, m.Addr(), secret, lead.CommitIndex)

	// The original node leaves; the two newcomers elect a leader and hold
	// every object.
	c.StopMeta(0)
	nc, _ := metaapi.NewClient([]string{joined[0].Addr(), m.Addr()}, secret, nil)
	nc.RetryFor = 20 * time.Second
	if got, want := countObjects(t, nc, "many"), objects+missed; got != want {
		t.Fatalf("newcomers list %d objects, want %d", got, want)
	}
}
