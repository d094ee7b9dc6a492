// Package node runs talus's server roles as network services: it binds the
// listener, serves the role's handler with sane HTTP timeouts, runs the
// role's background work, and shuts all of it down in order. The talus
// binary's subcommands, `talus dev` and the integration tests all start
// servers through it, so they run exactly the same way.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/internal/membership"
	"github.com/talusfs/talus/internal/metrics"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

// service is an HTTP server with its background goroutines.
type service struct {
	ln     net.Listener
	log    *slog.Logger
	addr   string
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error

	// Metrics is the server's metrics registry, served at /metrics.
	Metrics *prometheus.Registry
	// Gossip is the server's gossip membership; nil without gossip.
	Gossip    *membership.Node
	gossipCfg Gossip
}

// listen binds the service's address; start serves on it. They are apart so
// that a role can know its own address before its background work starts.
func listen(addr string, maxHeader int, log *slog.Logger) (*service, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &service{
		ln:      ln,
		addr:    ln.Addr().String(),
		log:     log,
		Metrics: metrics.NewRegistry(),
		srv: &http.Server{
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    maxHeader,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

func (s *service) start(ctx context.Context, h http.Handler, bg ...func(context.Context)) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.srv.Handler = h
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "addr", s.addr, "err", err)
		}
	}()
	for _, fn := range bg {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			fn(ctx)
		}()
	}
}

func serve(ctx context.Context, addr string, h http.Handler, maxHeader int, log *slog.Logger, bg ...func(context.Context)) (*service, error) {
	s, err := listen(addr, maxHeader, log)
	if err != nil {
		return nil, err
	}
	s.start(ctx, h, bg...)
	return s, nil
}

