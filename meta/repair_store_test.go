package meta

import (
	"testing"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// TestRepairQueueOrderAndMoves: the queue yields the segment with the fewest
// healthy shards first; a move commits only if the shard is still where the
// mover found it, queues the old copy for deletion, and answers the report.
func TestRepairQueueOrderAndMoves(t *testing.T) {
	st := openStore(t)
	now := time.Unix(1_000_000, 0)
	if err := st.createBucket(metaapi.Bucket{Name: "bkt"}); err != nil {
		t.Fatal(err)
	}
	a, b := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	for _, id := range []string{a, b} {
		obj := metaapi.Object{Bucket: "bkt", Key: id, Size: 100, ETag: "e", Segments: []metaapi.Segment{seg(id, "n1", "n2", "n3")}}
		if _, err := st.commit(metaapi.CommitRequest{Object: obj}, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.repairEnqueue([]repairItem{{Segment: a, Surviving: 2}, {Segment: b, Surviving: 1}, {Segment: "gone0000000000000", Surviving: 0}}); err != nil {
		t.Fatal(err)
	}
	next, err := st.repairNext(10, func(string) bool { return false })
	if err != nil || len(next) != 2 || next[0] != b || next[1] != a {
		t.Fatalf("queue order %v, %v; want [%s %s]", next, err, b, a)
	}
	// Re-queueing with a new count moves the segment, never duplicates it.
	if err := st.repairEnqueue([]repairItem{{Segment: a, Surviving: 0}}); err != nil {
		t.Fatal(err)
	}
	if next, _ := st.repairNext(10, func(string) bool { return false }); len(next) != 2 || next[0] != a {
		t.Fatalf("after re-queueing: %v", next)
	}

	if err := st.reportBad([]metaapi.BadShard{{Segment: a, Index: 1, Node: "n2"}}); err != nil {
		t.Fatal(err)
	}
	mv := moveArgs{Segment: a, ShardSize: 50, Dequeue: true, Moves: []shardMove{{Index: 1, From: metaapi.ShardLoc{Node: "n2"}, To: metaapi.ShardLoc{Node: "n4"}}}}
	res, err := st.moveShards(mv, now)
	if err != nil || !res.Applied[0] {
		t.Fatalf("move: %+v, %v", res, err)
	}
	// The same move again (a racing worker) finds the shard moved already.
	if res, err := st.moveShards(mv, now); err != nil || res.Applied[0] {
		t.Fatalf("repeated move: %+v, %v", res, err)
	}
	// A move onto a server that holds a shard of the segment is refused.
	dup := moveArgs{Segment: a, Moves: []shardMove{{Index: 0, From: metaapi.ShardLoc{Node: "n1"}, To: metaapi.ShardLoc{Node: "n3"}}}}
	if res, err := st.moveShards(dup, now); err != nil || res.Applied[0] {
		t.Fatalf("move onto a holder: %+v, %v", res, err)
	}
	rec, _, _ := st.segment(a)
	if rec.Shards[1].Node != "n4" {
		t.Fatalf("shard 1 is on %q", rec.Shards[1].Node)
	}
	if ok, _ := st.referenced("n4", ShardID(a, 1)); !ok {
		t.Fatal("new location not indexed")
	}
	if ok, _ := st.pendingDeletion("n2", ShardID(a, 1)); !ok {
		t.Fatal("old copy not queued for deletion")
	}
	if bad, _ := st.badShards(); len(bad) != 0 {
		t.Fatalf("report not cleared: %v", bad)
	}
	if next, _ := st.repairNext(10, func(string) bool { return false }); len(next) != 1 || next[0] != b {
		t.Fatalf("queue after the move: %v", next)
	}
	c, _ := st.repairCounters()
	if c.Segments != 1 || c.Shards != 1 || c.Bytes != 50 {
		t.Fatalf("counters %+v", c)
	}
	// A deleted segment: the move is not applied and reported gone.
	if err := st.deleteObject("bkt", b, metaapi.Preconditions{}, now); err != nil {
		t.Fatal(err)
	}
	res, err = st.moveShards(moveArgs{Segment: b, Dequeue: true, Moves: []shardMove{{Index: 0, From: metaapi.ShardLoc{Node: "n1"}, To: metaapi.ShardLoc{Node: "n5"}}}}, now)
	if err != nil || !res.Gone || res.Applied[0] {
		t.Fatalf("move in a deleted segment: %+v, %v", res, err)
	}

	// Removal is refused while the node holds shards.
	if err := st.heartbeat(metaapi.Heartbeat{ID: "n1", Addr: "x:1"}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.removeNode("n1"); err == nil {
		t.Fatal("removed a node that holds shards")
	}
	if err := st.drainNode("n1"); err != nil {
		t.Fatal(err)
	}
	if err := st.heartbeat(metaapi.Heartbeat{ID: "n1", Addr: "x:1"}, now); err != nil {
		t.Fatal(err)
	}
	ns, _, _ := st.nodes()
	if len(ns) != 1 || ns[0].State != metaapi.NodeDraining {
		t.Fatalf("a draining node's heartbeat: %+v", ns)
	}
}
