package placement

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestDistinct places on many random rings (sizes, zones and weights) and
// checks every placement: n distinct members of the ring, the tightest zone
// spread possible, and the same answer from Place, AppendPlace and Fill.
func TestDistinct(t *testing.T) {
	rings, perRing := sized(300, 100), sized(300, 100)
	rng := rand.New(rand.NewPCG(1, 2))
	weights := []float64{0.25, 1, 1, 1, 1.5, 2, 3.7, 10}
	for ri := range rings {
		size := 1 + rng.IntN(60)
		zones := 1 + rng.IntN(8)
		nodes := make([]Node, size)
		for i := range nodes {
			nodes[i] = Node{
				ID:     fmt.Sprintf("node-%d-%d", ri, i),
				Zone:   fmt.Sprintf("zone-%d", rng.IntN(zones)),
				Weight: weights[rng.IntN(len(weights))],
			}
		}
		r := mustRing(t, nodes)
		zoneOf := map[string]string{}
		for _, nd := range nodes {
			zoneOf[nd.ID] = nd.Zone
		}
		for _, n := range []int{1, 3, 6, 9, 14} {
			if n > size {
				if _, err := r.Place("00", n); !errors.Is(err, ErrNotEnoughNodes) {
					t.Fatalf("ring %d: %d shards on %d nodes: got %v, want ErrNotEnoughNodes", ri, n, size, err)
				}
				continue
			}
			zcap := minZoneCap(nodes, n)
			var dst []string
			for _, seg := range segmentIDs(uint64(ri), perRing) {
				got, err := r.Place(seg, n)
				if err != nil {
					t.Fatalf("ring %d: place %s (%d shards on %d nodes): %v", ri, seg, n, size, err)
				}
				if len(got) != n {
					t.Fatalf("ring %d: place %s: got %d nodes, want %d", ri, seg, len(got), n)
				}
				perZone := map[string]int{}
				seen := map[string]bool{}
				for _, id := range got {
					z, ok := zoneOf[id]
					if !ok {
						t.Fatalf("ring %d: place %s: %q is not in the ring", ri, seg, id)
					}
					if seen[id] {
						t.Fatalf("ring %d: place %s: %v repeats %s", ri, seg, got, id)
					}
					seen[id] = true
					perZone[z]++
				}
				for z, c := range perZone {
					if c > zcap {
						t.Fatalf("ring %d: place %s: zone %s holds %d of %d shards, the ring allows %d", ri, seg, z, c, n, zcap)
					}
				}
				dst, err = r.AppendPlace(dst[:0], seg, n)
				if err != nil || !slices.Equal(dst, got) {
					t.Fatalf("ring %d: AppendPlace(%s) = %v, %v; Place = %v", ri, seg, dst, err, got)
				}
				if ri%10 == 0 {
					fill, err := r.Fill(seg, n, nil, nil)
					if err != nil || !slices.Equal(fill, got) {
						t.Fatalf("ring %d: Fill(%s) = %v, %v; Place = %v", ri, seg, fill, err, got)
					}
				}
			}
		}
	}
}

// TestLimit checks that ranking the likely winners first (Ring.limit) only
// saves time: placements are the same when every node is ranked in one pass,
// and when the first pass always comes up short.
func TestLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for ri := range sized(200, 50) {
		nodes := make([]Node, 1+rng.IntN(80))
		for i := range nodes {
			nodes[i] = Node{ID: fmt.Sprintf("%d", i), Zone: fmt.Sprintf("%d", rng.IntN(1+ri%7)), Weight: 0.5 + rng.Float64()*float64(ri%4)}
		}
		r := mustRing(t, nodes)
		onePass := *r
		onePass.limit = nil
		starved := *r
		starved.limit = slices.Repeat([]float64{1e-300}, len(r.limit))
		for _, seg := range segmentIDs(uint64(ri), 200) {
			n := 1 + rng.IntN(len(nodes))
			want, err := onePass.Place(seg, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, rr := range []*Ring{r, &starved} {
				if got, err := rr.Place(seg, n); err != nil || !slices.Equal(got, want) {
					t.Fatalf("ring %d, segment %s, %d shards: got %v, %v; want %v", ri, seg, n, got, err, want)
				}
			}
			have, exclude := want[:n/2], []string{nodes[rng.IntN(len(nodes))].ID}
			wantFill, wantErr := onePass.Fill(seg, n, have, exclude)
			for _, rr := range []*Ring{r, &starved} {
				got, err := rr.Fill(seg, n, have, exclude)
				if (err == nil) != (wantErr == nil) || !slices.Equal(got, wantFill) {
					t.Fatalf("ring %d, segment %s: Fill(%d, %v, %v) = %v, %v; want %v, %v", ri, seg, n, have, exclude, got, err, wantFill, wantErr)
				}
			}
		}
	}
}