// stop finishes in-flight requests (for up to 10 s), then stops background work.
func (s *service) stop() error {
	s.once.Do(func() {
		if s.Gossip != nil {
			// Leave first: the metadata leader stops placing shards here
			// while in-flight requests finish.
			if err := s.Gossip.Leave(); err != nil {
				s.log.Warn("leave gossip", "err", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.err = s.srv.Shutdown(ctx)
		if s.err != nil {
			s.srv.Close()
		}
		s.cancel()
		s.wg.Wait()
	})
	return s.err
}

// kill drops every connection at once, as a crash would.
func (s *service) kill() {
	s.once.Do(func() {
		if s.Gossip != nil {
			s.Gossip.Close()
		}
		s.srv.Close()
		s.cancel()
		s.wg.Wait()
	})
}

// Meta is a running metadata server.
type Meta struct {
	*service
	Server *meta.Server
}

// StartMeta opens the metadata store and serves it on listen. Unless
// cfg.HTTPAddr says otherwise, the node tells its peers the bound address.
//
// With WithGossip the node joins the cluster's gossip, publishes its gossip
// address in its member record, and, while it leads, marks chunk servers
// down as soon as gossip sees them fail or leave.
func StartMeta(ctx context.Context, listenAddr string, cfg meta.Config, opts ...Option) (*Meta, error) {
	o := options(opts)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	svc, err := listen(listenAddr, 64<<10, log)
	if err != nil {
		return nil, err
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = svc.addr
	}
	// Chunk servers gossip saw go, for the leader to mark down.
	gone := make(chan membership.Event, 256)
	if o.gossip.Bind != "" {
		id := cfg.ID
		if id == "" {
			id = "meta1" // meta.Config's default
		}
		g := o.gossip
		if len(g.Meta) == 0 {
			g.Meta, g.Secret = cfg.Join, cfg.Secret
		}
		onEvent := func(e membership.Event) {
			if e.Member.Role != membership.RoleChunk || (e.Kind != membership.EventFailed && e.Kind != membership.EventLeave) {
				return
			}
			select {
			case gone <- e:
			default:
				log.Warn("gossip event dropped; heartbeats will catch up", "member", e.Member.Name, "event", e.Kind)
			}
		}
		if err := svc.joinGossip(ctx, g, membership.RoleMeta, id, cfg.HTTPAddr, "", 0, onEvent); err != nil {
			svc.ln.Close()
			return nil, err
		}
		cfg.GossipAddr = svc.Gossip.Addr()
	}
	ms, err := meta.Open(cfg)
	if err != nil {
		svc.ln.Close()
		if svc.Gossip != nil {
			svc.Gossip.Close()
		}
		return nil, err
	}
	svc.Metrics.MustRegister(ms.Collector())
	h := metrics.Serve(svc.Metrics, ms.Handler(), func(r *http.Request) string { return r.Pattern })
	bg := []func(context.Context){ms.Run}
	if svc.Gossip != nil {
		bg = append(bg, func(ctx context.Context) { markGone(ctx, ms, gone, log) }, svc.keepJoined)
	}
	svc.start(ctx, h, bg...)
	return &Meta{service: svc, Server: ms}, nil
}

// markGone passes chunk servers that gossip saw fail or leave to the
// metadata server until ctx is done.
func markGone(ctx context.Context, ms *meta.Server, gone <-chan membership.Event, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-gone:
			if _, err := ms.NodeGone(e.Member.ID, string(e.Kind)); err != nil && ctx.Err() == nil {
				log.Warn("gossip: mark chunk server down", "node", e.Member.ID, "err", err)
			}
		}
	}
}

// Addr is the address the server listens on.
func (m *Meta) Addr() string { return m.addr }

// Stop shuts the server down gracefully and closes the store.
func (m *Meta) Stop() error {
	err := m.stop()
	return errors.Join(err, m.Server.Close())
}

// Kill stops the server abruptly, dropping connections mid-request, and
// closes its store, as close to a crash as one process can get.
func (m *Meta) Kill() {
	m.kill()
	m.Server.Close()
}

// Chunk is a running chunk server that heartbeats to the metadata service.
type Chunk struct {
	*service
	Server *chunkserver.Server
}

// ChunkOptions configures StartChunk beyond the chunk server's own Config.
type ChunkOptions struct {
	Listen string
	// Advertise is the address other processes reach this server at;
	// empty means the bound listen address.
	Advertise string
	Meta      []string
	// Heartbeat is the interval between registrations with the metadata
	// service.
	Heartbeat time.Duration
}

// StartChunk starts a chunk server and its heartbeats.
//
// The chunk server scrubs its shards in the background and reports the
// corrupt ones to the metadata service. With WithGossip it joins the
// cluster's gossip; without Gossip.Join it finds the gossip through the
// metadata service.
func StartChunk(ctx context.Context, opts ChunkOptions, cfg chunkserver.Config, options_ ...Option) (*Chunk, error) {
	o := options(options_)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 2 * time.Second
	}
	mc, err := metaapi.NewClient(opts.Meta, cfg.Secret, nil)
	if err != nil {
		return nil, err
	}
	var id string // the chunk server's, once it is open
	if cfg.ReportCorrupt == nil {
		cfg.ReportCorrupt = func(ctx context.Context, bad []chunkserver.CorruptShard) error {
			return reportCorrupt(ctx, mc, id, bad)
		}
	}
	cs, err := chunkserver.New(cfg)
	if err != nil {
		return nil, err
	}
	id = cs.ID()
	svc, err := listen(opts.Listen, 64<<10, cfg.Logger)
	if err != nil {
		cs.Close()
		return nil, err
	}
	if o.gossip.Bind != "" {
		g := o.gossip
		if len(g.Meta) == 0 {
			g.Meta, g.Secret = opts.Meta, cfg.Secret
		}
		addr := opts.Advertise
		if addr == "" {
			addr = svc.addr
		}
		var capacity uint64
		if st, err := cs.Status(ctx); err == nil {
			for _, d := range st.Disks {
				capacity += d.Capacity
			}
		}
		if err := svc.joinGossip(ctx, g, membership.RoleChunk, cs.ID(), addr, cfg.Zone, capacity, nil); err != nil {
			svc.ln.Close()
			cs.Close()
			return nil, err
		}
	}
	svc.Metrics.MustRegister(cs.Collector())
	c := &Chunk{service: svc, Server: cs}
	beat := func(ctx context.Context) {
		t := time.NewTicker(opts.Heartbeat)
		defer t.Stop()
		for {
			if err := c.heartbeat(ctx, mc, opts.Advertise); err != nil && ctx.Err() == nil {
				cfg.Logger.Warn("heartbeat to metadata service failed", "node", cs.ID(), "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	bg := []func(context.Context){beat, cs.RunScrubber}
	if svc.Gossip != nil {
		bg = append(bg, svc.keepJoined)
	}
	svc.start(ctx, metrics.Serve(svc.Metrics, cs.Handler(), chunkserver.Op), bg...)
	return c, nil
}

// reportCorrupt tells the metadata service about shards the scrubber found
// corrupt on node.
func reportCorrupt(ctx context.Context, mc *metaapi.Client, node string, bad []chunkserver.CorruptShard) error {
	var rep []metaapi.BadShard
	for _, b := range bad {
		seg, idx, ok := strings.Cut(b.ID, ".")
		i, err := strconv.Atoi(idx)
		if !ok || err != nil {
			continue // the scrubber only reads valid shard ids
		}
		rep = append(rep, metaapi.BadShard{Segment: seg, Index: i, Node: node, Reason: b.Reason})
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := mc.ReportBadShards(ctx, rep); err != nil {
		return fmt.Errorf("report %d corrupt shards: %w", len(rep), err)
	}
	return nil
}

func (c *Chunk) heartbeat(ctx context.Context, mc *metaapi.Client, advertise string) error {
	st, err := c.Server.Status(ctx)
	if err != nil {
		return err
	}
	addr := advertise
	if addr == "" {
		addr = c.addr
	}
	hb := metaapi.Heartbeat{ID: st.ID, Addr: addr, Zone: st.Zone}
	var capacity uint64
	for _, d := range st.Disks {
		capacity += d.Capacity
		hb.Disks = append(hb.Disks, metaapi.Disk{ID: d.ID, Path: d.Path, Capacity: d.Capacity, Free: d.Free, Used: d.Used, Shards: d.Shards, Healthy: d.Healthy})
	}
	if c.Gossip != nil {
		if err := c.Gossip.SetCapacity(capacity); err != nil {
			c.log.Warn("gossip: update capacity", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return mc.Heartbeat(ctx, hb)
}

// Addr is the address the server listens on.
func (c *Chunk) Addr() string { return c.addr }

// Stop shuts the server down gracefully.
func (c *Chunk) Stop() error {
	err := c.stop()
	return errors.Join(err, c.Server.Close())
}

// Kill stops the server abruptly, dropping connections mid-request.
func (c *Chunk) Kill() {
	c.kill()
	c.Server.Close()
}

// Gateway is a running S3 gateway.
type Gateway struct {
	*service
}

// StartGateway serves an S3 gateway's handler on listen and runs its
// background work. With WithGossip it joins the cluster's gossip (give
// Gossip.Meta or Gossip.Join so it can find it).
func StartGateway(ctx context.Context, listenAddr string, h http.Handler, run func(context.Context), log *slog.Logger, opts ...Option) (*Gateway, error) {
	o := options(opts)
	if log == nil {
		log = slog.Default()
	}
	// The gateway reads headers up to 1 MiB so that it can refuse oversized
	// ones itself, with S3's error XML instead of net/http's plain 431.
	svc, err := listen(listenAddr, 1<<20, log)
	if err != nil {
		return nil, err
	}
	bg := []func(context.Context){run}
	if o.gossip.Bind != "" {
		id := o.gossip.ID
		if id == "" {
			id = svc.addr
		}
		if err := svc.joinGossip(ctx, o.gossip, membership.RoleGateway, id, svc.addr, "", 0, nil); err != nil {
			svc.ln.Close()
			return nil, err
		}
		bg = append(bg, svc.keepJoined)
	}
	svc.start(ctx, metrics.Serve(svc.Metrics, h, nil), bg...)
	return &Gateway{service: svc}, nil
}

// Addr is the address the gateway listens on.
func (g *Gateway) Addr() string { return g.addr }

// Stop finishes in-flight requests, then stops the gateway.
func (g *Gateway) Stop() error { return g.stop() }
