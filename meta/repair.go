package meta

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/meta/metaapi"
)

// Keys of repair, drain and rebalance. The repair queue sorts by the number
// of shards a segment has left, so the most endangered segment comes first.
const (
	pRepair    = 'Q' // Q<surviving, 2 digits><segment> -> (empty): segments awaiting repair
	pRepairSeg = 'q' // q<segment> -> its Q key
	pDrain     = 'D' // D<node> -> (empty): an operator asked to drain the node
)

var (
	keyRepairStats = []byte("Vrepair")    // -> repairCounters
	keyRebalance   = []byte("Vrebalance") // -> metaapi.RebalanceStatus
)

// Commands of repair, drain and rebalance (see command.go for the rules).
const (
	opRepairEnqueue op = "repairEnqueue"
	opMoveShards    op = "moveShards"
	opClearBad      op = "clearBad"
	opDrainNode     op = "drainNode"
	opRemoveNode    op = "removeNode"
	opRebalance     op = "rebalance"
)

// repairItem is a segment to queue with the number of its shards that are
// still healthy.
type repairItem struct {
	Segment   string `json:"seg"`
	Surviving int    `json:"surv"`
}

// shardMove replaces shard Index of a segment at From (Node empty: the shard
// is missing) with a copy at To.
type shardMove struct {
	Index int              `json:"idx"`
	From  metaapi.ShardLoc `json:"from"`
	To    metaapi.ShardLoc `json:"to"`
}

// moveArgs commits shards that repair or rebalance wrote to their new places.
type moveArgs struct {
	Segment string      `json:"seg"`
	Moves   []shardMove `json:"moves,omitempty"`
	// ShardSize is each shard's size, for the byte counters.
	ShardSize int64 `json:"shardSize"`
	// Rebalance counts the moves as rebalance's rather than repair's.
	Rebalance bool `json:"rebalance,omitempty"`
	// Dequeue takes the segment off the repair queue: nothing is left to do.
	Dequeue bool `json:"dequeue,omitempty"`
}

// moveResult says which moves a moveShards command applied. A move whose
// shard had meanwhile changed place (another worker was faster), or whose
// segment is gone, is not applied: its new copy is the caller's to delete.
type moveResult struct {
	Applied []bool `json:"applied"`
	Gone    bool   `json:"gone"`
}

// repairCounters are repair's totals since the cluster was created.
type repairCounters struct {
	Segments int64 `json:"segments"`
	Shards   int64 `json:"shards"`
	Bytes    int64 `json:"bytes"`
}

// rebalanceArgs starts (Start), stops (Stop) or records the progress of a
// rebalance.
type rebalanceArgs struct {
	Start     bool      `json:"start,omitempty"`
	Stop      bool      `json:"stop,omitempty"`
	Finish    bool      `json:"finish,omitempty"`
	Planned   int64     `json:"planned,omitempty"`
	Remaining int64     `json:"remaining"`
	Failures  int64     `json:"failures,omitempty"`
	Now       time.Time `json:"now"`
}

// applyRepair applies the commands of this file; ok is false for any other.
func (s *store) applyRepair(c command) (v any, ok bool, err error) {
	switch c.Op {
	case opRepairEnqueue:
		var items []repairItem
		if err := decodeArgs(c, &items); err != nil {
			return nil, true, err
		}
		return nil, true, s.repairEnqueue(items)
	case opMoveShards:
		var a moveArgs
		if err := decodeArgs(c, &a); err != nil {
			return nil, true, err
		}
		res, err := s.moveShards(a, c.Due)
		return res, true, err
	case opClearBad:
		var bad []metaapi.BadShard
		if err := decodeArgs(c, &bad); err != nil {
			return nil, true, err
		}
		return nil, true, s.clearBad(bad)
	case opDrainNode:
		var id string
		if err := decodeArgs(c, &id); err != nil {
			return nil, true, err
		}
		return nil, true, s.drainNode(id)
	case opRemoveNode:
		var id string
		if err := decodeArgs(c, &id); err != nil {
			return nil, true, err
		}
		return nil, true, s.removeNode(id)
	case opRebalance:
		var a rebalanceArgs
		if err := decodeArgs(c, &a); err != nil {
			return nil, true, err
		}
		st, err := s.setRebalance(a)
		return st, true, err
	}
	return nil, false, nil
}

