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
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/internal/clusterauth"
	"github.com/talusfs/talus/meta/metaapi"
)

// Config configures a metadata server.
type Config struct {
	Dir    string // Badger directory
	Secret []byte // cluster secret shared with chunk servers and clients
	Logger *slog.Logger

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
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
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
}

// Server is a metadata server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	st     *store
	chunks *chunkserver.Client
	mux    *http.ServeMux
	now    func() time.Time

	// gcKick wakes the collector early, e.g. right after a burst of deletes.
	gcKick chan struct{}
	wg     sync.WaitGroup
}

// Open opens (or creates) the metadata store in cfg.Dir.
func Open(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("meta: no data directory")
	}
	opts := badger.DefaultOptions(filepath.Clean(cfg.Dir)).
		WithLogger(nil).
		WithSyncWrites(true).
		// Objects below InlineMax live in their records; keep those in the
		// LSM tree only when small, so scans stay fast.
		WithValueThreshold(4 << 10).
		WithNumVersionsToKeep(1)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("meta: open badger in %s: %w", cfg.Dir, err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		st:     &store{db: db},
		chunks: chunkserver.NewClient(cfg.Secret, nil),
		now:    time.Now,
		gcKick: make(chan struct{}, 1),
	}
	s.routes()
	return s, nil
}

// Close closes the store. Run must have returned.
func (s *Server) Close() error {
	s.wg.Wait()
	return s.st.close()
}

// Handler serves the metadata API.
func (s *Server) Handler() http.Handler {
	return clusterauth.Middleware(s.cfg.Secret, s.mux)
}

