package placement

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// sized returns full, or reduced in -short mode and under the race detector.
func sized(full, reduced int) int {
	if testing.Short() || raceEnabled {
		return reduced
	}
	return full
}

// segmentIDs returns count random 32-hex-digit segment IDs, the same for the
// same seed.
func segmentIDs(seed uint64, count int) []string {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	ids := make([]string, count)
	var b [16]byte
	for i := range ids {
		binary.LittleEndian.PutUint64(b[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(b[8:], rng.Uint64())
		ids[i] = hex.EncodeToString(b[:])
	}
	return ids
}

// equalNodes returns count nodes of weight 1 named n00, n01, ... spread
// round-robin over zones zones.
func equalNodes(count, zones int) []Node {
	nodes := make([]Node, count)
	for i := range nodes {
		nodes[i] = Node{ID: fmt.Sprintf("n%02d", i), Zone: fmt.Sprintf("z%d", i%zones), Weight: 1}
	}
	return nodes
}

func mustRing(t testing.TB, nodes []Node) *Ring {
	t.Helper()
	r, err := NewRing(1, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// placeMasks places every segment on r and returns each placement as a
// bitmask over ordinal, which numbers at most 64 node IDs. The work is split
// over all CPUs, which also exercises concurrent use of a Ring.
func placeMasks(t testing.TB, r *Ring, ids []string, n int, ordinal map[string]int) []uint64 {
	t.Helper()
	masks := make([]uint64, len(ids))
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			dst := make([]string, 0, n)
			for s := w; s < len(ids); s += workers {
				var err error
				dst, err = r.AppendPlace(dst[:0], ids[s], n)
				if err != nil {
					errs[w] = err
					return
				}
				for _, id := range dst {
					masks[s] |= 1 << ordinal[id]
				}
				if bits.OnesCount64(masks[s]) != n {
					errs[w] = fmt.Errorf("segment %s: placement %v is not %d distinct nodes", ids[s], dst, n)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return masks
}

// ordinals numbers the IDs of nodes by their position.
func ordinals(nodes []Node) map[string]int {
	m := make(map[string]int, len(nodes))
	for i, n := range nodes {
		m[n.ID] = i
	}
	return m
}

// fairShares returns each node's expected fraction of segments it holds a
// shard of, n*w/W, with nodes whose fraction would exceed 1 held at 1 and
// their surplus shared by the rest. It is written independently of the
// package's own capping so that it can check it.
func fairShares(nodes []Node, n int) []float64 {
	share := make([]float64, len(nodes))
	full := make([]bool, len(nodes))
	for {
		left, slots := 0.0, float64(n)
		for i, nd := range nodes {
			if full[i] {
				slots--
			} else {
				left += nd.Weight
			}
		}
		changed := false
		for i, nd := range nodes {
			if !full[i] {
				share[i] = slots * nd.Weight / left
				if share[i] >= 1 {
					full[i], changed = true, true
				}
			}
		}
		if !changed {
			break
		}
	}
	for i := range share {
		if full[i] {
			share[i] = 1
		}
	}
	return share
}

// minZoneCap is the smallest per-zone maximum any placement of n shards on
// nodes can have.
func minZoneCap(nodes []Node, n int) int {
	sizes := map[string]int{}
	for _, nd := range nodes {
		sizes[nd.Zone]++
	}
	for c := 1; ; c++ {
		total := 0
		for _, s := range sizes {
			total += min(c, s)
		}
		if total >= n {
			return c
		}
	}
}