func repairKey(surviving int, seg string) []byte {
	return append(fmt.Appendf([]byte{pRepair}, "%02d", min(max(surviving, 0), 99)), seg...)
}

func repairSegKey(seg string) []byte { return append([]byte{pRepairSeg}, seg...) }

func drainKey(node string) []byte { return append([]byte{pDrain}, node...) }

func badKey(shard, node string) []byte {
	return append(append([]byte{pBad}, shard+"\x00"...), node...)
}

// segmentOfShard is the segment id of a shard id "<segment>.<index>".
func segmentOfShard(shard string) string {
	if i := strings.LastIndexByte(shard, '.'); i >= 0 {
		return shard[:i]
	}
	return shard
}

// repairEnqueue queues segments for repair, or moves queued ones to their
// new place in the order. Segments that no longer exist are skipped.
func (s *store) repairEnqueue(items []repairItem) error {
	return s.update(func(txn *badger.Txn) error {
		for _, it := range items {
			if ok, err := exists(txn, segmentKey(it.Segment)); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			if err := dequeueRepair(txn, it.Segment); err != nil {
				return err
			}
			key := repairKey(it.Surviving, it.Segment)
			if err := txn.Set(key, nil); err != nil {
				return err
			}
			if err := txn.Set(repairSegKey(it.Segment), key); err != nil {
				return err
			}
		}
		return nil
	})
}

func dequeueRepair(txn *badger.Txn, seg string) error {
	item, err := txn.Get(repairSegKey(seg))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	if err := txn.Delete(old); err != nil {
		return err
	}
	return txn.Delete(repairSegKey(seg))
}

// moveShards switches shards to the copies repair or rebalance wrote, each
// only if the shard is still where the mover found it, and queues the old
// copies for deletion. Bad-shard reports the moves answer are cleared.
func (s *store) moveShards(a moveArgs, due time.Time) (moveResult, error) {
	res := moveResult{Applied: make([]bool, len(a.Moves))}
	err := s.update(func(txn *badger.Txn) error {
		res.Applied = make([]bool, len(a.Moves))
		res.Gone = false
		var rec segmentRecord
		err := getJSON(txn, segmentKey(a.Segment), &rec)
		if errors.Is(err, badger.ErrKeyNotFound) {
			res.Gone = true
			return dequeueRepair(txn, a.Segment)
		}
		if err != nil {
			return err
		}
		applied := 0
		for i, m := range a.Moves {
			if m.Index < 0 || m.Index >= len(rec.Shards) || rec.Shards[m.Index] != m.From || m.To.Node == "" {
				continue
			}
			// A corrupt shard may be rewritten where it was: the same file,
			// replaced, on a server that is otherwise fine.
			inPlace := m.From.Node == m.To.Node
			if !inPlace && slicesContainsNode(rec.Shards, m.To.Node) {
				continue // never two shards of a segment on one server
			}
			shard := ShardID(a.Segment, m.Index)
			// An older copy there awaits deletion, which would take the new one.
			if gone, err := exists(txn, nodeShardKey(pPending, m.To.Node, shard)); err != nil || gone {
				if err != nil {
					return err
				}
				continue
			}
			if inPlace {
				if err := txn.Delete(badKey(shard, m.To.Node)); err != nil {
					return err
				}
			} else if m.From.Node != "" {
				if err := txn.Delete(nodeShardKey(pIndex, m.From.Node, shard)); err != nil {
					return err
				}
				if err := queueDeletion(txn, m.From.Node, shard, due); err != nil {
					return err
				}
			}
			if err := txn.Set(nodeShardKey(pIndex, m.To.Node, shard), nil); err != nil {
				return err
			}
			rec.Shards[m.Index] = m.To
			res.Applied[i] = true
			applied++
		}
		if applied > 0 {
			if err := setJSON(txn, segmentKey(a.Segment), rec); err != nil {
				return err
			}
		}
		if err := clearStaleBad(txn, a.Segment, rec); err != nil {
			return err
		}
		if a.Dequeue {
			if err := dequeueRepair(txn, a.Segment); err != nil {
				return err
			}
		}
		if applied == 0 {
			return nil
		}
		if a.Rebalance {
			var st metaapi.RebalanceStatus
			if err := getJSON(txn, keyRebalance, &st); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			st.Done += int64(applied)
			st.Bytes += int64(applied) * a.ShardSize
			return setJSON(txn, keyRebalance, st)
		}
		var c repairCounters
		if err := getJSON(txn, keyRepairStats, &c); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		c.Segments++
		c.Shards += int64(applied)
		c.Bytes += int64(applied) * a.ShardSize
		return setJSON(txn, keyRepairStats, c)
	})
	return res, err
}

