// Package meta is the metadata service: buckets, object records, the segments
// and shard locations behind them, the chunk-server registry and the ring it
// publishes, and the garbage collector that deletes shards nothing references.
//
// State lives in Badger (see store.go for the keyspace). The HTTP API speaks
// the types of package metaapi.
package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/internal/clusterauth"
	"github.com/talusfs/talus/meta/metaapi"
)

// Config configures a metadata server.
type Config struct {
	Dir    string // state directory: Badger store and Raft log
	Secret []byte // cluster secret shared with chunk servers and clients
	Logger *slog.Logger

	// ID names this node in the Raft group; it must stay the same across
	// restarts. Default "meta1".
	ID string
	// RaftAddr is where Raft listens for its peers (default: an ephemeral
	// loopback port, enough for a group of one); RaftAdvertise is the
	// address peers reach it at, when that differs.
	RaftAddr, RaftAdvertise string
	// HTTPAddr is the address clients and other metadata nodes reach this
	// node's API at; followers forward to the leader's.
	HTTPAddr string
	// GossipAddr is this node's serf address, published in its member
	// record so that chunk servers and gateways can find the gossip.
	GossipAddr string
	// Join lists API addresses of metadata nodes of an existing group. A
	// node without Raft state asks them to add it as a voter; with no Join
	// it forms a group of its own (bootstrap). Either way a node that has
	// Raft state just resumes.
	Join []string
	// SnapshotThreshold, when set, snapshots after this many log entries and
	// keeps as many behind the snapshot (tests use it to force catch-up by
	// snapshot); 0 keeps Raft's defaults.
	SnapshotThreshold uint64

	// Cluster-wide data layout published with the ring.
	K, M        int
	BlockSize   int
	SegmentSize int64
	InlineMax   int64

	// DownAfter is how long a chunk server may miss heartbeats before it is
	// marked down and left out of new placements.
	DownAfter time.Duration
	// GCDelay is how long the shards of a deleted or replaced version are
	// kept, so that reads which looked the old version up just before can
	// finish. A read slower than this may fail; it never returns wrong bytes.
	GCDelay time.Duration
	// GCInterval is how often queued shard deletions are sent out.
	GCInterval time.Duration
	// OrphanGrace is how old an unreferenced shard file must be before the
	// orphan sweep deletes it; it must exceed the longest upload.
	OrphanGrace time.Duration
	// OrphanInterval is how often chunk-server inventories are swept.
	OrphanInterval time.Duration

	// Repair, drain and rebalance: see repair.go and repairer.go.
	//
	// DownOutInterval is how long a chunk server may be down before it is
	// out: its shards count as lost and are rebuilt elsewhere.
	DownOutInterval time.Duration
	// RepairBandwidth limits the bytes per second that repair and rebalance
	// write (0: DefaultRepairBandwidth; negative: no limit).
	RepairBandwidth int64
	// RepairWorkers is how many segments are repaired at once.
	RepairWorkers int
	// RepairInterval is how often the leader looks for segments to repair.
	RepairInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ID == "" {
		c.ID = "meta1"
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:0"
	}
	if c.K == 0 {
		c.K, c.M = 4, 2
	}
	if c.BlockSize == 0 {
		c.BlockSize = erasure.DefaultBlockSize
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = 64 << 20
	}
	if c.InlineMax == 0 {
		c.InlineMax = 64 << 10
	}
	if c.DownAfter == 0 {
		c.DownAfter = 10 * time.Second
	}
	if c.GCDelay == 0 {
		c.GCDelay = 5 * time.Minute
	}
	if c.GCInterval == 0 {
		c.GCInterval = 2 * time.Second
	}
	if c.OrphanGrace == 0 {
		c.OrphanGrace = time.Hour
	}
	if c.OrphanInterval == 0 {
		c.OrphanInterval = 10 * time.Minute
	}
	c.setRepairDefaults()
}

