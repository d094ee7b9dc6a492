package meta

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/meta/metaapi"
)

// Keyspace. One byte of prefix per record kind keeps scans of one kind cheap;
// '\x00' separates a bucket from a key because neither bucket names nor
// (UTF-8) keys can hold it before the key, and keys sort bytewise like S3's.
const (
	pBucket  = 'B' // B<bucket>                 -> metaapi.Bucket
	pObject  = 'O' // O<bucket>\x00<key>        -> objectRecord
	pSegment = 'S' // S<segment>                -> segmentRecord
	pIndex   = 'X' // X<node>\x00<shard>        -> (empty): shards each node holds
	pGC      = 'G' // G<due, 8 bytes BE ns><node>\x00<shard> -> (empty): shards to delete, in due order
	pPending = 'Z' // Z<node>\x00<shard>        -> G key: shards queued for deletion
	pNode    = 'N' // N<node>                   -> metaapi.Node
	pBad     = 'R' // R<shard>\x00<node>        -> metaapi.BadShard
)

var (
	keyRingVersion = []byte("Vring")    // -> uint64 big endian
	keyApplied     = []byte("Vapplied") // -> uint64 big endian: last log index applied
)

func bucketKey(b string) []byte { return append([]byte{pBucket}, b...) }

func objectKey(b, k string) []byte {
	key := make([]byte, 0, 2+len(b)+len(k))
	key = append(key, pObject)
	key = append(key, b...)
	key = append(key, 0)
	return append(key, k...)
}

func objectPrefix(b string) []byte { return objectKey(b, "") }

func segmentKey(id string) []byte { return append([]byte{pSegment}, id...) }

func nodeShardKey(p byte, node, shard string) []byte {
	key := make([]byte, 0, 2+len(node)+len(shard))
	key = append(key, p)
	key = append(key, node...)
	key = append(key, 0)
	return append(key, shard...)
}

func splitNodeShardKey(key []byte) (node, shard string) {
	node, shard, _ = strings.Cut(string(key[1:]), "\x00")
	return node, shard
}

func nodeKey(id string) []byte { return append([]byte{pNode}, id...) }

// ShardID names shard idx of a segment, as chunk servers store it.
func ShardID(seg string, idx int) string { return fmt.Sprintf("%s.%d", seg, idx) }

// objectRecord is an object as stored: segments by reference, because copies
// and multipart assemblies share them.
type objectRecord struct {
	metaapi.Object
	SegIDs []string `json:"segIDs,omitempty"`
}

// segmentRecord is a segment with the number of objects referencing it; its
// shards are garbage once that drops to zero.
type segmentRecord struct {
	metaapi.Segment
	Refs int `json:"refs"`
}

// store is the metadata state machine on Badger. Every mutation is a method
// taking all its inputs (time included) as arguments, so that applying the
// same sequence of mutations to two stores yields the same state — the
// property a replicated log needs.
type store struct {
	db *badger.DB
	// applying is the log index of the command being applied. Each
	// transaction records it under keyApplied together with the command's
	// effects, so after a crash the state machine knows exactly which
	// commands it holds and replays the rest.
	applying uint64
	// swap is held for writing while a snapshot replaces the whole store:
	// Badger's Load must not run beside readers.
	swap sync.RWMutex
}

// view runs fn in a read-only transaction.
func (s *store) view(fn func(txn *badger.Txn) error) error {
	s.swap.RLock()
	defer s.swap.RUnlock()
	return s.db.View(fn)
}

func (s *store) close() error { return s.db.Close() }

// update runs fn in a read-write transaction, retrying when a concurrent
// transaction touched the same keys. Badger detects such conflicts and batches
// the fsyncs of concurrent commits, so writers need no global lock.
func (s *store) update(fn func(txn *badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		err := s.db.Update(func(txn *badger.Txn) error {
			if err := fn(txn); err != nil {
				return err
			}
			if s.applying == 0 {
				return nil
			}
			return txn.Set(keyApplied, binary.BigEndian.AppendUint64(nil, s.applying))
		})
		if !errors.Is(err, badger.ErrConflict) || attempt >= 64 {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Microsecond)
	}
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if err != nil {
		return err
	}
	return item.Value(func(val []byte) error { return json.Unmarshal(val, v) })
}

