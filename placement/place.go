package placement

import (
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"
)

// Place returns n distinct node IDs for the shards of a segment, best first:
// shard i of a new segment goes to the i-th. It fails with ErrNotEnoughNodes
// if the ring has fewer than n nodes.
func (r *Ring) Place(segmentID string, n int) ([]string, error) {
	if n <= 0 || n > len(r.nodes) {
		return nil, r.widthError(segmentID, n, len(r.nodes))
	}
	return r.AppendPlace(make([]string, 0, n), segmentID, n)
}

// AppendPlace appends the IDs Place would return to dst. It does not
// allocate when dst has room for n more IDs and n is at most 15.
func (r *Ring) AppendPlace(dst []string, segmentID string, n int) ([]string, error) {
	if n <= 0 || n > len(r.nodes) {
		return dst, r.widthError(segmentID, n, len(r.nodes))
	}
	var buf [16]cand
	top := r.rank(buf[:0], xxhash.Sum64String(segmentID), n, n, int(r.zoneCap[n]), nil, nil)
	for _, c := range top {
		dst = append(dst, r.nodes[c.idx].ID)
	}
	return dst, nil
}

// Fill picks nodes for the missing shards of a segment of n shards whose
// other shards live on have: one node per shard missing, best first, none of
// them in have or exclude. Repair passes the nodes holding surviving
// shards as have and the failed ones as exclude; a write that finds a node
// unreachable passes it as exclude with have empty.
//
// Fill ranks nodes exactly as Place does, skipping have and exclude, and keeps
// the zone spread counting the zones of have: when have is what Place chose
// minus a node that is then excluded, Fill returns what Place would choose on
// the ring without that node (exactly so with equal weights). Excluded nodes still count as part of the ring
// (its total weight), so excluding a node does not reshuffle anything else.
// Members of have that are not in the ring count towards n but not towards any
// zone.
func (r *Ring) Fill(segmentID string, n int, have, exclude []string) ([]string, error) {
	if n <= 0 {
		return nil, r.widthError(segmentID, n, len(r.nodes))
	}
	skip := make([]bool, len(r.nodes))
	zoneHave := make([]int32, len(r.zones))
	held, foreign := 0, 0
	var seenForeign map[string]bool
	for _, id := range have {
		i, ok := r.index[id]
		switch {
		case ok && !skip[i]:
			skip[i] = true
			zoneHave[r.zone[i]]++
			held++
		case !ok && !seenForeign[id]:
			if seenForeign == nil {
				seenForeign = make(map[string]bool)
			}
			seenForeign[id] = true
			foreign++
		}
	}
	for _, id := range exclude {
		if i, ok := r.index[id]; ok {
			skip[i] = true
		}
	}
	need := n - held - foreign
	if need < 0 {
		return nil, fmt.Errorf("placement: segment %s: %d shards already on distinct nodes, more than its %d", segmentID, held+foreign, n)
	}
	if need == 0 {
		return []string{}, nil
	}
	free := make([]int, len(r.zones))
	eligible := 0
	for i, s := range skip {
		if !s {
			free[r.zone[i]]++
			eligible++
		}
	}
	if eligible < need {
		return nil, fmt.Errorf("placement: segment %s: need %d more distinct nodes, %d eligible: %w", segmentID, need, eligible, ErrNotEnoughNodes)
	}

	// The cap Place would use on the ring of have plus the eligible nodes,
	// raised if have already crowds some zone past it.
	zcap := 1
	for ; ; zcap++ {
		fits := 0
		for z := range free {
			fits += min(zcap, int(zoneHave[z])+free[z])
		}
		if fits >= n-foreign {
			break
		}
	}
	for ; ; zcap++ {
		room := 0
		for z := range free {
			room += max(0, min(zcap-int(zoneHave[z]), free[z]))
		}
		if room >= need {
			break
		}
	}

	top := r.rank(make([]cand, 0, need+1), xxhash.Sum64String(segmentID), n, need, zcap, zoneHave, skip)
	ids := make([]string, len(top))
	for j, c := range top {
		ids[j] = r.nodes[c.idx].ID
	}
	return ids, nil
}

func (r *Ring) widthError(segmentID string, n, size int) error {
	if n <= 0 {
		return fmt.Errorf("placement: segment %s: shard count %d is not positive", segmentID, n)
	}
	return fmt.Errorf("placement: segment %s: need %d distinct nodes, ring has %d: %w", segmentID, n, size, ErrNotEnoughNodes)
}