// Server is one metadata node. Every change goes through the Raft log
// (propose); the leader serves reads and runs the background work, and
// followers forward API requests to it.
type Server struct {
	cfg    Config
	log    *slog.Logger
	st     *store
	fsm    *fsm
	raft   *raftNode
	chunks *chunkserver.Client
	mux    *http.ServeMux
	proxy  *http.Client
	now    func() time.Time

	// ready is set while this node leads and has applied everything its
	// predecessors committed, so its reads are current.
	ready atomic.Bool
	// live is the leader's view of chunk-server heartbeats.
	live liveness
	// rep is the leader's repair and rebalance machinery.
	rep repairer

	// gcKick wakes the collector early, e.g. right after a burst of deletes.
	gcKick chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the metadata node's state in cfg.Dir and starts
// its Raft member. Serve Handler, and call Run for the background work.
func Open(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("meta: no data directory")
	}
	// Writes are not synced one by one: the Raft log is the durable record
	// and replays into the store after a crash (see fsm).
	opts := badger.DefaultOptions(filepath.Join(filepath.Clean(cfg.Dir), "store")).
		WithLogger(nil).
		WithSyncWrites(false).
		// Objects below InlineMax live in their records; keep those in the
		// LSM tree only when small, so scans stay fast.
		WithValueThreshold(4 << 10).
		WithNumVersionsToKeep(1)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("meta: open badger in %s: %w", cfg.Dir, err)
	}
	st := &store{db: db}
	applied, err := st.appliedIndex()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		st:     st,
		fsm:    &fsm{st: st, feed: newFeed(applied), log: cfg.Logger, skipTo: applied},
		chunks: chunkserver.NewClient(cfg.Secret, nil),
		proxy: &http.Client{Transport: &http.Transport{
			Proxy:       nil,
			DialContext: (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// A leader that vanished without closing connections must not
			// hold forwarded requests for long; the client retries.
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   256,
			DisableCompression:    true,
		}},
		now:    time.Now,
		gcKick: make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	if s.raft, err = openRaft(cfg, s.fsm); err != nil {
		db.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	s.routes()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchLeadership()
	}()
	return s, nil
}

// Close stops the Raft member and closes the store. Run must have returned.
// Closing twice is harmless.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		err := s.raft.close()
		s.wg.Wait()
		s.closeErr = errors.Join(err, s.st.close())
	})
	return s.closeErr
}

// Handler serves the metadata API.
func (s *Server) Handler() http.Handler {
	return clusterauth.Middleware(s.cfg.Secret, s.forward(s.mux))
}

// Run runs the background work — joining the group, failure detection,
// garbage collection, the orphan sweep — until ctx is done. The work runs
// only while this node leads.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.join(ctx)
	}()
	loops := []struct {
		every time.Duration
		fn    func(context.Context)
		kick  <-chan struct{}
	}{
		{time.Second, s.detectDown, nil},
		{s.cfg.GCInterval, s.collect, s.gcKick},
		{s.cfg.OrphanInterval, s.sweepOrphans, nil},
		{time.Second, s.detectOut, nil},
		{s.cfg.RepairInterval, s.repairScan, nil},
		{time.Second, s.repairRun, s.repair().kick},
		{time.Second, s.rebalanceRun, nil},
	}
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(l.every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				case <-l.kick:
				}
				if s.ready.Load() {
					l.fn(ctx)
				}
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
}

