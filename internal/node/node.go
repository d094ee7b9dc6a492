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
	"sync"
	"time"

	"github.com/talusfs/talus/chunkserver"
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
}

// listen binds the service's address; start serves on it. They are apart so
// that a role can know its own address before its background work starts.
func listen(addr string, maxHeader int, log *slog.Logger) (*service, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &service{
		ln:   ln,
		addr: ln.Addr().String(),
		log:  log,
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
func StartMeta(ctx context.Context, listenAddr string, cfg meta.Config) (*Meta, error) {
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
	ms, err := meta.Open(cfg)
	if err != nil {
		svc.ln.Close()
		return nil, err
	}
	svc.start(ctx, ms.Handler(), ms.Run)
	return &Meta{service: svc, Server: ms}, nil
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
func StartChunk(ctx context.Context, opts ChunkOptions, cfg chunkserver.Config) (*Chunk, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 2 * time.Second
	}
	cs, err := chunkserver.New(cfg)
	if err != nil {
		return nil, err
	}
	mc, err := metaapi.NewClient(opts.Meta, cfg.Secret, nil)
	if err != nil {
		cs.Close()
		return nil, err
	}
	svc, err := listen(opts.Listen, 64<<10, cfg.Logger)
	if err != nil {
		cs.Close()
		return nil, err
	}
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
	svc.start(ctx, cs.Handler(), beat)
	return c, nil
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
	for _, d := range st.Disks {
		hb.Disks = append(hb.Disks, metaapi.Disk{ID: d.ID, Path: d.Path, Capacity: d.Capacity, Free: d.Free, Used: d.Used, Shards: d.Shards, Healthy: d.Healthy})
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
// background work.
func StartGateway(ctx context.Context, listen string, h http.Handler, run func(context.Context), log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.Default()
	}
	// The gateway reads headers up to 1 MiB so that it can refuse oversized
	// ones itself, with S3's error XML instead of net/http's plain 431.
	svc, err := serve(ctx, listen, h, 1<<20, log, run)
	if err != nil {
		return nil, err
	}
	return &Gateway{service: svc}, nil
}

// Addr is the address the gateway listens on.
func (g *Gateway) Addr() string { return g.addr }

// Stop finishes in-flight requests, then stops the gateway.
func (g *Gateway) Stop() error { return g.stop() }