// cand is a node competing for a segment. Lower keys win; m, the node's hash
// for the segment, and then idx break ties so that the order is total and
// the same however the ring was built.
type cand struct {
	key  float64
	m    uint64
	idx  int32
	zone int32
}

func (a *cand) less(b *cand) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	if a.m != b.m {
		return a.m < b.m
	}
	return a.idx < b.idx
}

// rank appends to top the best need nodes for a segment of n shards whose
// hash is seg, in order, taking no more than zcap from any zone (counting
// zoneHave, if not nil) and none for which skip (if not nil) is set. The
// caller guarantees that enough nodes qualify.
func (r *Ring) rank(top []cand, seg uint64, n, need, zcap int, zoneHave []int32, skip []bool) []cand {
	if cap(top) < need+1 {
		top = make([]cand, 0, need+1)
	}
	spread := zcap < n
	// Keys: see doc.go. Without capped nodes, every node's factor is
	// ratio - n, computed once in NewRing up to the subtraction. Ring.factor
	// is the same computation, for NewRing.
	kn := min(n, len(r.nodes))
	capped := r.nCapped[kn]
	left, rest := r.wLeft[kn], float64(n-int(capped))
	fn := float64(n)
	// Pass one ranks only the nodes with keys up to limit, the few that
	// usually win. They come first in the key order, and the zone-capped
	// choice along that order stops once it has need nodes, so if pass one
	// finds need it has the answer. If not, pass two adds the rest.
	lo, hi := math.Inf(-1), math.Inf(1)
	if n < len(r.limit) {
		hi = r.limit[n]
	}
	for {
		worst := hi // the key to beat
		if len(top) == need {
			worst = top[need-1].key
		}
		for i := range r.nodes {
			if skip != nil && skip[i] {
				continue
			}
			m := mix(seg^r.hash[i]) >> 12
			// u = a/2^53 is uniform on (0,1) and 1-u = b/2^53, both exact.
			a := float64(2*m + 1)
			b := float64(1<<53 - 2*m - 1)
			var key float64
			switch {
			case capped == 0:
				key = a / b * (r.ratio[i] - fn)
			case r.wrank[i] < capped:
				key = -(b / a) // always in; among themselves by hash
			default:
				key = a / b * (left/r.nodes[i].Weight - rest)
			}
			if key > worst || key <= lo {
				continue
			}
			top = r.insert(top, cand{key: key, m: m, idx: int32(i), zone: r.zone[i]}, need, zcap, spread, zoneHave)
			if len(top) == need {
				worst = top[need-1].key
			}
		}
		if len(top) == need || math.IsInf(hi, 1) {
			return top
		}
		lo, hi = hi, math.Inf(1)
	}
}

// insert adds c to top if it is among the best need nodes seen so far that
// the zone cap allows.
//
// It keeps only the running best need in top: a node that falls out can
// never come back, because everything before it in top only gets better.
func (r *Ring) insert(top []cand, c cand, need, zcap int, spread bool, zoneHave []int32) []cand {
	if len(top) == need && !c.less(&top[need-1]) {
		return top
	}
	p := len(top)
	for p > 0 && c.less(&top[p-1]) {
		p--
	}
	if spread {
		count := 0
		if zoneHave != nil {
			count = int(zoneHave[c.zone])
		}
		for j := range p {
			if top[j].zone == c.zone {
				count++
			}
		}
		if count >= zcap {
			return top // zcap better nodes of its zone are in already
		}
		// Everything of this zone behind c moves down a place; at most
		// one, the last, goes over the cap.
		for j := p; j < len(top); j++ {
			if top[j].zone == c.zone {
				if count++; count >= zcap {
					copy(top[j:], top[j+1:])
					top = top[:len(top)-1]
					break
				}
			}
		}
	}
	top = top[:len(top)+1]
	for j := len(top) - 1; j > p; j-- {
		top[j] = top[j-1]
	}
	top[p] = c
	if len(top) > need {
		top = top[:need]
	}
	return top
}

// mix is the splitmix64 finalizer: a bijection that spreads every input bit
// over the whole output, so that a node's hash for one segment says nothing
// about its hash for another, or about other nodes' hashes for the same one.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
