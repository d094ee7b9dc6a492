package placement

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// ErrNotEnoughNodes is returned (wrapped) when a ring has fewer eligible nodes
// than a segment needs shards.
var ErrNotEnoughNodes = errors.New("not enough nodes")

// ErrInvalidRing is returned (wrapped) by NewRing for a node list it cannot
// place on: an empty or duplicate ID, or a weight that is not a positive
// finite number.
var ErrInvalidRing = errors.New("invalid ring")

// Node is a chunk server as placement sees it.
//
// A ring holds the nodes that should hold data. A node that is draining or out
// is left out of the ring by the caller, so that placement wants its shards
// elsewhere; a node that is briefly unreachable stays in, and writes and
// repairs pass it to Fill as excluded, so that the ring, and with it every
// other segment's placement, does not change.
type Node struct {
	ID string
	// Zone is the failure domain (rack, room, availability zone). Nodes with
	// the same Zone, including the empty one, share a domain.
	Zone string
	// Weight is the node's relative capacity. A node receives shards in
	// proportion to it.
	Weight float64
}

// Ring is an immutable, precomputed view of a set of nodes, safe for
// concurrent use. Placement on a ring depends only on the nodes' IDs, zones
// and weights, never on the order they were given in or on the version.
type Ring struct {
	version uint64
	nodes   []Node    // sorted by ID; an index into it identifies a node
	hash    []uint64  // xxhash of each node's ID
	ratio   []float64 // total weight / node weight
	zone    []int32   // index of each node's zone in zones
	zones   []string  // sorted
	wrank   []int32   // each node's rank by descending weight, ties by ID
	byRank  []int32   // nodes by descending weight: byRank[wrank[i]] == i
	index   map[string]int32

	// Per shard count n (0..len(nodes)), precomputed so Place does no
	// per-call set-up:
	// zoneCap[n] is the most shards one zone may take: the smallest c with
	// sum over zones of min(c, zone size) >= n, which is ceil(n/zones)
	// when every zone has that many nodes.
	zoneCap []int32
	// nCapped[n] is how many of the heaviest nodes are too heavy for their
	// fair share n*w/W to be a probability: they are in every placement.
	// wLeft[n] is the weight of the rest.
	nCapped []int32
	wLeft   []float64
	// limit[n], for n up to maxLimited, is a key that on average only
	// n + 3√n + 3 nodes beat (+Inf where that is most of the ring). Place
	// ranks those first, and usually never has to look at the rest.
	limit []float64
}

const maxLimited = 32

// NewRing builds a ring of nodes. The version is carried along for the
// caller's bookkeeping and does not affect placement.
func NewRing(version uint64, nodes []Node) (*Ring, error) {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	for i, n := range sorted {
		if n.ID == "" {
			return nil, fmt.Errorf("placement: node with zone %q and weight %v: empty ID: %w", n.Zone, n.Weight, ErrInvalidRing)
		}
		if i > 0 && sorted[i-1].ID == n.ID {
			return nil, fmt.Errorf("placement: node %q listed twice: %w", n.ID, ErrInvalidRing)
		}
		if !(n.Weight > 0) || math.IsInf(n.Weight, 0) {
			return nil, fmt.Errorf("placement: node %q: weight %v is not a positive finite number: %w", n.ID, n.Weight, ErrInvalidRing)
		}
	}

	N := len(sorted)
	r := &Ring{
		version: version,
		nodes:   sorted,
		hash:    make([]uint64, N),
		ratio:   make([]float64, N),
		zone:    make([]int32, N),
		wrank:   make([]int32, N),
		byRank:  make([]int32, N),
		index:   make(map[string]int32, N),
		zoneCap: make([]int32, N+1),
		nCapped: make([]int32, N+1),
		wLeft:   make([]float64, N+1),
	}

	// Floating-point sums depend on their order, so everything below runs in
	// an order fixed by the IDs.
	var total float64
	zoneSet := make(map[string]struct{})
	for i, n := range sorted {
		r.hash[i] = xxhash.Sum64String(n.ID)
		r.index[n.ID] = int32(i)
		total += n.Weight
		zoneSet[n.Zone] = struct{}{}
	}
	if math.IsInf(total, 0) {
		return nil, fmt.Errorf("placement: total weight overflows: %w", ErrInvalidRing)
	}
	for i, n := range sorted {
		r.ratio[i] = total / n.Weight
	}

	r.zones = make([]string, 0, len(zoneSet))
	for z := range zoneSet {
		r.zones = append(r.zones, z)
	}
	slices.Sort(r.zones)
	sizes := make([]int, len(r.zones))
	for i, n := range sorted {
		z, _ := slices.BinarySearch(r.zones, n.Zone)
		r.zone[i] = int32(z)
		sizes[z]++
	}
	r.fillZoneCap(sizes)

	for i := range r.byRank {
		r.byRank[i] = int32(i)
	}
	slices.SortStableFunc(r.byRank, func(a, b int32) int { return cmp.Compare(sorted[b].Weight, sorted[a].Weight) })
	for rank, i := range r.byRank {
		r.wrank[i] = int32(rank)
	}
	r.fillCapped(total)
	r.fillLimit()
	return r, nil
}