// Run runs the background work — failure detection, garbage collection, the
// orphan sweep — until ctx is done.
func (s *Server) Run(ctx context.Context) {
	loops := []struct {
		every time.Duration
		fn    func(context.Context)
		kick  <-chan struct{}
	}{
		{time.Second, s.detectDown, nil},
		{s.cfg.GCInterval, s.collect, s.gcKick},
		{s.cfg.OrphanInterval, s.sweepOrphans, nil},
	}
	for _, l := range loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(l.every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				case <-l.kick:
				}
				l.fn(ctx)
			}
		}()
	}
	<-ctx.Done()
	s.wg.Wait()
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	m.HandleFunc("POST /v1/buckets", s.handleCreateBucket)
	m.HandleFunc("GET /v1/buckets", func(w http.ResponseWriter, r *http.Request) {
		bs, err := s.st.buckets()
		reply(w, bs, err)
	})
	m.HandleFunc("GET /v1/bucket", func(w http.ResponseWriter, r *http.Request) {
		b, err := s.st.bucket(r.URL.Query().Get("bucket"))
		reply(w, b, err)
	})
	m.HandleFunc("POST /v1/bucket/acl", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		reply(w, nil, s.st.setBucketACL(q.Get("bucket"), q.Get("acl")))
	})
	m.HandleFunc("DELETE /v1/bucket", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.st.deleteBucket(r.URL.Query().Get("bucket"), s.gcDue()))
	})
	m.HandleFunc("POST /v1/objects", s.handleCommit)
	m.HandleFunc("GET /v1/object", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o, err := s.st.object(q.Get("bucket"), q.Get("key"))
		reply(w, o, err)
	})
	m.HandleFunc("DELETE /v1/object", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		err := s.st.deleteObject(q.Get("bucket"), q.Get("key"), metaapi.Preconditions{IfMatch: q.Get("ifMatch")}, s.gcDue())
		if err == nil {
			s.kickGC()
		}
		reply(w, nil, err)
	})
	m.HandleFunc("GET /v1/list", s.handleList)
	m.HandleFunc("GET /v1/ring", s.handleRing)
	m.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		ns, _, err := s.st.nodes()
		reply(w, ns, err)
	})
	m.HandleFunc("POST /v1/nodes/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var hb metaapi.Heartbeat
		if !decode(w, r, &hb) {
			return
		}
		reply(w, nil, s.st.heartbeat(hb, s.now()))
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
		reply(w, nil, s.st.reportBad(bad))
	})
	m.HandleFunc("GET /v1/badshards", func(w http.ResponseWriter, r *http.Request) {
		bs, err := s.st.badShards()
		reply(w, bs, err)
	})
	m.HandleFunc("GET /v1/gc", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.st.gcPending()
		reply(w, metaapi.GCStatus{Pending: n}, err)
	})
	m.HandleFunc("POST /v1/uploads", func(w http.ResponseWriter, r *http.Request) {
		var u metaapi.Upload
		if !decode(w, r, &u) {
			return
		}
		u.ID, u.Initiated = newID(), s.now().UTC()
		err := s.st.createUpload(u)
		reply(w, u, err)
	})
	m.HandleFunc("GET /v1/upload", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		u, err := s.st.upload(q.Get("bucket"), q.Get("key"), q.Get("uploadId"))
		reply(w, u, err)
	})
	m.HandleFunc("DELETE /v1/upload", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		err := s.st.abortUpload(q.Get("bucket"), q.Get("key"), q.Get("uploadId"), s.gcDue())
		s.kickGC()
		reply(w, nil, err)
	})
	m.HandleFunc("POST /v1/parts", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.PartCommitRequest
		if !decode(w, r, &req) {
			return
		}
		req.Part.Modified = s.now().UTC()
		reply(w, nil, s.st.commitPart(req, s.gcDue()))
	})
	m.HandleFunc("GET /v1/parts", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, _ := strconv.Atoi(q.Get("after"))
		max, _ := strconv.Atoi(q.Get("max"))
		pl, err := s.st.listParts(q.Get("bucket"), q.Get("key"), q.Get("uploadId"), after, max)
		reply(w, pl, err)
	})
	m.HandleFunc("POST /v1/uploads/complete", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.CompleteRequest
		if !decode(w, r, &req) {
			return
		}
		o, err := s.st.completeUpload(req, s.now().UTC(), s.gcDue())
		s.kickGC()
		reply(w, o, err)
	})
	m.HandleFunc("POST /v1/uploads/list", func(w http.ResponseWriter, r *http.Request) {
		var req metaapi.UploadListRequest
		if !decode(w, r, &req) {
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
		o, err := s.st.copyObject(req, s.now().UTC(), s.gcDue())
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
		reply(w, nil, s.st.putUser(u))
	})
	m.HandleFunc("GET /v1/users", func(w http.ResponseWriter, r *http.Request) {
		us, err := s.st.users()
		reply(w, us, err)
	})
	m.HandleFunc("GET /v1/user", func(w http.ResponseWriter, r *http.Request) {
		u, err := s.st.user(r.URL.Query().Get("accessKey"))
		reply(w, u, err)
	})
	m.HandleFunc("DELETE /v1/user", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.st.deleteUser(r.URL.Query().Get("accessKey")))
	})
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
	reply(w, nil, s.st.createBucket(b))
}

func (s *Server) handleCommit(w http.ResponseWriter, r *http.Request) {
	var req metaapi.CommitRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Object.Modified.IsZero() {
		req.Object.Modified = s.now().UTC()
	}
	o, err := s.st.commit(req, s.gcDue())
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

// gcDue is when shards released now may be deleted.
func (s *Server) gcDue() time.Time { return s.now().Add(s.cfg.GCDelay) }

func (s *Server) kickGC() {
	select {
	case s.gcKick <- struct{}{}:
	default:
	}
}

// detectDown marks chunk servers that stopped heartbeating as down, so new
// writes are placed elsewhere.
func (s *Server) detectDown(ctx context.Context) {
	ns, _, err := s.st.nodes()
	if err != nil {
		s.log.Error("list nodes", "err", err)
		return
	}
	cutoff := s.now().Add(-s.cfg.DownAfter)
	for _, n := range ns {
		if n.State == metaapi.NodeUp && n.LastSeen.Before(cutoff) {
			if err := s.st.setNodeState(n.ID, metaapi.NodeDown, cutoff); err != nil {
				s.log.Error("mark node down", "node", n.ID, "err", err)
				continue
			}
			s.log.Warn("chunk server down", "node", n.ID, "addr", n.Addr, "lastSeen", n.LastSeen)
		}
	}
}
