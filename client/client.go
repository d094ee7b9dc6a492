// Package client is talus's native data path: it stores objects by
// erasure-coding them onto chunk servers chosen by placement, commits them to
// the metadata service, and reads them back — around failed servers when it
// must. The S3 gateway, the FUSE mount, the admin CLI and the benchmarks all
// sit on it.
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/internal/multimd5"
	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/placement"
)

// Config configures a Client.
type Config struct {
	// Meta lists metadata service addresses (host:port).
	Meta []string
	// Secret is the cluster's shared secret.
	Secret []byte
	Logger *slog.Logger
	// HTTPClient, if set, carries requests to chunk servers.
	HTTPClient *http.Client
	// RingTTL is how long a fetched ring is trusted before it is refreshed;
	// a failed placement or shard write refreshes it at once.
	RingTTL time.Duration
	// ShardTimeout is how long a shard read may stall before the read goes
	// around it using parity.
	ShardTimeout time.Duration
	// MetaRetry bounds how long a metadata call keeps retrying while no
	// metadata leader can be reached (0: metaapi.DefaultRetryFor).
	MetaRetry time.Duration
}

// Errors returned by the client besides those of package metaapi.
var (
	ErrInvalidRange = errors.New("requested range is not satisfiable")
	ErrSizeMismatch = errors.New("body length differs from the declared size")
	ErrBadDigest    = errors.New("body does not match its declared MD5")
)

// Client reads and writes objects. It is safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	meta   *metaapi.Client
	chunks *chunkserver.Client
	md5    *multimd5.Pool // ETags of concurrent uploads, hashed together

	mu   sync.Mutex
	ring *ringState
}

// ringState is a fetched ring with what the data path derives from it.
type ringState struct {
	metaapi.Ring
	place *placement.Ring // every registered node
	down  []string        // nodes placement must steer around
	nodes map[string]metaapi.Node
	// fetched is when the metadata service last confirmed this version
	// (unix ns); refreshed in place, hence atomic.
	fetched atomic.Int64
}

// New returns a client of the cluster whose metadata service is at cfg.Meta.
func New(cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RingTTL == 0 {
		cfg.RingTTL = 3 * time.Second
	}
	if cfg.ShardTimeout == 0 {
		cfg.ShardTimeout = 10 * time.Second
	}
	mc, err := metaapi.NewClient(cfg.Meta, cfg.Secret, nil)
	if err != nil {
		return nil, err
	}
	mc.RetryFor = cfg.MetaRetry
	return &Client{
		cfg:    cfg,
		log:    cfg.Logger,
		meta:   mc,
		chunks: chunkserver.NewClient(cfg.Secret, cfg.HTTPClient),
		md5:    multimd5.New(),
	}, nil
}

// Meta returns the client of the metadata service, for the calls that have no
// data path (buckets, listings, cluster state).
func (c *Client) Meta() *metaapi.Client { return c.meta }

// ringFor returns the cached ring, refreshing it when stale or when the caller
// has seen evidence (a failed write) that it is out of date.
func (c *Client) ringFor(ctx context.Context, refresh bool) (*ringState, error) {
	c.mu.Lock()
	rs := c.ring
	c.mu.Unlock()
	if rs != nil && !refresh && time.Since(time.Unix(0, rs.fetched.Load())) < c.cfg.RingTTL {
		return rs, nil
	}
	r, err := c.meta.Ring(ctx)
	if err != nil {
		if rs != nil && !refresh {
			return rs, nil // a slightly stale ring beats no ring
		}
		return nil, fmt.Errorf("fetch ring: %w", err)
	}
	if rs != nil && rs.Version == r.Version && rs.K == r.K && rs.M == r.M {
		rs.fetched.Store(time.Now().UnixNano())
		return rs, nil
	}
	next := &ringState{Ring: r, nodes: make(map[string]metaapi.Node, len(r.Nodes))}
	next.fetched.Store(time.Now().UnixNano())
	// Down nodes stay in the placement ring and are excluded per segment, so
	// that a brief outage moves only the shards that would have gone to them.
	var all []placement.Node
	for _, n := range r.Nodes {
		next.nodes[n.ID] = n
		if n.State != metaapi.NodeUp {
			next.down = append(next.down, n.ID)
		}
		capacity, _ := n.Capacity()
		weight := float64(capacity) / (1 << 40) // TiB, so weights read naturally
		if weight <= 0 {
			weight = 1e-3
		}
		all = append(all, placement.Node{ID: n.ID, Zone: n.Zone, Weight: weight})
	}
	pr, err := placement.NewRing(r.Version, all)
	if err != nil {
		return nil, fmt.Errorf("build placement ring v%d: %w", r.Version, err)
	}
	next.place = pr
	c.mu.Lock()
	c.ring = next
	c.mu.Unlock()
	return next, nil
}

func newSegmentID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
