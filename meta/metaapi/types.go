// Package metaapi is the wire contract of the metadata service: the records it
// keeps, the requests it accepts, and a Client that speaks them over HTTP.
//
// The metadata server (package meta) and every talus component that talks to
// it (the native client, chunk servers' heartbeats, the admin CLI) share these
// types, so the protocol lives in one place.
package metaapi

import (
	"time"
)

// Bucket is a namespace of objects.
type Bucket struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner,omitempty"`
	// ACL is the bucket's S3 canned ACL ("public-read", ...); empty means
	// private. The metadata service stores it and does not interpret it.
	ACL string `json:"acl,omitempty"`
}

// ShardLoc says where one shard of a segment lives. Node is empty when the
// shard is missing (a write that tolerated a failed server, or a shard lost and
// not yet repaired).
type ShardLoc struct {
	Node string `json:"node"`
	Disk string `json:"disk,omitempty"`
}

// Segment is a run of object bytes, Reed-Solomon coded into K+M shards. The
// shard with index i is stored as chunk-server shard "<ID>.<i>" on Shards[i].
type Segment struct {
	ID        string     `json:"id"`
	K         int        `json:"k"`
	M         int        `json:"m"`
	BlockSize int        `json:"bs"`
	Size      int64      `json:"size"`
	Shards    []ShardLoc `json:"shards"`
	// Existing marks, in a commit, a segment that is already stored and
	// referenced by another object (copy, multipart assembly): the commit
	// takes a reference on it instead of creating it, and fails with
	// ErrConflict if it no longer exists.
	Existing bool `json:"existing,omitempty"`
}

// Object is the metadata record of one object version.
type Object struct {
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	Size        int64             `json:"size"`
	ETag        string            `json:"etag"`
	ContentType string            `json:"ctype,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Modified    time.Time         `json:"mtime"`
	// Inline holds the whole body of small objects, which skip the chunk
	// servers entirely.
	Inline   []byte    `json:"inline,omitempty"`
	Segments []Segment `json:"segs,omitempty"`
}

// Preconditions guard a commit or delete against concurrent writers, with S3's
// If-Match / If-None-Match semantics on the current object.
type Preconditions struct {
	IfMatch     string `json:"ifMatch,omitempty"`     // current ETag must equal this ("*": must exist)
	IfNoneMatch string `json:"ifNoneMatch,omitempty"` // current ETag must differ ("*": must not exist)
}

// CommitRequest makes an object visible, atomically replacing any previous
// version. Its new segments must already be durable on the chunk servers.
type CommitRequest struct {
	Object Object        `json:"object"`
	Cond   Preconditions `json:"cond"`
}

// ListRequest selects keys of a bucket in lexical order.
type ListRequest struct {
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix,omitempty"`
	Delimiter string `json:"delimiter,omitempty"`
	// After excludes every key up to and including it (S3's start-after,
	// marker and continuation token all map onto it).
	After string `json:"after,omitempty"`
	Max   int    `json:"max,omitempty"`
}

// ListResult is one page of a listing. Objects carry no Inline data and no
// segments.
type ListResult struct {
	Objects        []Object `json:"objects"`
	CommonPrefixes []string `json:"prefixes,omitempty"`
	Truncated      bool     `json:"truncated"`
	// Next is the value of After that continues the listing.
	Next string `json:"next,omitempty"`
}

// NodeState is a chunk server's standing in the cluster.
type NodeState string

// Node states. Only up nodes receive new shards; down nodes are read around.
const (
	NodeUp   NodeState = "up"
	NodeDown NodeState = "down"
	// NodeOut is a node down for longer than the metadata service's
	// down-out interval: its shards count as lost and are rebuilt elsewhere.
	NodeOut NodeState = "out"
	// NodeDraining is a node an operator is emptying: it gets no new shards,
	// serves reads, and its shards move elsewhere.
	NodeDraining NodeState = "draining"
)

// Disk is one of a chunk server's disks as last reported.
type Disk struct {
	ID       string `json:"id"`
	Path     string `json:"path,omitempty"`
	Capacity uint64 `json:"capacity"`
	Free     uint64 `json:"free"`
	Used     uint64 `json:"used"`
	Shards   int64  `json:"shards"`
	Healthy  bool   `json:"healthy"`
}