func TestZoneSpread(t *testing.T) {
	zoned := func(sizes ...int) []Node {
		var nodes []Node
		for z, size := range sizes {
			for i := range size {
				nodes = append(nodes, Node{ID: fmt.Sprintf("%c%d", 'a'+z, i), Zone: string(rune('a' + z)), Weight: 1})
			}
		}
		return nodes
	}
	for _, tc := range []struct {
		name  string
		nodes []Node
		n     int
		// per zone, the fewest and most shards every placement must have
		lo, hi []int
	}{
		{"3 zones", zoned(4, 4, 4), 6, []int{2, 2, 2}, []int{2, 2, 2}},
		{"3 uneven zones", zoned(10, 3, 2), 6, []int{2, 2, 2}, []int{2, 2, 2}},
		{"4 zones", zoned(5, 5, 5, 5), 6, []int{0, 0, 0, 0}, []int{2, 2, 2, 2}},
		{"6 zones", zoned(3, 3, 3, 3, 3, 3), 6, []int{1, 1, 1, 1, 1, 1}, []int{1, 1, 1, 1, 1, 1}},
		{"1 zone", zoned(8), 6, []int{6}, []int{6}},
		{"1 zone exact", zoned(6), 6, []int{6}, []int{6}},
		// Too few nodes outside zone a for 2 per zone: relax, as little
		// as possible.
		{"relaxed", zoned(10, 1, 1), 6, []int{4, 1, 1}, []int{4, 1, 1}},
		{"relaxed 4 zones", zoned(10, 2, 1, 1), 9, []int{5, 2, 1, 1}, []int{5, 2, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRing(t, tc.nodes)
			for _, seg := range segmentIDs(3, 2000) {
				got, err := r.Place(seg, tc.n)
				if err != nil {
					t.Fatal(err)
				}
				counts := make([]int, len(tc.lo))
				for _, id := range got {
					counts[id[0]-'a']++
				}
				for z := range counts {
					if counts[z] < tc.lo[z] || counts[z] > tc.hi[z] {
						t.Fatalf("place %s: %v has %d shards in zone %c, want %d..%d", seg, got, counts[z], 'a'+z, tc.lo[z], tc.hi[z])
					}
				}
			}
		})
	}
}