func setJSON(txn *badger.Txn, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, data)
}

func exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// requireBucket fails with ErrNoSuchBucket unless the bucket exists.
func requireBucket(txn *badger.Txn, name string) error {
	ok, err := exists(txn, bucketKey(name))
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", metaapi.ErrNoSuchBucket, name)
	}
	return err
}

func (s *store) createBucket(b metaapi.Bucket) error {
	if err := metaapi.ValidateBucketName(b.Name); err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error {
		ok, err := exists(txn, bucketKey(b.Name))
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%w: %s", metaapi.ErrBucketExists, b.Name)
		}
		return setJSON(txn, bucketKey(b.Name), b)
	})
}

func (s *store) deleteBucket(name string, due time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		if err := requireBucket(txn, name); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: objectPrefix(name)})
		it.Rewind()
		nonEmpty := it.Valid()
		it.Close()
		if nonEmpty {
			return fmt.Errorf("%w: %s", metaapi.ErrBucketNotEmpty, name)
		}
		// Uploads in progress die with the bucket, as in S3.
		var ups [][2]string // key, upload id
		base := uploadPrefix(name)
		uit := txn.NewIterator(badger.IteratorOptions{Prefix: base})
		for uit.Rewind(); uit.Valid(); uit.Next() {
			key, id := splitUploadKey(uit.Item().Key()[len(base):])
			ups = append(ups, [2]string{key, id})
		}
		uit.Close()
		for _, u := range ups {
			if err := dropUpload(txn, name, u[0], u[1], due); err != nil {
				return err
			}
		}
		return txn.Delete(bucketKey(name))
	})
}

// setBucketACL replaces a bucket's ACL, keeping the rest of its record.
func (s *store) setBucketACL(name, acl string) error {
	return s.update(func(txn *badger.Txn) error {
		var b metaapi.Bucket
		err := getJSON(txn, bucketKey(name), &b)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s", metaapi.ErrNoSuchBucket, name)
		}
		if err != nil {
			return err
		}
		b.ACL = acl
		return setJSON(txn, bucketKey(name), b)
	})
}

func (s *store) bucket(name string) (metaapi.Bucket, error) {
	var b metaapi.Bucket
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, bucketKey(name), &b) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = fmt.Errorf("%w: %s", metaapi.ErrNoSuchBucket, name)
	}
	return b, err
}

func (s *store) buckets() ([]metaapi.Bucket, error) {
	bs := []metaapi.Bucket{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pBucket}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var b metaapi.Bucket
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &b) }); err != nil {
				return err
			}
			bs = append(bs, b)
		}
		return nil
	})
	return bs, err
}

// checkCond evaluates S3 preconditions against the current version (nil when
// the key does not exist).
func checkCond(cur *objectRecord, c metaapi.Preconditions) error {
	if c.IfMatch != "" {
		if cur == nil || (c.IfMatch != "*" && !etagEqual(c.IfMatch, cur.ETag)) {
			return fmt.Errorf("%w: If-Match %s", metaapi.ErrPrecondition, c.IfMatch)
		}
	}
	if c.IfNoneMatch != "" && cur != nil {
		if c.IfNoneMatch == "*" || etagEqual(c.IfNoneMatch, cur.ETag) {
			return fmt.Errorf("%w: If-None-Match %s", metaapi.ErrPrecondition, c.IfNoneMatch)
		}
	}
	return nil
}

func etagEqual(a, b string) bool { return strings.Trim(a, `"`) == strings.Trim(b, `"`) }