// Node is a chunk server in the registry.
type Node struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr"`
	Zone     string    `json:"zone,omitempty"`
	State    NodeState `json:"state"`
	Disks    []Disk    `json:"disks,omitempty"`
	LastSeen time.Time `json:"lastSeen"`
	Joined   time.Time `json:"joined"`
}

// Capacity sums the node's healthy disks.
func (n *Node) Capacity() (capacity, free uint64) {
	for _, d := range n.Disks {
		if d.Healthy {
			capacity += d.Capacity
			free += d.Free
		}
	}
	return capacity, free
}

// Heartbeat is what a chunk server reports periodically.
type Heartbeat struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	Zone  string `json:"zone,omitempty"`
	Disks []Disk `json:"disks"`
}

// Ring is the placement input the metadata service publishes: every known
// chunk server, the version that changes whenever placement would, and the
// cluster's default erasure layout.
type Ring struct {
	Version   uint64 `json:"version"`
	Nodes     []Node `json:"nodes"`
	K         int    `json:"k"`
	M         int    `json:"m"`
	BlockSize int    `json:"bs"`
	// InlineMax is the largest object stored inline in its metadata record.
	InlineMax int64 `json:"inlineMax"`
	// SegmentSize is the most data bytes one segment holds.
	SegmentSize int64 `json:"segSize"`
}

// BadShard reports a shard that could not be read or failed its checksum.
type BadShard struct {
	Segment string    `json:"seg"`
	Index   int       `json:"idx"`
	Node    string    `json:"node"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
}

// ShardRef names one stored shard on one node: "<segment>.<index>".
type ShardRef struct {
	Node  string `json:"node"`
	Shard string `json:"shard"`
}

// RenameRequest renames one object (Dir false: From and To are keys) or every
// key under a prefix (Dir true: From and To are prefixes ending in "/", the
// directory marker object From itself included) in one atomic step; no data
// moves. With NoReplace the rename fails with ErrPrecondition if To exists.
// A directory rename also fails with ErrPrecondition when anything but the
// marker object To lives under To: only an empty directory can be replaced.
type RenameRequest struct {
	Bucket    string `json:"bucket"`
	From      string `json:"from"`
	To        string `json:"to"`
	Dir       bool   `json:"dir,omitempty"`
	NoReplace bool   `json:"noReplace,omitempty"`
}

// Changes is one answer of the change feed: what changed in a bucket after a
// position in the metadata log, up to Next.
type Changes struct {
	// Next is the position to ask from next time.
	Next uint64 `json:"next"`
	// Reset means the feed cannot tell what changed since the position asked
	// for (it is older than the feed remembers, or was never on this
	// history); the caller must drop everything it caches.
	Reset bool `json:"reset,omitempty"`
	// Keys were created, overwritten, deleted, or renamed from or to.
	Keys []string `json:"keys,omitempty"`
	// Prefixes changed as a whole (a directory rename, a bucket deletion).
	Prefixes []string `json:"prefixes,omitempty"`
}

// MetaMember is one metadata node of the Raft group.
type MetaMember struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raftAddr"`
	HTTPAddr string `json:"httpAddr"`
	// GossipAddr is the node's serf address, where other processes join the
	// cluster's gossip; empty when the node runs without gossip.
	GossipAddr string `json:"gossipAddr,omitempty"`
}

// MetaStatus is the Raft group as one metadata node sees it.
type MetaStatus struct {
	ID          string           `json:"id"`
	State       string           `json:"state"` // Leader, Follower, Candidate, Shutdown
	Leader      string           `json:"leader"`
	LeaderAddr  string           `json:"leaderAddr,omitempty"` // its HTTP address
	Term        uint64           `json:"term"`
	CommitIndex uint64           `json:"commitIndex"`
	AppliedIdx  uint64           `json:"appliedIndex"`
	LastLog     uint64           `json:"lastLogIndex"`
	Servers     []MetaServerInfo `json:"servers"`
}

// MetaServerInfo is one voter as the leader sees it.
type MetaServerInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raftAddr"`
	HTTPAddr string `json:"httpAddr,omitempty"`
	Suffrage string `json:"suffrage"`
	// Match is the last log index known replicated to the server (the leader
	// itself: its last index); Lag is how far it is behind the commit index.
	// Both are known only on the leader.
	Match uint64 `json:"match"`
	Lag   uint64 `json:"lag"`
}