// TestFiftyServers checks load balance and movement on 50 equal servers in 5
// zones, over a million segments of 4+2 shards.
func TestFiftyServers(t *testing.T) {
	segments := sized(1_000_000, 200_000)
	const n = 6
	ids := segmentIDs(50, segments)
	nodes := equalNodes(51, 5)
	ord := ordinals(nodes)
	base := mustRing(t, nodes[:50])
	old := placeMasks(t, base, ids, n, ord)

	t.Run("Balance", func(t *testing.T) {
		var load [50]int
		for _, m := range old {
			for ; m != 0; m &= m - 1 {
				load[bits.TrailingZeros64(m)]++
			}
		}
		mean := float64(segments*n) / 50
		lo, hi := slices.Min(load[:]), slices.Max(load[:])
		t.Logf("shards per server: mean %.0f, min %d (%.4fx), max %d (%.4fx)", mean, lo, float64(lo)/mean, hi, float64(hi)/mean)
		if float64(hi) > 1.05*mean {
			t.Errorf("most loaded server holds %d shards, more than 1.05x the mean %.0f", hi, mean)
		}
		if float64(lo) < 0.95*mean {
			t.Errorf("least loaded server holds %d shards, less than 0.95x the mean %.0f", lo, mean)
		}
	})

	t.Run("AddServer", func(t *testing.T) {
		grown := mustRing(t, nodes) // n50 joins zone z0
		added := uint64(1) << 50
		moved := 0
		for s, m := range placeMasks(t, grown, ids, n, ord) {
			gained := m &^ old[s]
			if gained&^added != 0 {
				t.Fatalf("segment %s: adding n50 moved shards onto other servers: %x -> %x", ids[s], old[s], m)
			}
			moved += bits.OnesCount64(gained)
		}
		ideal := float64(segments*n) / 51
		t.Logf("moved %d shards, %.4fx the new server's fair share %.0f", moved, float64(moved)/ideal, ideal)
		if float64(moved) > 1.1*ideal {
			t.Errorf("moved %d shards, more than 1.1x the new server's fair share %.0f", moved, ideal)
		}
		if moved == 0 {
			t.Errorf("the new server got nothing")
		}
	})

	t.Run("RemoveServer", func(t *testing.T) {
		const gone = 17
		rest := slices.Delete(slices.Clone(nodes[:50]), gone, gone+1)
		bit := uint64(1) << gone
		moved := 0
		for s, m := range placeMasks(t, mustRing(t, rest), ids, n, ord) {
			if old[s]&bit == 0 && m != old[s] {
				t.Fatalf("segment %s had nothing on n%d, but moved: %x -> %x", ids[s], gone, old[s], m)
			}
			if old[s]&^bit&^m != 0 {
				t.Fatalf("segment %s: removing n%d took shards off others: %x -> %x", ids[s], gone, old[s], m)
			}
			moved += bits.OnesCount64(m &^ old[s])
		}
		t.Logf("moved %d shards", moved)
	})
}

// TestWeights checks that servers hold shards in proportion to their weight.
func TestWeights(t *testing.T) {
	segments := sized(1_000_000, 200_000)
	t.Run("OneDouble", func(t *testing.T) {
		nodes := equalNodes(50, 1)
		nodes[7].Weight = 2
		load := shardLoad(t, nodes, segmentIDs(7, segments), 6)
		light := 0.0
		for i, l := range load {
			if i != 7 {
				light += float64(l)
			}
		}
		light /= 49
		ratio := float64(load[7]) / light
		t.Logf("weight-2 server holds %.4fx an average weight-1 server", ratio)
		if math.Abs(ratio-2) > 0.1 {
			t.Errorf("weight-2 server holds %.4fx an average weight-1 server, want 2x ±5%%", ratio)
		}
	})

	mixed := func(ws ...float64) []Node {
		nodes := make([]Node, len(ws))
		for i, w := range ws {
			nodes[i] = Node{ID: fmt.Sprintf("m%02d", i), Weight: w}
		}
		return nodes
	}
	for _, tc := range []struct {
		name  string
		nodes []Node
		n     int
	}{
		{"1to4", mixed(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4), 6},
		{"20x1 20x4", mixed(slices.Repeat([]float64{1, 4}, 20)...), 6},
		{"capped", mixed(1, 1, 1, 1, 2, 2, 3, 3), 6}, // the 3s belong in every segment
		{"tebibytes", mixed(0.93, 1.82, 1.82, 3.64, 3.64, 3.64, 7.28, 7.28, 0.93, 1.82, 14.55, 3.64), 6},
		{"wide", mixed(4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23), 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := sized(250_000, 100_000)
			load := shardLoad(t, tc.nodes, segmentIDs(11, count), tc.n)
			worst := 0.0
			for i, share := range fairShares(tc.nodes, tc.n) {
				got := float64(load[i]) / float64(count)
				dev := got/share - 1
				if math.Abs(dev) > math.Abs(worst) {
					worst = dev
				}
				if math.Abs(dev) > 0.05 {
					t.Errorf("%s (weight %v) is in %.4f of segments, want %.4f ±5%%", tc.nodes[i].ID, tc.nodes[i].Weight, got, share)
				}
			}
			t.Logf("worst deviation from fair share: %+.2f%%", 100*worst)
		})
	}
}

