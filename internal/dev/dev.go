// Package dev starts a whole talus cluster in one process — a metadata
// server and several chunk servers on loopback, each on its own directory —
// for `talus dev` and for integration tests that need real servers.
package dev

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/node"
	"github.com/talusfs/talus/meta"
)

// Options configures a dev cluster.
type Options struct {
	Dir    string // every server's data lives below it
	Chunks int    // chunk servers; default 6
	Metas  int    // metadata nodes; default 1, more form a Raft group
	Zones  int    // zones the chunk servers are spread over; default 3
	K, M   int    // erasure layout; default 4+2
	// Host is the loopback address to bind; default 127.0.0.1.
	Host string
	// MetaPort and ChunkPort are the first ports to use; 0 picks free ports.
	// Chunk server i listens on ChunkPort+i.
	MetaPort, ChunkPort int
	Secret              []byte
	Logger              *slog.Logger
	// Meta lets tests shorten the metadata server's timers.
	Meta meta.Config
	// Heartbeat is the chunk servers' heartbeat interval.
	Heartbeat time.Duration
	// ChunkConfig, if set, adjusts each chunk server's configuration.
	ChunkConfig func(i int, cfg *chunkserver.Config)
}

// Cluster is a running dev cluster.
type Cluster struct {
	opts Options
	ctx  context.Context
	// Meta is the first metadata node (the only one unless Options.Metas).
	Meta   *node.Meta
	Metas  []*node.Meta  // nil where stopped
	Chunks []*node.Chunk // nil where stopped

	// Metadata nodes keep their API and Raft addresses across restarts,
	// because their peers and clients know them by these.
	metaAddrs, raftAddrs []string
	// flush is shared by every chunk server: their directories are on
	// one filesystem, which one syncfs makes durable for all of them.
	flush *chunkserver.SharedFlush
}