// fillZoneCap computes zoneCap from the zone sizes.
func (r *Ring) fillZoneCap(sizes []int) {
	sizes = slices.Clone(sizes)
	slices.SortFunc(sizes, func(a, b int) int { return cmp.Compare(b, a) })
	// capacity is sum(min(c, size)); it grows by the number of zones with
	// at least c nodes each time c does.
	c, capacity, big := 0, 0, len(sizes)
	for n := 1; n < len(r.zoneCap); n++ {
		for capacity < n {
			c++
			for big > 0 && sizes[big-1] < c {
				big--
			}
			capacity += big
		}
		r.zoneCap[n] = int32(c)
	}
}

// fillCapped computes nCapped and wLeft. A node's share of n shards is
// n*w/W; where that reaches 1 the node is in every placement, and the
// remaining shards are shared by the remaining weight, which can push the
// next heaviest node over 1 as well. Being capped is monotone in n, so one
// walk down the weights serves every n.
func (r *Ring) fillCapped(total float64) {
	k, left := 0, total
	for n := 0; n < len(r.nCapped); n++ {
		for k < len(r.byRank) && k < n {
			w := r.nodes[r.byRank[k]].Weight
			// The same expression the keys use (ratio > rest), so a node
			// is capped exactly when its key factor would not be positive.
			if left/w > float64(n-k) {
				break
			}
			left -= w
			k++
		}
		r.nCapped[n], r.wLeft[n] = int32(k), left
	}
}

// factor is the part of node i's key that does not depend on the segment,
// for n shards, if the node is not capped; see rank.
func (r *Ring) factor(i, n int) float64 {
	kn := min(n, len(r.nodes))
	if k := r.nCapped[kn]; k > 0 {
		return r.wLeft[kn]/r.nodes[i].Weight - float64(n-int(k))
	}
	return r.ratio[i] - float64(n)
}

// fillLimit computes limit. A node whose key factor is f beats a limit T
// with probability T/(f+T) (its odds u/(1-u) must be under T/f), so T
// solves sum over nodes of T/(f+T) = target, found by a few rounds of
// T = target / sum(1/(f+T)). Only speed depends on the result.
func (r *Ring) fillLimit() {
	N := len(r.nodes)
	r.limit = make([]float64, min(N, maxLimited)+1)
	r.limit[0] = math.Inf(1)
	f := make([]float64, 0, N)
	for n := 1; n < len(r.limit); n++ {
		capped := int(r.nCapped[n])
		target := float64(n) + 3*math.Sqrt(float64(n)) + 3 - float64(capped)
		if target >= 0.75*float64(N-capped) {
			r.limit[n] = math.Inf(1)
			continue
		}
		f = f[:0]
		for _, i := range r.byRank[capped:] {
			f = append(f, r.factor(int(i), n))
		}
		t := 0.0
		for range 6 {
			sum := 0.0
			for _, fi := range f {
				sum += 1 / (fi + t)
			}
			t = target / sum
		}
		r.limit[n] = t
	}
}

// Version returns the version the ring was built with.
func (r *Ring) Version() uint64 { return r.version }

// Len returns the number of nodes in the ring.
func (r *Ring) Len() int { return len(r.nodes) }

// Nodes returns a copy of the ring's nodes, sorted by ID.
func (r *Ring) Nodes() []Node { return slices.Clone(r.nodes) }