// local lists the API paths every node answers itself; everything else is
// served by the leader.
var local = map[string]bool{
	"/healthz":        true,
	"/readyz":         true,
	"/v1/ring":        true, // a ring a moment stale only costs a retry
	"/v1/changes":     true, // every node applies every command, so has the feed
	"/v1/meta/status": true,
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", s.handleReady)
	m.HandleFunc("POST /v1/buckets", s.handleCreateBucket)
	m.HandleFunc("GET /v1/buckets", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			bs, err := s.st.buckets()
			reply(w, bs, err)
		}
	})
	m.HandleFunc("GET /v1/bucket", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			b, err := s.st.bucket(r.URL.Query().Get("bucket"))
			reply(w, b, err)
		}
	})
	m.HandleFunc("POST /v1/bucket/acl", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, err := s.propose(opSetBucketACL, bucketACLArgs{Bucket: q.Get("bucket"), ACL: q.Get("acl")})
		reply(w, nil, err)
	})
	m.HandleFunc("DELETE /v1/bucket", func(w http.ResponseWriter, r *http.Request) {
		_, err := s.propose(opDeleteBucket, r.URL.Query().Get("bucket"))
		reply(w, nil, err)
	})
	m.HandleFunc("POST /v1/objects", s.handleCommit)
	m.HandleFunc("GET /v1/object", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			q := r.URL.Query()
			o, err := s.st.object(q.Get("bucket"), q.Get("key"))
			reply(w, o, err)
		}
	})
	m.HandleFunc("DELETE /v1/object", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, err := s.propose(opDeleteObject, objectArgs{Bucket: q.Get("bucket"), Key: q.Get("key"), Cond: metaapi.Preconditions{IfMatch: q.Get("ifMatch")}})
		if err == nil {
			s.kickGC()
		}
		reply(w, nil, err)
	})
	m.HandleFunc("POST /v1/rename", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.RenameRequest
		if !decode(w, r, &req) {
			return
		}
		_, err := s.propose(opRename, req)
		s.kickGC()
		reply(w, nil, err)
	})
	m.HandleFunc("GET /v1/changes", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		since, err := strconv.ParseUint(q.Get("since"), 10, 64)
		if err != nil {
			reply(w, nil, fmt.Errorf("%w: since %q", metaapi.ErrInvalidArgument, q.Get("since")))
			return
		}
		reply(w, s.fsm.feed.since(r.Context(), q.Get("bucket"), since), nil)
	})
	m.HandleFunc("GET /v1/list", s.handleList)
	m.HandleFunc("GET /v1/ring", s.handleRing)
	m.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			ns, _, err := s.st.nodes()
			reply(w, s.live.overlay(ns), err)
		}
	})
	m.HandleFunc("POST /v1/nodes/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var hb metaapi.Heartbeat
		if !decode(w, r, &hb) {
			return
		}
		reply(w, nil, s.heartbeat(hb))
	})
	m.HandleFunc("POST /v1/badshards", func(w http.ResponseWriter, r *http.Request) {
		var bad []metaapi.BadShard
		if !decode(w, r, &bad) {
			return
		}
		now := s.now()
		for i := range bad {
			if bad[i].Time.IsZero() {
				bad[i].Time = now
			}
			s.log.Warn("bad shard reported", "shard", ShardID(bad[i].Segment, bad[i].Index), "node", bad[i].Node, "reason", bad[i].Reason)
		}
		_, err := s.propose(opReportBad, bad)
		reply(w, nil, err)
	})
	m.HandleFunc("GET /v1/badshards", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			bs, err := s.st.badShards()
			reply(w, bs, err)
		}
	})
	m.HandleFunc("GET /v1/gc", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			n, err := s.st.gcPending()
			reply(w, metaapi.GCStatus{Pending: n}, err)
		}
	})
	m.HandleFunc("POST /v1/uploads", func(w http.ResponseWriter, r *http.Request) {
		var u metaapi.Upload
		if !decode(w, r, &u) {
			return
		}
		u.ID, u.Initiated = newID(), s.now().UTC()
		_, err := s.propose(opCreateUpload, u)
		reply(w, u, err)
	})
	m.HandleFunc("GET /v1/upload", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			q := r.URL.Query()
			u, err := s.st.upload(q.Get("bucket"), q.Get("key"), q.Get("uploadId"))
			reply(w, u, err)
		}
	})
	m.HandleFunc("DELETE /v1/upload", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, err := s.propose(opAbortUpload, uploadArgs{Bucket: q.Get("bucket"), Key: q.Get("key"), ID: q.Get("uploadId")})
		s.kickGC()
		reply(w, nil, err)
	})
	m.HandleFunc("POST /v1/parts", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.PartCommitRequest
		if !decode(w, r, &req) {
			return
		}
		req.Part.Modified = s.now().UTC()
		_, err := s.propose(opCommitPart, req)
		reply(w, nil, err)
	})
	m.HandleFunc("GET /v1/parts", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			q := r.URL.Query()
			after, _ := strconv.Atoi(q.Get("after"))
			max, _ := strconv.Atoi(q.Get("max"))
			pl, err := s.st.listParts(q.Get("bucket"), q.Get("key"), q.Get("uploadId"), after, max)
			reply(w, pl, err)
		}
	})
	m.HandleFunc("POST /v1/uploads/complete", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.CompleteRequest
		if !decode(w, r, &req) {
			return
		}
		o, err := proposeFor[metaapi.Object](s, opCompleteUpload, req)
		s.kickGC()
		reply(w, o, err)
	})
	m.HandleFunc("POST /v1/uploads/list", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.UploadListRequest
		if !decode(w, r, &req) || !s.verify(w) {
			return
		}
		res, err := s.st.listUploads(req)
		reply(w, res, err)
	})
	m.HandleFunc("POST /v1/copy", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.CopyRequest
		if !decode(w, r, &req) {
			return
		}
		o, err := proposeFor[metaapi.Object](s, opCopy, req)
		s.kickGC()
		reply(w, o, err)
	})
	m.HandleFunc("POST /v1/users", func(w http.ResponseWriter, r *http.Request) {
		var u metaapi.User
		if !decode(w, r, &u) {
			return
		}
		if u.Created.IsZero() {
			u.Created = s.now().UTC()
		}
		_, err := s.propose(opPutUser, u)
		reply(w, nil, err)
	})
	m.HandleFunc("GET /v1/users", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			us, err := s.st.users()
			reply(w, us, err)
		}
	})
	m.HandleFunc("GET /v1/user", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			u, err := s.st.user(r.URL.Query().Get("accessKey"))
			reply(w, u, err)
		}
	})
	m.HandleFunc("DELETE /v1/user", func(w http.ResponseWriter, r *http.Request) {
		_, err := s.propose(opDeleteUser, r.URL.Query().Get("accessKey"))
		reply(w, nil, err)
	})
	m.HandleFunc("GET /v1/meta/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.status(), nil)
	})
	m.HandleFunc("GET /v1/meta/members", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			ms, err := s.st.metaMembers()
			reply(w, ms, err)
		}
	})
	m.HandleFunc("POST /v1/meta/members", func(w http.ResponseWriter, r *http.Request) {
		var mm metaapi.MetaMember
		if !decode(w, r, &mm) {
			return
		}
		reply(w, nil, s.addMember(mm))
	})
	m.HandleFunc("DELETE /v1/meta/members", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.removeMember(r.URL.Query().Get("id")))
	})
	s.adminRoutes(m)
	s.mux = m
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) handleCreateBucket(w http.ResponseWriter, r *http.Request) {
	var b metaapi.Bucket
	if !decode(w, r, &b) {
		return
	}
	if b.Created.IsZero() {
		b.Created = s.now().UTC()
	}
	_, err := s.propose(opCreateBucket, b)
	reply(w, nil, err)
}