// Start starts the cluster and waits until every chunk server has registered.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Chunks == 0 {
		opts.Chunks = 6
	}
	if opts.Zones == 0 {
		opts.Zones = min(3, opts.Chunks)
	}
	if opts.K == 0 {
		opts.K, opts.M = 4, 2
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Secret == nil {
		s, err := loadSecret(opts.Dir)
		if err != nil {
			return nil, err
		}
		opts.Secret = s
	}
	if opts.Metas == 0 {
		opts.Metas = 1
	}
	c := &Cluster{opts: opts, ctx: ctx, Chunks: make([]*node.Chunk, opts.Chunks), Metas: make([]*node.Meta, opts.Metas),
		flush: chunkserver.NewSharedFlush()}
	for i := range opts.Metas {
		// Fixed ports: API 7700, 7710, 7720..., Raft 100 above. Port 0:
		// free ports chosen now and kept.
		api, rft := hostPort(opts.Host, opts.MetaPort, 10*i), hostPort(opts.Host, opts.MetaPort, 100+10*i)
		if opts.MetaPort == 0 && opts.Metas > 1 {
			var err error
			if api, err = freePort(opts.Host); err != nil {
				return nil, err
			}
			if rft, err = freePort(opts.Host); err != nil {
				return nil, err
			}
		}
		c.metaAddrs, c.raftAddrs = append(c.metaAddrs, api), append(c.raftAddrs, rft)
	}
	for i := range opts.Metas {
		if err := c.StartMeta(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	c.Meta = c.Metas[0]
	for i := range opts.Chunks {
		if err := c.StartChunk(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitRegistered(ctx, opts.Chunks); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// metaConfig is metadata node i's configuration: the caller's Options.Meta
// with the cluster's directory, secret, layout and the node's addresses.
func (c *Cluster) metaConfig(i int) meta.Config {
	cfg := c.opts.Meta
	cfg.Dir = filepath.Join(c.opts.Dir, "meta")
	if i > 0 {
		cfg.Dir = filepath.Join(c.opts.Dir, fmt.Sprintf("meta%d", i+1))
	}
	cfg.ID = fmt.Sprintf("meta%d", i+1)
	cfg.RaftAddr = c.raftAddrs[i]
	if i > 0 {
		cfg.Join = []string{c.metaAddrs[0]}
	}
	cfg.Secret = c.opts.Secret
	cfg.Logger = c.opts.Logger.With("role", "meta", "meta", cfg.ID)
	cfg.K, cfg.M = c.opts.K, c.opts.M
	return cfg
}

// StartMeta (re)starts metadata node i on its directory and addresses.
func (c *Cluster) StartMeta(i int) error {
	if c.Metas[i] != nil {
		return fmt.Errorf("metadata node %d is already running", i)
	}
	m, err := node.StartMeta(c.ctx, c.metaAddrs[i], c.metaConfig(i), c.Gossip())
	if err != nil {
		return fmt.Errorf("start metadata node %d: %w", i, err)
	}
	c.Metas[i] = m
	c.metaAddrs[i] = m.Addr()
	return nil
}

// StopMeta stops metadata node i gracefully.
func (c *Cluster) StopMeta(i int) error {
	if c.Metas[i] == nil {
		return nil
	}
	err := c.Metas[i].Stop()
	c.Metas[i] = nil
	return err
}

// KillMeta stops metadata node i abruptly.
func (c *Cluster) KillMeta(i int) {
	if c.Metas[i] != nil {
		c.Metas[i].Kill()
		c.Metas[i] = nil
	}
}

// MetaAddr is the first metadata node's address.
func (c *Cluster) MetaAddr() string { return c.metaAddrs[0] }

// MetaAddrs are every metadata node's API addresses.
func (c *Cluster) MetaAddrs() []string { return append([]string(nil), c.metaAddrs...) }

func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Gossip is the option that has a server join the cluster's gossip, on a
// free loopback port with loopback timers: every process of a dev cluster
// is one gossip cluster.
func (c *Cluster) Gossip() node.Option {
	var join []string
	for _, m := range c.Metas {
		if m != nil && m.Gossip != nil {
			join = append(join, m.Gossip.Addr())
		}
	}
	return node.WithGossip(node.Gossip{Bind: c.opts.Host + ":0", Join: join, Local: true})
}

// ChunkDir is chunk server i's disk directory.
func (c *Cluster) ChunkDir(i int) string {
	return filepath.Join(c.opts.Dir, fmt.Sprintf("chunk%d", i))
}

// StartChunk (re)starts chunk server i on its directory and port.
func (c *Cluster) StartChunk(i int) error {
	if c.Chunks[i] != nil {
		return fmt.Errorf("chunk server %d is already running", i)
	}
	cfg := chunkserver.Config{
		Zone:        fmt.Sprintf("zone%d", i%c.opts.Zones),
		Disks:       []string{c.ChunkDir(i)},
		Secret:      c.opts.Secret,
		Logger:      c.opts.Logger.With("role", "chunk", "chunk", i),
		SharedFlush: c.flush,
	}
	if c.opts.ChunkConfig != nil {
		c.opts.ChunkConfig(i, &cfg)
	}
	// A restarted server must come back on the address it registered with.
	listen := hostPort(c.opts.Host, c.opts.ChunkPort, i)
	if c.opts.ChunkPort == 0 {
		if addr := c.chunkAddr(i); addr != "" {
			listen = addr
		}
	}
	ch, err := node.StartChunk(c.ctx, node.ChunkOptions{
		Listen:    listen,
		Meta:      c.MetaAddrs(),
		Heartbeat: c.opts.Heartbeat,
	}, cfg, c.Gossip())
	if err != nil {
		return fmt.Errorf("start chunk server %d: %w", i, err)
	}
	c.Chunks[i] = ch
	c.setChunkAddr(i, ch.Addr())
	return nil
}

func (c *Cluster) addrFile(i int) string {
	return filepath.Join(c.opts.Dir, fmt.Sprintf("chunk%d.addr", i))
}

func (c *Cluster) chunkAddr(i int) string {
	b, err := os.ReadFile(c.addrFile(i))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (c *Cluster) setChunkAddr(i int, addr string) {
	os.WriteFile(c.addrFile(i), []byte(addr+"\n"), 0o644)
}

// AddChunk starts one more chunk server, numbered after the others (its
// zone follows from its number as for the first ones), and returns its index.
func (c *Cluster) AddChunk() (int, error) {
	c.Chunks = append(c.Chunks, nil)
	i := len(c.Chunks) - 1
	return i, c.StartChunk(i)
}

// Secret is the cluster secret.
func (c *Cluster) Secret() []byte { return c.opts.Secret }

// SetMetaConfig changes the metadata configuration that later StartMeta
// calls use, e.g. to restart the metadata service with other timers.
func (c *Cluster) SetMetaConfig(fn func(*meta.Config)) { fn(&c.opts.Meta) }

// StopChunk stops chunk server i gracefully.
func (c *Cluster) StopChunk(i int) error {
	if c.Chunks[i] == nil {
		return nil
	}
	err := c.Chunks[i].Stop()
	c.Chunks[i] = nil
	return err
}

// KillChunk stops chunk server i abruptly.
func (c *Cluster) KillChunk(i int) {
	if c.Chunks[i] != nil {
		c.Chunks[i].Kill()
		c.Chunks[i] = nil
	}
}

// WaitRegistered waits until n chunk servers are up in the registry.
func (c *Cluster) WaitRegistered(ctx context.Context, n int) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns, err := cl.Meta().Nodes(ctx)
		up := 0
		for _, nd := range ns {
			if nd.State == "up" {
				up++
			}
		}
		if err == nil && up >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d chunk servers registered after 30s (last error: %v)", up, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Client returns a native client of the cluster.
func (c *Cluster) Client() (*client.Client, error) {
	return client.New(client.Config{Meta: c.MetaAddrs(), Secret: c.opts.Secret, Logger: c.opts.Logger})
}

// Stop stops every server.
func (c *Cluster) Stop() error {
	var errs []error
	for i := range c.Chunks {
		errs = append(errs, c.StopChunk(i))
	}
	for i := range c.Metas {
		errs = append(errs, c.StopMeta(i))
	}
	errs = append(errs, c.flush.Close())
	return errors.Join(errs...)
}

func hostPort(host string, base, i int) string {
	if base == 0 {
		return host + ":0"
	}
	return fmt.Sprintf("%s:%d", host, base+i)
}

// LoadCredentials returns the root S3 credentials: from TALUS_ROOT_USER and
// TALUS_ROOT_PASSWORD when set, else generated on first start and kept in
// dir. created reports a first start, when the caller should print them once.
func LoadCredentials(dir string) (user, password string, created bool, err error) {
	if u, p := os.Getenv("TALUS_ROOT_USER"), os.Getenv("TALUS_ROOT_PASSWORD"); u != "" && p != "" {
		return u, p, false, nil
	}
	path := filepath.Join(dir, "root-credentials")
	if b, err := os.ReadFile(path); err == nil {
		if u, p, ok := strings.Cut(strings.TrimSpace(string(b)), ":"); ok {
			return u, p, false, nil
		}
		return "", "", false, fmt.Errorf("%s is malformed: want ACCESS_KEY:SECRET", path)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, fmt.Errorf("create %s: %w", dir, err)
	}
	var a [10]byte
	var s [30]byte
	rand.Read(a[:])
	rand.Read(s[:])
	user = "TALUS" + strings.ToUpper(hex.EncodeToString(a[:]))[:15]
	password = hex.EncodeToString(s[:])[:40]
	if err := os.WriteFile(path, []byte(user+":"+password+"\n"), 0o600); err != nil {
		return "", "", false, fmt.Errorf("store root credentials: %w", err)
	}
	return user, password, true, nil
}

// loadSecret reads the cluster secret kept in dir, creating it on first use,
// so a restarted dev cluster keeps accepting its own clients.
func loadSecret(dir string) ([]byte, error) {
	if s := os.Getenv("TALUS_SECRET"); s != "" {
		return []byte(s), nil
	}
	path := filepath.Join(dir, "secret")
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var b [24]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("store cluster secret: %w", err)
	}
	return []byte(s), nil
}