func slicesContainsNode(locs []metaapi.ShardLoc, node string) bool {
	for _, l := range locs {
		if l.Node == node {
			return true
		}
	}
	return false
}

// clearStaleBad drops the bad-shard reports of a segment that name a server
// no longer holding that shard: the shard has moved, so the report is
// answered.
func clearStaleBad(txn *badger.Txn, seg string, rec segmentRecord) error {
	prefix := append([]byte{pBad}, seg+"."...)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	var stale [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		key := it.Item().KeyCopy(nil)
		shard, node, _ := strings.Cut(string(key[1:]), "\x00")
		var idx int
		if _, err := fmt.Sscanf(shard[len(seg)+1:], "%d", &idx); err != nil || idx < 0 || idx >= len(rec.Shards) || rec.Shards[idx].Node != node || node == "" {
			stale = append(stale, key)
		}
	}
	it.Close()
	for _, k := range stale {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// clearBad drops bad-shard reports, e.g. about segments never committed.
func (s *store) clearBad(bad []metaapi.BadShard) error {
	return s.update(func(txn *badger.Txn) error {
		for _, b := range bad {
			if err := txn.Delete(badKey(ShardID(b.Segment, b.Index), b.Node)); err != nil {
				return err
			}
		}
		return nil
	})
}

// drainNode marks a node draining until it is removed: heartbeats keep it
// draining, and its shards are moved elsewhere.
func (s *store) drainNode(id string) error {
	return s.update(func(txn *badger.Txn) error {
		var n metaapi.Node
		if err := getJSON(txn, nodeKey(id), &n); err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("%w: no chunk server %q", metaapi.ErrInvalidArgument, id)
			}
			return err
		}
		if err := txn.Set(drainKey(id), nil); err != nil {
			return err
		}
		if n.State != metaapi.NodeUp {
			return nil // it drains once it is back; a down node goes out and is repaired anyway
		}
		n.State = metaapi.NodeDraining
		if err := s.bumpRing(txn); err != nil {
			return err
		}
		return setJSON(txn, nodeKey(id), n)
	})
}

// removeNode forgets a chunk server that holds no shards.
func (s *store) removeNode(id string) error {
	return s.update(func(txn *badger.Txn) error {
		if ok, err := exists(txn, nodeKey(id)); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%w: no chunk server %q", metaapi.ErrInvalidArgument, id)
			}
			return err
		}
		if n := countPrefix(txn, nodeShardKey(pIndex, id, "")); n > 0 {
			return fmt.Errorf("%w: chunk server %s still holds %d shards; drain it first ('talus admin node drain %s')", metaapi.ErrConflict, id, n, id)
		}
		if err := txn.Delete(drainKey(id)); err != nil {
			return err
		}
		if err := s.bumpRing(txn); err != nil {
			return err
		}
		return txn.Delete(nodeKey(id))
	})
}

