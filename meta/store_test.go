package meta

import (
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/meta/metaapi"
)

func openStore(t *testing.T) *store {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &store{db: db}
}

func seg(id string, nodes ...string) metaapi.Segment {
	s := metaapi.Segment{ID: id, K: 2, M: 1, BlockSize: 4096, Size: 100}
	for _, n := range nodes {
		s.Shards = append(s.Shards, metaapi.ShardLoc{Node: n})
	}
	return s
}

// TestSegmentRefcounts: shards go to the GC queue only when the last object
// sharing their segment is gone, and only once their delay has passed.
func TestSegmentRefcounts(t *testing.T) {
	st := openStore(t)
	now := time.Unix(1_000_000, 0)
	if err := st.createBucket(metaapi.Bucket{Name: "bkt"}); err != nil {
		t.Fatal(err)
	}
	obj := metaapi.Object{Bucket: "bkt", Key: "a", Size: 100, ETag: "e1", Segments: []metaapi.Segment{seg("0123456789abcdef0123456789abcdef", "n1", "n2", "n3")}}
	if _, err := st.commit(metaapi.CommitRequest{Object: obj}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.copyObject(metaapi.CopyRequest{SrcBucket: "bkt", SrcKey: "a", DstBucket: "bkt", DstKey: "b"}, now, now); err != nil {
		t.Fatal(err)
	}
	if err := st.deleteObject("bkt", "a", metaapi.Preconditions{}, now); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.gcPending(); n != 0 {
		t.Fatalf("%d deletions queued while a copy still uses the segment", n)
	}
	due := now.Add(time.Minute)
	if err := st.deleteObject("bkt", "b", metaapi.Preconditions{}, due); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.gcPending(); n != 3 {
		t.Fatalf("%d deletions queued, want the segment's 3 shards", n)
	}
	if es, _ := st.gcBatch(10, now); len(es) != 0 {
		t.Fatalf("%d deletions handed out before they were due", len(es))
	}
	es, err := st.gcBatch(10, due)
	if err != nil || len(es) != 3 {
		t.Fatalf("due deletions: %v %v", es, err)
	}
	for _, e := range es {
		if ok, _ := st.referenced(e.Node, e.Shard); !ok {
			t.Fatalf("queued shard %s on %s counts as an orphan", e.Shard, e.Node)
		}
	}
	done := make([]gcDoneArgs, len(es))
	for i, e := range es {
		done[i] = gcDoneArgs{Node: e.Node, Shard: e.Shard, Key: e.key}
	}
	if err := st.gcDone(done); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.gcPending(); n != 0 {
		t.Fatalf("%d deletions left after gcDone", n)
	}
	if ok, _ := st.referenced("n1", ShardID("0123456789abcdef0123456789abcdef", 0)); ok {
		t.Fatal("a collected shard is still referenced")
	}
}

func TestCommitConditionsAndValidation(t *testing.T) {
	st := openStore(t)
	now := time.Unix(1_000_000, 0)
	st.createBucket(metaapi.Bucket{Name: "bkt"})
	put := func(etag string, cond metaapi.Preconditions) error {
		_, err := st.commit(metaapi.CommitRequest{Object: metaapi.Object{Bucket: "bkt", Key: "k", Size: 1, ETag: etag, Inline: []byte("x")}, Cond: cond}, now)
		return err
	}
	if err := put("e1", metaapi.Preconditions{IfMatch: "*"}); !errors.Is(err, metaapi.ErrPrecondition) {
		t.Fatalf("If-Match * on a missing key: %v", err)
	}
	if err := put("e1", metaapi.Preconditions{IfNoneMatch: "*"}); err != nil {
		t.Fatal(err)
	}
	if err := put("e2", metaapi.Preconditions{IfNoneMatch: "*"}); !errors.Is(err, metaapi.ErrPrecondition) {
		t.Fatalf("If-None-Match * on an existing key: %v", err)
	}
	if err := put("e2", metaapi.Preconditions{IfMatch: `"e1"`}); err != nil {
		t.Fatalf("If-Match with the current (quoted) ETag: %v", err)
	}
	if err := put("e3", metaapi.Preconditions{IfMatch: "e1"}); !errors.Is(err, metaapi.ErrPrecondition) {
		t.Fatalf("If-Match with a stale ETag: %v", err)
	}
	// Records whose sizes do not add up, or with fewer than k stored shards, are refused.
	bad := []metaapi.Object{
		{Bucket: "bkt", Key: "x", Size: 5, Inline: []byte("abc")},
		{Bucket: "bkt", Key: "x", Size: 99, Segments: []metaapi.Segment{seg("0123456789abcdef0123456789abcdef", "n1", "n2", "n3")}},
		{Bucket: "bkt", Key: "x", Size: 100, Segments: []metaapi.Segment{seg("0123456789abcdef0123456789abcdef", "n1", "", "")}},
		{Bucket: "bkt", Key: "x", Size: 100, Segments: []metaapi.Segment{seg("../etc", "n1", "n2", "n3")}},
	}
	for i, o := range bad {
		if _, err := st.commit(metaapi.CommitRequest{Object: o}, now); !errors.Is(err, metaapi.ErrInvalidArgument) {
			t.Errorf("bad record %d: %v", i, err)
		}
	}
	if _, err := st.commit(metaapi.CommitRequest{Object: metaapi.Object{Bucket: "nope", Key: "k", Inline: []byte{}}}, now); !errors.Is(err, metaapi.ErrNoSuchBucket) {
		t.Fatalf("commit into a missing bucket: %v", err)
	}
	if err := st.deleteBucket("bkt", now); !errors.Is(err, metaapi.ErrBucketNotEmpty) {
		t.Fatalf("delete of a non-empty bucket: %v", err)
	}
}

// TestRingVersion: the ring version moves when placement inputs change, not
// on every heartbeat.
func TestRingVersion(t *testing.T) {
	st := openStore(t)
	t0 := time.Unix(1_000_000, 0)
	version := func() uint64 {
		_, v, err := st.nodes()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hb := metaapi.Heartbeat{ID: "n1", Addr: "127.0.0.1:1", Zone: "z"}
	st.heartbeat(hb, t0)
	v1 := version()
	st.heartbeat(hb, t0.Add(time.Second))
	if version() != v1 {
		t.Fatal("a plain heartbeat changed the ring version")
	}
	if err := st.setNodeState("n1", metaapi.NodeDown); err != nil {
		t.Fatal(err)
	}
	v2 := version()
	if v2 == v1 {
		t.Fatal("marking a node down did not change the ring version")
	}
	st.heartbeat(hb, t0.Add(2*time.Hour))
	if version() == v2 {
		t.Fatal("a node coming back up did not change the ring version")
	}
	v3 := version()
	if err := st.setNodeState("n1", metaapi.NodeUp); err != nil || version() != v3 {
		t.Fatalf("setting the state a node is in changed the ring: %v", err)
	}
	if err := st.setNodeState("nope", metaapi.NodeDown); !errors.Is(err, metaapi.ErrInvalidArgument) {
		t.Fatalf("state of an unknown node: %v", err)
	}
	if err := st.heartbeat(metaapi.Heartbeat{ID: "n2"}, t0); !errors.Is(err, metaapi.ErrInvalidArgument) {
		t.Fatalf("heartbeat without an address: %v", err)
	}
}

func TestDeleteBucketDropsUploads(t *testing.T) {
	st := openStore(t)
	now := time.Unix(1_000_000, 0)
	st.createBucket(metaapi.Bucket{Name: "bkt"})
	if err := st.createUpload(metaapi.Upload{Bucket: "bkt", Key: "k", ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	part := metaapi.Part{Number: 1, ETag: "00", Size: 100, Segments: []metaapi.Segment{seg("0123456789abcdef0123456789abcdef", "n1", "n2", "n3")}}
	if err := st.commitPart(metaapi.PartCommitRequest{Bucket: "bkt", Key: "k", UploadID: "u1", Part: part}, now); err != nil {
		t.Fatal(err)
	}
	if err := st.deleteBucket("bkt", now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.upload("bkt", "k", "u1"); !errors.Is(err, metaapi.ErrNoSuchUpload) {
		t.Fatalf("upload survived its bucket: %v", err)
	}
	if n, _ := st.gcPending(); n != 3 {
		t.Fatalf("the dropped part's 3 shards were not queued for deletion (%d)", n)
	}
}