func (s *Server) handleCommit(w http.ResponseWriter, r *http.Request) {
	var req metaapi.CommitRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Object.Modified.IsZero() {
		req.Object.Modified = s.now().UTC()
	}
	o, err := proposeFor[metaapi.Object](s, opCommit, req)
	if err == nil {
		s.kickGC()
	}
	reply(w, o, err)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := metaapi.ListRequest{
		Bucket:    q.Get("bucket"),
		Prefix:    q.Get("prefix"),
		Delimiter: q.Get("delimiter"),
		After:     q.Get("after"),
	}
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			reply(w, nil, fmt.Errorf("%w: max %q", metaapi.ErrInvalidArgument, v))
			return
		}
		req.Max = n
	}
	if !s.verify(w) {
		return
	}
	res, err := s.st.list(req)
	reply(w, res, err)
}

func (s *Server) handleRing(w http.ResponseWriter, r *http.Request) {
	ns, version, err := s.st.nodes()
	reply(w, metaapi.Ring{
		Version:     version,
		Nodes:       ns,
		K:           s.cfg.K,
		M:           s.cfg.M,
		BlockSize:   s.cfg.BlockSize,
		InlineMax:   s.cfg.InlineMax,
		SegmentSize: s.cfg.SegmentSize,
	}, err)
}

// maxRequestBody bounds metadata requests: inline objects plus a generous
// record. Larger bodies are a client bug or an attack.
const maxRequestBody = 16 << 20

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(v); err != nil {
		reply(w, nil, fmt.Errorf("%w: malformed request body: %v", metaapi.ErrInvalidArgument, err))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code, status := metaapi.CodeOf(err)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(metaapi.ErrorBody{Code: code, Message: err.Error()})
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	json.NewEncoder(w).Encode(v)
}

func (s *Server) kickGC() {
	select {
	case s.gcKick <- struct{}{}:
	default:
	}
}

// Dir is the node's state directory.
func (s *Server) Dir() string { return s.cfg.Dir }
