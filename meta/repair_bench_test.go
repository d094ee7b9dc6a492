package meta_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

// TestRepairBenchmark measures repair: the rate of rebuilt shard data and the
// time to full redundancy after losing one of eight chunk servers, and how
// much foreground PUT and GET throughput repair at the default bandwidth
// costs. It writes TALUS_REPAIR_BENCH_GIB GiB (default 12, so that each
// server holds about 2 GiB of shards) and runs only when TALUS_REPAIR_BENCH
// is set:
//
//	TALUS_REPAIR_BENCH=1 go test -run TestRepairBenchmark -v -timeout 30m ./meta/
func TestRepairBenchmark(t *testing.T) {
	if os.Getenv("TALUS_REPAIR_BENCH") == "" {
		t.Skip("set TALUS_REPAIR_BENCH=1 to run the repair benchmark")
	}
	gib := 12.0
	if v, err := strconv.ParseFloat(os.Getenv("TALUS_REPAIR_BENCH_GIB"), 64); err == nil && v > 0 {
		gib = v
	}
	ctx := context.Background()
	c, cl := startCluster(t, 8)
	c.SetMetaConfig(func(cfg *meta.Config) {
		cfg.SegmentSize = 64 << 20
		cfg.RepairBandwidth = 0 // the default
		cfg.DownOutInterval = time.Second
	})
	restartMeta(t, c)
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: bucket}); err != nil {
		t.Fatal(err)
	}
	const objSize = 64 << 20
	n := int(gib * (1 << 30) / objSize)
	body := bytes.Repeat([]byte("0123456789abcdef"), objSize/16)
	start := time.Now()
	if err := parallel(n, func(i int) error {
		_, err := cl.Put(ctx, bucket, fmt.Sprintf("big/%05d", i), bytes.NewReader(body), objSize, client.PutOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d × 64 MiB in %s", n, time.Since(start).Round(time.Second))

	baseline := foreground(t, cl)
	t.Logf("foreground without repair: PUT %.1f MiB/s, GET %.1f MiB/s", baseline[0], baseline[1])

	// Repair at the default bandwidth, with foreground load.
	id0 := c.Chunks[0].Server.ID()
	lost := killAndWaitOut(t, c, cl, 0)
	during := foreground(t, cl)
	r, _ := cl.Meta().RepairStatus(ctx)
	if r.Queued == 0 && r.InFlight == 0 {
		t.Logf("warning: repair ended before the foreground measurement did")
	}
	t.Logf("foreground during repair at the default rate (%d MiB/s): PUT %.1f MiB/s (%.0f%% lost), GET %.1f MiB/s (%.0f%% lost)",
		r.Bandwidth>>20, during[0], 100*(1-during[0]/baseline[0]), during[1], 100*(1-during[1]/baseline[1]))
	waitRepaired(t, cl, id0, 30*time.Minute)
	t.Logf("server 0 held %d MiB of shards", lost>>20)

	// Repair unlimited: the rate and the time to full redundancy.
	c.SetMetaConfig(func(cfg *meta.Config) { cfg.RepairBandwidth = -1 })
	restartMeta(t, c)
	before, _ := cl.Meta().RepairStatus(ctx)
	killed := time.Now()
	id := c.Chunks[1].Server.ID()
	lost = killAndWaitOut(t, c, cl, 1)
	out := time.Now()
	waitRepaired(t, cl, id, 30*time.Minute)
	done := time.Now()
	after, _ := cl.Meta().RepairStatus(ctx)
	rebuilt := after.Bytes - before.Bytes
	t.Logf("lost server 1 holding %d MiB: %d MiB rebuilt in %s (%.1f MiB/s); full redundancy %s after the kill (grace: down after 2 s, out 1 s later)",
		lost>>20, rebuilt>>20, done.Sub(out).Round(100*time.Millisecond), float64(rebuilt)/(1<<20)/done.Sub(out).Seconds(), done.Sub(killed).Round(100*time.Millisecond))
}

func restartMeta(t *testing.T, c *dev.Cluster) {
	t.Helper()
	if err := c.StopMeta(0); err != nil {
		t.Fatal(err)
	}
	if err := c.StartMeta(0); err != nil {
		t.Fatal(err)
	}
}

// killAndWaitOut kills chunk server i and waits until it is out and repair
// has started, returning the bytes of shards it held.
func killAndWaitOut(t *testing.T, c *dev.Cluster, cl *client.Client, i int) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := cl.Meta().ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := c.Chunks[i].Server.ID()
	var held int64
	for _, n := range st.Nodes {
		if n.ID == id {
			for _, d := range n.Disks {
				held += int64(d.Used)
			}
		}
	}
	c.KillChunk(i)
	waitFor(t, time.Minute, "server out", func() (bool, error) {
		st, err := cl.Meta().ClusterStatus(ctx)
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.ID == id && n.State == metaapi.NodeOut {
				return true, nil
			}
		}
		return false, nil
	})
	return held
}

// waitRepaired waits until the out server holds no shards and the repair
// queue is empty.
func waitRepaired(t *testing.T, cl *client.Client, out string, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, "repair finished", func() (bool, error) {
		st, err := cl.Meta().ClusterStatus(context.Background())
		if err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.ID == out && n.Shards > 0 {
				return false, nil
			}
		}
		return st.Repair.Queued == 0 && st.Repair.InFlight == 0, nil
	})
}

// foreground measures PUT then GET throughput of 1 MiB objects with 8
// clients for 10 s each, in MiB/s.
func foreground(t *testing.T, cl *client.Client) [2]float64 {
	t.Helper()
	ctx := context.Background()
	body := bytes.Repeat([]byte("fedcba9876543210"), 1<<16)
	var res [2]float64
	for phase := range 2 {
		var ops atomic.Int64
		deadline := time.Now().Add(10 * time.Second)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					key := fmt.Sprintf("fg/%d/%d", w, i%64)
					var err error
					if phase == 0 {
						_, err = cl.Put(ctx, bucket, key, bytes.NewReader(body), int64(len(body)), client.PutOptions{})
					} else {
						rd, gerr := cl.Get(ctx, bucket, key, 0, -1)
						if err = gerr; err == nil {
							_, err = io.Copy(io.Discard, rd)
							rd.Close()
						}
					}
					if err == nil {
						ops.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		res[phase] = float64(ops.Load()) / 10
	}
	return res
}