func loadObject(txn *badger.Txn, bucket, key string) (*objectRecord, error) {
	var rec objectRecord
	err := getJSON(txn, objectKey(bucket, key), &rec)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// commit installs a new object version: it creates or references the
// segments, writes the record, and releases the version it replaces — all in
// one transaction, so readers see either the old or the new object.
func (s *store) commit(req metaapi.CommitRequest, due time.Time) (metaapi.Object, error) {
	o := req.Object
	if err := metaapi.ValidateKey(o.Key); err != nil {
		return o, err
	}
	if err := validateSegments(&o); err != nil {
		return o, err
	}
	err := s.update(func(txn *badger.Txn) error {
		if err := requireBucket(txn, o.Bucket); err != nil {
			return err
		}
		cur, err := loadObject(txn, o.Bucket, o.Key)
		if err != nil {
			return err
		}
		if err := checkCond(cur, req.Cond); err != nil {
			return err
		}
		rec := objectRecord{Object: o}
		rec.Segments = nil
		for _, seg := range o.Segments {
			if err := addSegmentRef(txn, seg); err != nil {
				return err
			}
			rec.SegIDs = append(rec.SegIDs, seg.ID)
		}
		if err := setJSON(txn, objectKey(o.Bucket, o.Key), rec); err != nil {
			return err
		}
		if cur != nil {
			return releaseSegments(txn, cur.SegIDs, due)
		}
		return nil
	})
	for i := range o.Segments {
		o.Segments[i].Existing = false
	}
	return o, err
}

func validateSegments(o *metaapi.Object) error {
	var total int64
	for _, seg := range o.Segments {
		if seg.Existing {
			total += seg.Size
			continue
		}
		if len(seg.ID) < 16 || strings.ContainsAny(seg.ID, "./\x00") {
			return fmt.Errorf("%w: segment id %q", metaapi.ErrInvalidArgument, seg.ID)
		}
		if seg.K < 1 || seg.M < 0 || len(seg.Shards) != seg.K+seg.M || seg.BlockSize <= 0 || seg.Size <= 0 {
			return fmt.Errorf("%w: segment %s has a malformed layout", metaapi.ErrInvalidArgument, seg.ID)
		}
		live := 0
		for _, sh := range seg.Shards {
			if sh.Node != "" {
				live++
			}
		}
		if live < seg.K {
			return fmt.Errorf("%w: segment %s has %d shards stored, fewer than k=%d", metaapi.ErrInvalidArgument, seg.ID, live, seg.K)
		}
		total += seg.Size
	}
	if len(o.Segments) > 0 && (total != o.Size || len(o.Inline) > 0) {
		return fmt.Errorf("%w: segments hold %d bytes but the object is %d", metaapi.ErrInvalidArgument, total, o.Size)
	}
	if len(o.Segments) == 0 && int64(len(o.Inline)) != o.Size {
		return fmt.Errorf("%w: inline data is %d bytes but the object is %d", metaapi.ErrInvalidArgument, len(o.Inline), o.Size)
	}
	return nil
}

func addSegmentRef(txn *badger.Txn, seg metaapi.Segment) error {
	var rec segmentRecord
	err := getJSON(txn, segmentKey(seg.ID), &rec)
	switch {
	case err == nil:
		rec.Refs++
		return setJSON(txn, segmentKey(seg.ID), rec)
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	case seg.Existing:
		return fmt.Errorf("%w: segment %s no longer exists", metaapi.ErrConflict, seg.ID)
	}
	rec = segmentRecord{Segment: seg, Refs: 1}
	for i, sh := range seg.Shards {
		if sh.Node == "" {
			continue
		}
		if err := txn.Set(nodeShardKey(pIndex, sh.Node, ShardID(seg.ID, i)), nil); err != nil {
			return err
		}
	}
	return setJSON(txn, segmentKey(seg.ID), rec)
}

// releaseSegments drops one reference from each segment; a segment nobody
// references any more has its shards queued for deletion.
//
// Deletion is due only after gcDelay: a reader that looked up the old version
// just before it was replaced must still find its shards.
func releaseSegments(txn *badger.Txn, ids []string, due time.Time) error {
	for _, id := range ids {
		var rec segmentRecord
		if err := getJSON(txn, segmentKey(id), &rec); err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			return err
		}
		if rec.Refs--; rec.Refs > 0 {
			if err := setJSON(txn, segmentKey(id), rec); err != nil {
				return err
			}
			continue
		}
		for i, sh := range rec.Shards {
			if sh.Node == "" {
				continue
			}
			shard := ShardID(id, i)
			if err := txn.Delete(nodeShardKey(pIndex, sh.Node, shard)); err != nil {
				return err
			}
			if err := queueDeletion(txn, sh.Node, shard, due); err != nil {
				return err
			}
		}
		if err := txn.Delete(segmentKey(id)); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) deleteObject(bucket, key string, cond metaapi.Preconditions, due time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		if err := requireBucket(txn, bucket); err != nil {
			return err
		}
		cur, err := loadObject(txn, bucket, key)
		if err != nil {
			return err
		}
		if err := checkCond(cur, cond); err != nil {
			return err
		}
		if cur == nil {
			return nil
		}
		if err := txn.Delete(objectKey(bucket, key)); err != nil {
			return err
		}
		return releaseSegments(txn, cur.SegIDs, due)
	})
}