// shardLoad returns how many of the segments each node holds a shard of.
func shardLoad(t *testing.T, nodes []Node, ids []string, n int) []int {
	t.Helper()
	load := make([]int, len(nodes))
	for _, m := range placeMasks(t, mustRing(t, nodes), ids, n, ordinals(nodes)) {
		for ; m != 0; m &= m - 1 {
			load[bits.TrailingZeros64(m)]++
		}
	}
	return load
}

// TestHeterogeneousMovement measures what the weight correction costs in
// movement: with unequal weights, a new node changes every node's share a
// little, and so the order of some pairs of existing nodes (see doc.go).
func TestHeterogeneousMovement(t *testing.T) {
	segments := sized(200_000, 50_000)
	ids := segmentIDs(13, segments)
	nodes := make([]Node, 41)
	for i := range nodes {
		nodes[i] = Node{ID: fmt.Sprintf("h%02d", i), Zone: fmt.Sprintf("z%d", i%5), Weight: float64(1 + i%4)}
	}
	ord := ordinals(nodes)
	old := placeMasks(t, mustRing(t, nodes[:40]), ids, 6, ord)
	for _, w := range []float64{1, 4} {
		nodes[40].Weight = w
		grown := placeMasks(t, mustRing(t, nodes), ids, 6, ord)
		added := uint64(1) << 40
		onNew, elsewhere := 0, 0
		for s := range old {
			gained := grown[s] &^ old[s]
			onNew += bits.OnesCount64(gained & added)
			elsewhere += bits.OnesCount64(gained &^ added)
		}
		total := float64(segments * 6)
		t.Logf("adding a weight-%v node (fair share %.3f%%): %.3f%% of shards move to it, %.3f%% between old nodes",
			w, 100*w/(100+w), 100*float64(onNew)/total, 100*float64(elsewhere)/total)
		if float64(elsewhere) > 0.01*total {
			t.Errorf("adding a weight-%v node moved %d of %.0f shards between old nodes, more than 1%%", w, elsewhere, total)
		}
	}
}

