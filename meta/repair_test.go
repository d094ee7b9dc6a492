package meta_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

const bucket = "heal"

// corpus is the test's objects: mixed sizes, some inline, some of several
// segments, each body derived from its number so it need not be kept.
type corpus struct {
	n     int
	sizes []int
	total int64
}

func newCorpus(n int) *corpus {
	c := &corpus{n: n, sizes: make([]int, n)}
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		switch {
		case i%40 == 0: // 50 of 2,000: 8 to 10 MiB, two or three segments
			c.sizes[i] = 8<<20 + r.IntN(2<<20)
		case i%3 == 0: // inline
			c.sizes[i] = 1 + r.IntN(60<<10)
		default:
			c.sizes[i] = 65<<10 + r.IntN(400<<10)
		}
		c.total += int64(c.sizes[i])
	}
	return c
}

func (c *corpus) key(i int) string { return fmt.Sprintf("obj/%05d", i) }

func (c *corpus) body(i int) []byte {
	b := make([]byte, (c.sizes[i]+7)/8*8)
	r := rand.New(rand.NewPCG(uint64(i), 99))
	for j := 0; j < len(b); j += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[j+k] = byte(v >> (8 * k))
		}
	}
	return b[:c.sizes[i]]
}

// parallel runs fn for 0..n-1 on 8 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func (c *corpus) write(ctx context.Context, cl *client.Client) error {
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: bucket}); err != nil {
		return err
	}
	return parallel(c.n, func(i int) error {
		b := c.body(i)
		_, err := cl.Put(ctx, bucket, c.key(i), bytes.NewReader(b), int64(len(b)), client.PutOptions{})
		return err
	})
}