// object returns an object with its segments resolved.
func (s *store) object(bucket, key string) (metaapi.Object, error) {
	var o metaapi.Object
	err := s.view(func(txn *badger.Txn) error {
		rec, err := loadObject(txn, bucket, key)
		if err != nil {
			return err
		}
		if rec == nil {
			if err := requireBucket(txn, bucket); err != nil {
				return err
			}
			return fmt.Errorf("%w: %s/%s", metaapi.ErrNoSuchKey, bucket, key)
		}
		o = rec.Object
		o.Segments = make([]metaapi.Segment, 0, len(rec.SegIDs))
		for _, id := range rec.SegIDs {
			var seg segmentRecord
			if err := getJSON(txn, segmentKey(id), &seg); err != nil {
				return fmt.Errorf("object %s/%s: segment %s: %w", bucket, key, id, err)
			}
			o.Segments = append(o.Segments, seg.Segment)
		}
		return nil
	})
	return o, err
}

// list walks a bucket's keys in order, folding keys that share a prefix up to
// the delimiter into one common prefix, S3-style.
func (s *store) list(req metaapi.ListRequest) (metaapi.ListResult, error) {
	res := metaapi.ListResult{Objects: []metaapi.Object{}}
	max := req.Max
	if max <= 0 || max > 1000 {
		max = 1000
	}
	err := s.view(func(txn *badger.Txn) error {
		if err := requireBucket(txn, req.Bucket); err != nil {
			return err
		}
		base := objectPrefix(req.Bucket)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: objectKey(req.Bucket, req.Prefix), PrefetchValues: false})
		defer it.Close()
		seek := objectKey(req.Bucket, req.Prefix)
		if req.After > req.Prefix {
			seek = objectKey(req.Bucket, req.After)
		}
		n := 0
		for it.Seek(seek); it.Valid(); {
			key := string(it.Item().Key()[len(base):])
			if key <= req.After {
				it.Next()
				continue
			}
			if req.Delimiter != "" {
				if i := strings.Index(key[len(req.Prefix):], req.Delimiter); i >= 0 {
					cp := key[:len(req.Prefix)+i+len(req.Delimiter)]
					if n == max {
						res.Truncated = true
						return nil
					}
					// A page that ended on this prefix resumes after it; a
					// start-after inside it still lists the prefix.
					if cp != req.After {
						res.CommonPrefixes = append(res.CommonPrefixes, cp)
						res.Next = cp
						n++
					}
					// UTF-8 never contains 0xff, so this sorts after every key under cp.
					it.Seek(objectKey(req.Bucket, cp+"\xff"))
					continue
				}
			}
			if n == max {
				res.Truncated = true
				return nil
			}
			var rec objectRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			o := rec.Object
			o.Inline, o.Segments = nil, nil
			res.Objects = append(res.Objects, o)
			res.Next = key
			n++
			it.Next()
		}
		return nil
	})
	if !res.Truncated {
		res.Next = ""
	}
	return res, err
}

func (s *store) ringVersion(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(keyRingVersion)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(val []byte) error {
		if len(val) != 8 {
			return fmt.Errorf("ring version is %d bytes", len(val))
		}
		v = binary.BigEndian.Uint64(val)
		return nil
	})
	return v, err
}

func (s *store) bumpRing(txn *badger.Txn) error {
	v, err := s.ringVersion(txn)
	if err != nil {
		return err
	}
	return txn.Set(keyRingVersion, binary.BigEndian.AppendUint64(nil, v+1))
}