// TestDeclustering checks that the other shards of a server's segments are
// spread evenly over all other servers, so that rebuilding a lost server
// reads from, and writes to, the whole cluster in parallel.
func TestDeclustering(t *testing.T) {
	segments := sized(1_000_000, 200_000)
	nodes := equalNodes(20, 1)
	var pairs [20][20]int
	for _, m := range placeMasks(t, mustRing(t, nodes), segmentIDs(31, segments), 6, ordinals(nodes)) {
		for a := m; a != 0; a &= a - 1 {
			i := bits.TrailingZeros64(a)
			for b := a & (a - 1); b != 0; b &= b - 1 {
				pairs[i][bits.TrailingZeros64(b)]++
			}
		}
	}
	want := float64(segments) * 15 / 190 // 6 choose 2 of 20 choose 2
	for i := range pairs {
		for j := i + 1; j < len(pairs); j++ {
			if got := float64(pairs[i][j]); math.Abs(got/want-1) > 0.05 {
				t.Errorf("servers %d and %d share %.0f segments, want %.0f ±5%%", i, j, got, want)
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	nodes := make([]Node, 40)
	for i := range nodes {
		nodes[i] = Node{ID: fmt.Sprintf("srv-%d", i), Zone: fmt.Sprintf("z%d", i%3), Weight: float64(1 + i%5)}
	}
	a := mustRing(t, nodes)
	shuffled := slices.Clone(nodes)
	rand.New(rand.NewPCG(5, 5)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b, err := NewRing(99, shuffled)
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range segmentIDs(17, 20000) {
		for _, n := range []int{6, 11} {
			p1, err1 := a.Place(seg, n)
			p2, err2 := a.Place(seg, n)
			p3, err3 := b.Place(seg, n)
			if err := errors.Join(err1, err2, err3); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p1, p2) || !slices.Equal(p1, p3) {
				t.Fatalf("place %s: %v, then %v, then on the shuffled ring %v", seg, p1, p2, p3)
			}
		}
	}
}

// TestGolden pins placements. The metadata service records where shards are,
// so a change here does not lose data, but it makes the rebalancer move
// nearly everything: change the algorithm only on purpose. The values are the
// same on every architecture.
func TestGolden(t *testing.T) {
	nodes := []Node{
		{"a1", "a", 1}, {"a2", "a", 2}, {"a3", "a", 1},
		{"b1", "b", 1}, {"b2", "b", 1.5}, {"b3", "b", 1},
		{"c1", "c", 4}, {"c2", "c", 1}, {"c3", "c", 0.5},
		{"d1", "d", 1},
	}
	r := mustRing(t, nodes)
	for _, tc := range []struct {
		seg  string
		n    int
		want string
	}{
		{"00000000000000000000000000000000", 6, golden[0]},
		{"0123456789abcdef0123456789abcdef", 6, golden[1]},
		{"ffffffffffffffffffffffffffffffff", 6, golden[2]},
		{"5f2b1e0c9d8a7b6c5f2b1e0c9d8a7b6c", 3, golden[3]},
		{"5f2b1e0c9d8a7b6c5f2b1e0c9d8a7b6c", 10, golden[4]},
	} {
		got, err := r.Place(tc.seg, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("Place(%s, %d) = %s, want %s", tc.seg, tc.n, s, tc.want)
		}
	}
}

var golden = []string{
	"a2 c1 b2 c3 d1 a3",
	"c1 a2 d1 a1 c2 b1",
	"a2 c1 b1 b2 a3 d1",
	"a2 c3 b2",
	"c3 a2 b2 b1 d1 a1 a3 c2 b3 c1",
}

func TestFill(t *testing.T) {
	nodes := equalNodes(30, 5)
	r := mustRing(t, nodes)
	zoneOf := map[string]string{}
	for _, nd := range nodes {
		zoneOf[nd.ID] = nd.Zone
	}
	rng := rand.New(rand.NewPCG(9, 9))

	t.Run("LikeRemoval", func(t *testing.T) {
		// Losing one node and refilling gives what Place gives on a ring
		// without it: the repair target is the next best node that keeps
		// the spread.
		for _, seg := range segmentIDs(19, 3000) {
			placed, err := r.Place(seg, 6)
			if err != nil {
				t.Fatal(err)
			}
			lost := placed[rng.IntN(len(placed))]
			have := slices.DeleteFunc(slices.Clone(placed), func(id string) bool { return id == lost })
			got, err := r.Fill(seg, 6, have, []string{lost})
			if err != nil {
				t.Fatal(err)
			}
			without := slices.DeleteFunc(slices.Clone(nodes), func(n Node) bool { return n.ID == lost })
			want, err := mustRing(t, without).Place(seg, 6)
			if err != nil {
				t.Fatal(err)
			}
			want = slices.DeleteFunc(want, func(id string) bool { return slices.Contains(have, id) })
			if !slices.Equal(got, want) {
				t.Fatalf("segment %s on %v lost %s: Fill gave %v, Place without it %v", seg, placed, lost, got, want)
			}
		}
	})

	t.Run("Constraints", func(t *testing.T) {
		for _, seg := range segmentIDs(23, 3000) {
			perm := rng.Perm(len(nodes))
			var have, exclude []string
			for _, i := range perm[:rng.IntN(6)] {
				have = append(have, nodes[i].ID)
			}
			for _, i := range perm[6 : 6+rng.IntN(10)] {
				exclude = append(exclude, nodes[i].ID)
			}
			got, err := r.Fill(seg, 6, have, exclude)
			if err != nil {
				t.Fatal(err)
			}
			if len(got)+len(have) != 6 {
				t.Fatalf("Fill(%s, 6, %v, %v) = %v: wrong count", seg, have, exclude, got)
			}
			perZone := map[string]int{}
			for _, id := range have {
				perZone[zoneOf[id]]++
			}
			for _, id := range got {
				if slices.Contains(have, id) || slices.Contains(exclude, id) {
					t.Fatalf("Fill(%s, 6, %v, %v) = %v: chose %s", seg, have, exclude, got, id)
				}
				perZone[zoneOf[id]]++
			}
			// With at most 9 of 30 nodes excluded, 2 per zone stays
			// reachable: Fill may only add to zones below that.
			for z, c := range perZone {
				if c > 2 && slices.ContainsFunc(got, func(id string) bool { return zoneOf[id] == z }) {
					t.Fatalf("Fill(%s, 6, %v, %v) = %v: %d shards in zone %s", seg, have, exclude, got, c, z)
				}
			}
		}
	})

	t.Run("CrowdedZone", func(t *testing.T) {
		// Shards written under an older ring can crowd a zone; refilling
		// must not add to it while other zones have room.
		have := []string{"n00", "n05", "n10"} // all in z0
		for _, seg := range segmentIDs(29, 500) {
			got, err := r.Fill(seg, 6, have, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range got {
				if zoneOf[id] == "z0" {
					t.Fatalf("Fill(%s) = %v: adds to crowded zone z0", seg, got)
				}
			}
		}
	})

	t.Run("Foreign", func(t *testing.T) {
		// A node no longer in the ring still holds a shard: it counts.
		got, err := r.Fill("abc", 6, []string{"gone", "n01", "gone"}, nil)
		if err != nil || len(got) != 4 {
			t.Fatalf("Fill with a foreign holder = %v, %v; want 4 nodes", got, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		var ids []string
		for _, nd := range nodes[:26] {
			ids = append(ids, nd.ID)
		}
		_, err := r.Fill("abc", 6, []string{"n28"}, ids)
		if !errors.Is(err, ErrNotEnoughNodes) || !strings.Contains(err.Error(), "need 5 more distinct nodes, 3 eligible") {
			t.Errorf("Fill with 3 eligible nodes for 5: %v", err)
		}
		if _, err := r.Fill("abc", 2, ids[:3], nil); err == nil || errors.Is(err, ErrNotEnoughNodes) {
			t.Errorf("Fill with more holders than shards: %v", err)
		}
		if got, err := r.Fill("abc", 3, ids[:3], nil); err != nil || len(got) != 0 {
			t.Errorf("Fill with nothing missing = %v, %v", got, err)
		}
	})
}

func TestPlaceErrors(t *testing.T) {
	r := mustRing(t, equalNodes(4, 2))
	_, err := r.Place("abc", 6)
	if !errors.Is(err, ErrNotEnoughNodes) || !strings.Contains(err.Error(), "need 6 distinct nodes, ring has 4") {
		t.Errorf("6 shards on 4 nodes: %v", err)
	}
	if _, err := r.AppendPlace(nil, "abc", 0); err == nil || errors.Is(err, ErrNotEnoughNodes) {
		t.Errorf("0 shards: %v", err)
	}
	empty := mustRing(t, nil)
	if _, err := empty.Place("abc", 1); !errors.Is(err, ErrNotEnoughNodes) {
		t.Errorf("empty ring: %v", err)
	}
}

func TestNewRing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []Node
	}{
		{"empty id", []Node{{ID: "", Weight: 1}}},
		{"duplicate", []Node{{ID: "x", Weight: 1}, {ID: "y", Weight: 1}, {ID: "x", Zone: "b", Weight: 2}}},
		{"zero weight", []Node{{ID: "x", Weight: 0}}},
		{"negative weight", []Node{{ID: "x", Weight: -1}}},
		{"NaN weight", []Node{{ID: "x", Weight: math.NaN()}}},
		{"infinite weight", []Node{{ID: "x", Weight: math.Inf(1)}}},
		{"overflow", []Node{{ID: "x", Weight: math.MaxFloat64}, {ID: "y", Weight: math.MaxFloat64}}},
	} {
		if _, err := NewRing(1, tc.nodes); !errors.Is(err, ErrInvalidRing) {
			t.Errorf("%s: got %v, want ErrInvalidRing", tc.name, err)
		}
	}

	in := []Node{{"b", "z1", 2}, {"a", "z2", 1}}
	r, err := NewRing(7, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 7 || r.Len() != 2 {
		t.Errorf("Version, Len = %d, %d; want 7, 2", r.Version(), r.Len())
	}
	got := r.Nodes()
	if want := []Node{in[1], in[0]}; !slices.Equal(got, want) {
		t.Errorf("Nodes() = %v, want %v", got, want)
	}
	got[0].ID = "mutated"
	in[0].ID = "mutated too"
	if r.Nodes()[0].ID != "a" || r.Nodes()[1].ID != "b" {
		t.Errorf("ring shares memory with its caller: %v", r.Nodes())
	}
}