// verify reads every object back and compares it byte for byte.
func (c *corpus) verify(ctx context.Context, cl *client.Client) error {
	return parallel(c.n, func(i int) error {
		r, err := cl.Get(ctx, bucket, c.key(i), 0, -1)
		if err != nil {
			return fmt.Errorf("get %s: %w", c.key(i), err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", c.key(i), err)
		}
		if !bytes.Equal(got, c.body(i)) {
			return fmt.Errorf("%s read back different bytes (%d, want %d)", c.key(i), len(got), c.sizes[i])
		}
		return nil
	})
}

// checkSegments checks that every segment of every object has all its
// shards, on distinct servers that are up and not in avoid, at most
// zoneCap in a zone, and that each shard is on its server with its size.
func (c *corpus) checkSegments(ctx context.Context, cl *client.Client, avoid map[string]bool, zoneCap int) error {
	nodes, err := cl.Meta().Nodes(ctx)
	if err != nil {
		return err
	}
	byID := map[string]metaapi.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	return parallel(c.n, func(i int) error {
		o, err := cl.Meta().Object(ctx, bucket, c.key(i))
		if err != nil {
			return err
		}
		for _, seg := range o.Segments {
			seen := map[string]bool{}
			zones := map[string]int{}
			for idx, sh := range seg.Shards {
				n, ok := byID[sh.Node]
				switch {
				case sh.Node == "":
					return fmt.Errorf("segment %s of %s: shard %d missing", seg.ID, c.key(i), idx)
				case avoid[sh.Node]:
					return fmt.Errorf("segment %s of %s: shard %d still on %s", seg.ID, c.key(i), idx, sh.Node)
				case !ok || n.State != metaapi.NodeUp:
					return fmt.Errorf("segment %s of %s: shard %d on %s, which is not up", seg.ID, c.key(i), idx, sh.Node)
				case seen[sh.Node]:
					return fmt.Errorf("segment %s of %s: two shards on %s", seg.ID, c.key(i), sh.Node)
				}
				seen[sh.Node] = true
				if zones[n.Zone]++; zones[n.Zone] > zoneCap {
					return fmt.Errorf("segment %s of %s: %d shards in zone %s", seg.ID, c.key(i), zones[n.Zone], n.Zone)
				}
			}
		}
		return nil
	})
}

// headShards checks that every shard the metadata records is on its
// server, with its size.
func (c *corpus) headShards(ctx context.Context, cl *client.Client, secret []byte) error {
	nodes, err := cl.Meta().Nodes(ctx)
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, n := range nodes {
		addr[n.ID] = n.Addr
	}
	chunks := chunkserver.NewClient(secret, nil)
	return parallel(c.n, func(i int) error {
		o, err := cl.Meta().Object(ctx, bucket, c.key(i))
		if err != nil {
			return err
		}
		for _, seg := range o.Segments {
			want := erasure.Layout{K: seg.K, M: seg.M, BlockSize: seg.BlockSize}.ShardSize(seg.Size)
			for idx, sh := range seg.Shards {
				got, err := chunks.Head(ctx, addr[sh.Node], meta.ShardID(seg.ID, idx))
				if err != nil || got != want {
					return fmt.Errorf("shard %s on %s: size %d, %v; want %d", meta.ShardID(seg.ID, idx), sh.Node, got, err, want)
				}
			}
		}
		return nil
	})
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after %s (last error: %v)", what, limit, lastErr)
}

// shardFiles counts the shard files in a chunk server's directory.
func shardFiles(dir string) int {
	n := 0
	filepath.WalkDir(filepath.Join(dir, "shards"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && chunkserver.ValidShardID(d.Name()) {
			n++
		}
		return nil
	})
	return n
}

func startCluster(t *testing.T, chunks int) (*dev.Cluster, *client.Client) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	c, err := dev.Start(ctx, dev.Options{
		Dir: t.TempDir(), Chunks: chunks, Zones: 4, Logger: log, Heartbeat: 300 * time.Millisecond,
		Meta: meta.Config{
			SegmentSize: 4 << 20, DownAfter: 2 * time.Second, DownOutInterval: time.Hour,
			GCDelay: time.Second, GCInterval: 300 * time.Millisecond, RepairInterval: 300 * time.Millisecond,
			RepairBandwidth: -1,
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		cancel()
	})
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c, cl
}

func objectCount() int {
	if testing.Short() {
		return 200
	}
	return 2000
}

// TestRepairAfterLosingTwoServers loses two of eight chunk servers (4+2,
// four zones): reads go around them during the grace period; once they are
// out, repair, interrupted by a metadata restart, rebuilds every lost shard
// on the survivors; when the dead servers return, their stale shards are
// deleted.
func TestRepairAfterLosingTwoServers(t *testing.T) {
	ctx := context.Background()
	c, cl := startCluster(t, 8)
	objs := newCorpus(objectCount())
	if err := objs.write(ctx, cl); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d objects, %d MiB", objs.n, objs.total>>20)

	dead := map[string]bool{}
	for _, i := range []int{1, 6} { // zones 1 and 2
		dead[c.Chunks[i].Server.ID()] = true
		c.KillChunk(i)
	}
	if err := objs.verify(ctx, cl); err != nil {
		t.Fatalf("degraded read within the grace period: %v", err)
	}
	st, err := cl.Meta().ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.State == metaapi.NodeOut {
			t.Fatalf("node %s went out during the grace period", n.ID)
		}
	}
	if st.Repair.Done != 0 {
		t.Fatalf("repair ran during the grace period: %+v", st.Repair)
	}

	// A short grace period now, and a bandwidth limit so the repair is
	// still under way when the metadata service restarts.
	rebuilt := objs.total * 6 / 4 / 4
	c.SetMetaConfig(func(cfg *meta.Config) {
		cfg.DownOutInterval = time.Second
		cfg.RepairBandwidth = max(rebuilt/8, 1<<20)
	})
	if err := c.StopMeta(0); err != nil {
		t.Fatal(err)
	}
	if err := c.StartMeta(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "repair under way", func() (bool, error) {
		r, err := cl.Meta().RepairStatus(ctx)
		return err == nil && r.Done > 0 && r.Queued > 10, err
	})
	before, _ := cl.Meta().RepairStatus(ctx)
	c.SetMetaConfig(func(cfg *meta.Config) { cfg.RepairBandwidth = -1 })
	if err := c.StopMeta(0); err != nil {
		t.Fatal(err)
	}
	if err := c.StartMeta(0); err != nil {
		t.Fatal(err)
	}
	after, err := cl.Meta().RepairStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Done < before.Done || after.Queued+after.InFlight == 0 && after.Done == before.Done {
		t.Fatalf("repair state lost in the restart: before %+v, after %+v", before, after)
	}
	t.Logf("metadata restarted mid-repair: %d segments done, %d queued", before.Done, before.Queued)
	waitFor(t, 150*time.Second, "repair finished", func() (bool, error) {
		r, err := cl.Meta().RepairStatus(ctx)
		return err == nil && r.Queued == 0 && r.InFlight == 0 && r.Done > before.Done, err
	})
	r, _ := cl.Meta().RepairStatus(ctx)
	t.Logf("repair: %d segments, %d shards, %d MiB rebuilt", r.Done, r.Shards, r.Bytes>>20)

	// Six surviving servers in four zones: zones 1 and 2 have one each, so
	// at most two shards share a zone.
	if err := objs.checkSegments(ctx, cl, dead, 2); err != nil {
		t.Fatal(err)
	}
	if err := objs.headShards(ctx, cl, c.Secret()); err != nil {
		t.Fatal(err)
	}
	if err := objs.verify(ctx, cl); err != nil {
		t.Fatalf("after repair: %v", err)
	}

	// The dead servers return with their old directories: every shard they
	// hold was rebuilt elsewhere, so all of it goes.
	for _, i := range []int{1, 6} {
		if n := shardFiles(c.ChunkDir(i)); n == 0 {
			t.Fatalf("chunk server %d's directory holds no shards to begin with", i)
		}
		if err := c.StartChunk(i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "stale shards deleted", func() (bool, error) {
		return shardFiles(c.ChunkDir(1))+shardFiles(c.ChunkDir(6)) == 0, nil
	})
	if err := objs.verify(ctx, cl); err != nil {
		t.Fatalf("after the dead servers returned: %v", err)
	}
}

// TestRebalanceAndDrain adds two servers to eight and rebalances, with a
// chunk server killed and restarted midway, then drains one server.
func TestRebalanceAndDrain(t *testing.T) {
	ctx := context.Background()
	c, cl := startCluster(t, 8)
	objs := newCorpus(objectCount() / 2)
	if err := objs.write(ctx, cl); err != nil {
		t.Fatal(err)
	}
	st0, err := cl.Meta().ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]int64{}
	for _, n := range st0.Nodes {
		old[n.ID] = n.Shards
	}

	added := map[string]bool{}
	for range 2 {
		i, err := c.AddChunk()
		if err != nil {
			t.Fatal(err)
		}
		added[c.Chunks[i].Server.ID()] = true
	}
	if err := c.WaitRegistered(ctx, 10); err != nil {
		t.Fatal(err)
	}
	plan, err := cl.Meta().RebalancePlan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %d moves, ideal %d, %d MiB", plan.Moves, plan.Ideal, plan.Bytes>>20)
	if plan.Moves == 0 || float64(plan.Moves) > 1.15*float64(plan.Ideal) {
		t.Fatalf("plan moves %d shards; the ideal is %d", plan.Moves, plan.Ideal)
	}
	for _, n := range plan.Nodes {
		if n.In > 0 && !added[n.ID] {
			t.Fatalf("plan moves %d shards onto %s, an old server", n.In, n.ID)
		}
	}

	// Limit the bandwidth so the rebalance takes a few seconds and a chunk
	// server can die in the middle of it.
	c.SetMetaConfig(func(cfg *meta.Config) { cfg.RepairBandwidth = max(plan.Bytes/6, 256<<10) })
	if err := c.StopMeta(0); err != nil {
		t.Fatal(err)
	}
	if err := c.StartMeta(0); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Meta().StartRebalance(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "rebalance under way", func() (bool, error) {
		st, err := cl.Meta().RebalanceStatus(ctx)
		return err == nil && st.Done > 0, err
	})
	c.KillChunk(3)
	if st, err := cl.Meta().RebalanceStatus(ctx); err != nil || !st.Running {
		t.Fatalf("rebalance over before the kill: %+v, %v", st, err)
	}
	time.Sleep(3 * time.Second) // long enough to be marked down
	if err := c.StartChunk(3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 150*time.Second, "rebalance finished", func() (bool, error) {
		st, err := cl.Meta().RebalanceStatus(ctx)
		return err == nil && !st.Running && !st.Finished.IsZero(), err
	})
	rs, _ := cl.Meta().RebalanceStatus(ctx)
	t.Logf("rebalance: %d shards moved, %d MiB", rs.Done, rs.Bytes>>20)
	if float64(rs.Done) > 1.15*float64(plan.Ideal) {
		t.Fatalf("rebalance moved %d shards; the ideal is %d", rs.Done, plan.Ideal)
	}
	st1, err := cl.Meta().ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st1.Nodes {
		if !added[n.ID] && n.Shards > old[n.ID] {
			t.Fatalf("old server %s went from %d to %d shards", n.ID, old[n.ID], n.Shards)
		}
	}
	if err := objs.checkSegments(ctx, cl, nil, 2); err != nil {
		t.Fatal(err)
	}
	if err := objs.verify(ctx, cl); err != nil {
		t.Fatalf("after rebalance: %v", err)
	}

	// Drain server 0: refused removal while it holds shards, then empty.
	id := c.Chunks[0].Server.ID()
	if err := cl.Meta().RemoveNode(ctx, id); !errors.Is(err, metaapi.ErrConflict) || !strings.Contains(err.Error(), "still holds") {
		t.Fatalf("removing a server that holds shards: %v", err)
	}
	if err := cl.Meta().DrainNode(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 150*time.Second, "server drained", func() (bool, error) {
		st, err := cl.Meta().ClusterStatus(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.ID == id {
				return n.State == metaapi.NodeDraining && n.Shards == 0 && st.Repair.Queued == 0, nil
			}
		}
		return false, errors.New("drained server is gone from the status")
	})
	waitFor(t, 30*time.Second, "drained server's files deleted", func() (bool, error) {
		return shardFiles(c.ChunkDir(0)) == 0, nil
	})
	if err := c.StopChunk(0); err != nil {
		t.Fatal(err)
	}
	if err := cl.Meta().RemoveNode(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := objs.checkSegments(ctx, cl, map[string]bool{id: true}, 2); err != nil {
		t.Fatal(err)
	}
	if err := objs.headShards(ctx, cl, c.Secret()); err != nil {
		t.Fatal(err)
	}
	if err := objs.verify(ctx, cl); err != nil {
		t.Fatalf("after drain: %v", err)
	}
}
