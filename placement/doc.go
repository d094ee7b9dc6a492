// Package placement decides which chunk servers hold the shards of a segment.
//
// A Ring is the set of servers that should hold data, each with a zone
// (failure domain) and a weight (capacity). Place maps a segment ID and a
// shard count n (k+m) to n distinct servers, as a pure function of the ID and
// the servers' IDs, zones and weights: every process that has the same ring
// computes the same placement, without talking to anyone. The metadata
// service records where shards really are; placement says where new shards go
// and, after the ring changes, where existing ones should be.
//
// # Algorithm
//
// Placement is rendezvous (highest random weight) hashing, in the form of
// order sampling. For a segment, every node i draws a number u_i, uniform on
// (0,1), from a hash of the segment ID and its own ID, and gets the key
//
//	key_i = u_i/(1-u_i) * (W/w_i - n)
//
// where w_i is its weight and W the ring's total. The n nodes with the lowest
// keys win, in key order: shard j of a new segment goes to the j-th.
//
// This is Pareto sampling (Rosén, 1997) with target inclusion probabilities
// λ_i = n·w_i/W: the key is the odds of u_i divided by the odds of λ_i, up to
// a factor shared by all nodes. The textbook weighted rendezvous key
// -w_i/ln(u_i) picks the first node with probability proportional to weight,
// but taking the top n of it is sampling without replacement, which
// under-serves heavy nodes: a weight-2 server among 49 of weight 1 gets 1.89
// times the shards of the others, not 2, and in a ring weighted 1..10 the
// shares miss by up to 50%. With Pareto keys every test ring stays within 2%
// of its fair share (TestWeights), and equal weights are exact. A node whose
// fair share n·w_i/W would exceed one shard per segment is in every
// placement, and the rest share the remaining shards by the same rule.
//
// Zones: with Z zones no zone takes more than ceil(n/Z) shards of a segment,
// so with 4+2 shards over three zones a zone holds 2 = m, and losing a zone
// loses no data. Where the other zones have too few nodes for that, the cap
// rises just enough (it is the smallest c with sum over zones of min(c, zone
// size) >= n). The cap is enforced greedily along the key order: a node is
// skipped when c better nodes of its zone are already in. The cap counts
// shards, not capacity: a zone gets up to its share of every segment however
// small it is, so zones should be of similar size. In particular, with as
// many zones as shards every zone holds one shard of every segment.
//
// Draining and dead nodes are left out of the ring by its builder; a node
// that is only briefly unreachable should stay in, with writes and repairs
// steering around it through Fill's exclude list, so that its absence moves
// nothing else.
//
// # Movement
//
// With equal weights the factor W/w_i - n is the same for every node, so
// adding or removing a node scales all keys alike: the key order of the
// other nodes is the same with or without it, and the greedy zone cap is
// monotone in that order. Hence, while the number of zones and the zone cap
// stay the same:
//
//   - Adding a node changes a segment's set only by putting the new node in
//     place of one member. The new node receives its fair share, 1/N of all
//     shards (or less, if the cap holds its zone back), and nothing else
//     moves.
//   - Removing a node changes only the sets that contained it, each by one
//     replacement; every other node keeps every shard it had.
//
// With unequal weights the factor W/w_i - n of every node changes a little
// when W does, so a few pairs of existing nodes swap order: adding a weight-1
// node to 40 nodes weighted 1 to 4 moves 0.97% of shards onto it and 0.04%
// between old nodes; adding a weight-4 node, 3.7% and 0.12%
// (TestHeterogeneousMovement). Changing the number of zones, or a change that
// raises or lowers the zone cap, respreads every segment the cap affects.
//
// Fill, used for repair, ranks nodes the same way and picks the best ones
// that keep the zone spread given where the surviving shards are. When the
// survivors are where Place put them, the replacement for a lost node is the
// node Place would choose without it, so repair moves no more than removal.
//
// # Determinism and cost
//
// Nodes are kept sorted by ID, ties in key break by the node's hash and then
// its ID, and the arithmetic is xxhash, integer mixing and basic IEEE-754
// operations arranged so that no multiply-add can be fused and no library
// function (log, exp) is involved. So a placement is the same on every
// architecture, whatever order the nodes were listed in; TestGolden pins
// some. Changing any of this moves nearly every shard in a running cluster.
//
// A placement costs one hash of the segment ID and, per node, an integer mix,
// a division and a multiplication. Only nodes whose key beats a limit
// precomputed for n, which about n+3√n+3 nodes do, compete further, by
// insertion into the running best n; in segments where those are too few to
// fill n under the zone cap (4% of them for 4+2 shards on 50 nodes in 3
// zones), the rest compete too. AppendPlace does not allocate and takes about
// 1µs for 50 nodes and 3µs for 500. A Ring is immutable and safe for
// concurrent use; NewRing does the per-ring work once.
package placement