// heartbeat registers or refreshes a chunk server. The ring version changes
// only when placement inputs do (a new node, a moved address or zone, a node
// coming back up), not on every heartbeat.
func (s *store) heartbeat(hb metaapi.Heartbeat, now time.Time) error {
	if hb.ID == "" || hb.Addr == "" {
		return fmt.Errorf("%w: heartbeat without node id or address", metaapi.ErrInvalidArgument)
	}
	return s.update(func(txn *badger.Txn) error {
		var n metaapi.Node
		err := getJSON(txn, nodeKey(hb.ID), &n)
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		state := metaapi.NodeUp
		if draining, derr := exists(txn, drainKey(hb.ID)); derr != nil {
			return derr
		} else if draining {
			state = metaapi.NodeDraining
		}
		changed := err != nil || n.Addr != hb.Addr || n.Zone != hb.Zone || n.State != state
		if err != nil {
			n = metaapi.Node{ID: hb.ID, Joined: now}
		}
		n.Addr, n.Zone, n.Disks, n.LastSeen, n.State = hb.Addr, hb.Zone, hb.Disks, now, state
		if changed {
			if err := s.bumpRing(txn); err != nil {
				return err
			}
		}
		return setJSON(txn, nodeKey(hb.ID), n)
	})
}

// setNodeState moves a node to a new state if it is not there already.
func (s *store) setNodeState(id string, st metaapi.NodeState) error {
	return s.update(func(txn *badger.Txn) error {
		var n metaapi.Node
		if err := getJSON(txn, nodeKey(id), &n); err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("%w: no node %q", metaapi.ErrInvalidArgument, id)
			}
			return err
		}
		if n.State == st {
			return nil
		}
		n.State = st
		if err := s.bumpRing(txn); err != nil {
			return err
		}
		return setJSON(txn, nodeKey(id), n)
	})
}

func (s *store) nodes() ([]metaapi.Node, uint64, error) {
	ns := []metaapi.Node{}
	var version uint64
	err := s.view(func(txn *badger.Txn) error {
		var err error
		if version, err = s.ringVersion(txn); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pNode}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var n metaapi.Node
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &n) }); err != nil {
				return err
			}
			ns = append(ns, n)
		}
		return nil
	})
	return ns, version, err
}

func (s *store) reportBad(bad []metaapi.BadShard) error {
	return s.update(func(txn *badger.Txn) error {
		for _, b := range bad {
			key := append([]byte{pBad}, ShardID(b.Segment, b.Index)+"\x00"+b.Node...)
			if err := setJSON(txn, key, b); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) badShards() ([]metaapi.BadShard, error) {
	bs := []metaapi.BadShard{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pBad}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var b metaapi.BadShard
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &b) }); err != nil {
				return err
			}
			bs = append(bs, b)
		}
		return nil
	})
	return bs, err
}

// gcEntry is a queued deletion with its queue key.
type gcEntry struct {
	metaapi.ShardRef
	key []byte
}

func queueDeletion(txn *badger.Txn, node, shard string, due time.Time) error {
	key := binary.BigEndian.AppendUint64([]byte{pGC}, uint64(due.UnixNano()))
	key = append(append(append(key, node...), 0), shard...)
	if err := txn.Set(key, nil); err != nil {
		return err
	}
	return txn.Set(nodeShardKey(pPending, node, shard), key)
}

// gcBatch returns up to max queued shard deletions that are due by now.
func (s *store) gcBatch(max int, now time.Time) ([]gcEntry, error) {
	var es []gcEntry
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pGC}})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(es) < max; it.Next() {
			key := it.Item().KeyCopy(nil)
			if int64(binary.BigEndian.Uint64(key[1:9])) > now.UnixNano() {
				break
			}
			node, shard, _ := strings.Cut(string(key[9:]), "\x00")
			es = append(es, gcEntry{ShardRef: metaapi.ShardRef{Node: node, Shard: shard}, key: key})
		}
		return nil
	})
	return es, err
}

func (s *store) gcPending() (int, error) {
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pGC}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n, err
}

func (s *store) gcDone(es []gcDoneArgs) error {
	return s.update(func(txn *badger.Txn) error {
		for _, e := range es {
			if err := txn.Delete(e.Key); err != nil {
				return err
			}
			if err := txn.Delete(nodeShardKey(pPending, e.Node, e.Shard)); err != nil {
				return err
			}
		}
		return nil
	})
}

// referenced reports whether a node's shard belongs to a live segment or is
// already queued for deletion — either way, not an orphan.
func (s *store) referenced(node, shard string) (bool, error) {
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		for _, p := range []byte{pIndex, pPending} {
			ok, err := exists(txn, nodeShardKey(p, node, shard))
			if err != nil || ok {
				found = ok
				return err
			}
		}
		return nil
	})
	return found, err
}