func countPrefix(txn *badger.Txn, prefix []byte) int64 {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var n int64
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// setRebalance records a rebalance starting, stopping, or its latest count.
func (s *store) setRebalance(a rebalanceArgs) (metaapi.RebalanceStatus, error) {
	var st metaapi.RebalanceStatus
	err := s.update(func(txn *badger.Txn) error {
		st = metaapi.RebalanceStatus{}
		if err := getJSON(txn, keyRebalance, &st); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		switch {
		case a.Start:
			if st.Running {
				return nil
			}
			st = metaapi.RebalanceStatus{Running: true, Started: a.Now, Planned: a.Planned, Remaining: a.Planned}
		case a.Stop, a.Finish:
			if !st.Running {
				return nil
			}
			st.Running, st.Finished = false, a.Now
			st.Remaining = max(st.Planned-st.Done, 0)
			if a.Finish {
				st.Remaining = a.Remaining
			}
		default:
			if !st.Running {
				return nil
			}
			st.Remaining = a.Remaining
			st.Failures += a.Failures
		}
		return setJSON(txn, keyRebalance, st)
	})
	return st, err
}

// Reads for the leader's background work and the admin API.

func (s *store) segment(id string) (segmentRecord, bool, error) {
	var rec segmentRecord
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, segmentKey(id), &rec) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// badFor returns the nodes reported bad for each shard index of a segment.
func (s *store) badFor(seg string) (map[int]map[string]bool, error) {
	out := map[int]map[string]bool{}
	err := s.view(func(txn *badger.Txn) error {
		prefix := append([]byte{pBad}, seg+"."...)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			shard, node, _ := strings.Cut(string(it.Item().Key()[1:]), "\x00")
			var idx int
			if _, err := fmt.Sscanf(shard[len(seg)+1:], "%d", &idx); err != nil {
				continue
			}
			if out[idx] == nil {
				out[idx] = map[string]bool{}
			}
			out[idx][node] = true
		}
		return nil
	})
	return out, err
}

// pendingDeletion reports whether a shard on a node is queued for deletion,
// in which case nothing new may be written there under that name: the
// collector could delete it.
func (s *store) pendingDeletion(node, shard string) (bool, error) {
	var ok bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		ok, err = exists(txn, nodeShardKey(pPending, node, shard))
		return err
	})
	return ok, err
}

// nodeSegments calls fn with every segment that has a shard on node.
func (s *store) nodeSegments(node string, fn func(seg string) error) error {
	return s.view(func(txn *badger.Txn) error {
		prefix := nodeShardKey(pIndex, node, "")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := fn(segmentOfShard(string(it.Item().Key()[len(prefix):]))); err != nil {
				return err
			}
		}
		return nil
	})
}

// repairQueued reports whether a segment is on the repair queue.
func (s *store) repairQueued(seg string) (bool, error) {
	var ok bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		ok, err = exists(txn, repairSegKey(seg))
		return err
	})
	return ok, err
}

// repairNext returns up to max queued segments in danger order, leaving out
// those skip says to.
func (s *store) repairNext(max int, skip func(seg string) bool) ([]string, error) {
	var segs []string
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pRepair}})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(segs) < max; it.Next() {
			seg := string(it.Item().Key()[3:])
			if !skip(seg) {
				segs = append(segs, seg)
			}
		}
		return nil
	})
	return segs, err
}

// counts returns the numbers the admin status shows.
type storeCounts struct {
	objects, segments, queued int64
	shards                    map[string]int64
}

func (s *store) counts() (storeCounts, error) {
	c := storeCounts{shards: map[string]int64{}}
	err := s.view(func(txn *badger.Txn) error {
		c.objects = countPrefix(txn, []byte{pObject})
		c.segments = countPrefix(txn, []byte{pSegment})
		c.queued = countPrefix(txn, []byte{pRepair})
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pIndex}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			node, _ := splitNodeShardKey(it.Item().Key())
			c.shards[node]++
		}
		return nil
	})
	return c, err
}

func (s *store) repairCounters() (repairCounters, error) {
	var c repairCounters
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, keyRepairStats, &c) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = nil
	}
	return c, err
}

func (s *store) rebalanceState() (metaapi.RebalanceStatus, error) {
	var st metaapi.RebalanceStatus
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, keyRebalance, &st) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = nil
	}
	return st, err
}

// segmentIDs returns up to max segment ids after the given one, in order.
func (s *store) segmentIDs(after string, max int) ([]string, error) {
	var ids []string
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pSegment}})
		defer it.Close()
		for it.Seek(segmentKey(after)); it.Valid() && len(ids) < max; it.Next() {
			id := string(it.Item().Key()[1:])
			if id == after {
				continue
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}

func (s *store) queueLength() (int, error) {
	var n int64
	err := s.view(func(txn *badger.Txn) error {
		n = countPrefix(txn, []byte{pRepair})
		return nil
	})
	return int(n), err
}
