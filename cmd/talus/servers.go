package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/talusfs/talus/bench"
	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/internal/node"
	"github.com/talusfs/talus/meta"
)

func runMeta(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("meta")
	data := fs.String("data", "", "directory for the metadata store and Raft log (required)")
	listen := fs.String("listen", "127.0.0.1:7700", "address to serve the metadata API on")
	advertise := fs.String("advertise", "", "API address other processes reach this node at (default: the listen address)")
	id := fs.String("id", "meta1", "this node's id in the metadata group; keep it across restarts")
	raftAddr := fs.String("raft-addr", "", "address for Raft traffic between metadata nodes (default: API port + 100 on the listen host)")
	raftAdvertise := fs.String("raft-advertise", "", "Raft address peers reach this node at (default: --raft-addr)")
	bootstrap := fs.Bool("bootstrap", false, "form a new metadata group with this node as its first member (the default when --join is not given)")
	var join listFlag
	fs.Var(&join, "join", "API address of a node of an existing metadata group to join; repeatable")
	gossip := fs.String("gossip", "", "gossip (serf) address, UDP and TCP (default: API port + 1000 on the listen host; \"off\": no gossip)")
	var gossipJoin listFlag
	fs.Var(&gossipJoin, "gossip-join", "gossip address of any cluster member, comma-separated or repeated (default: found through --join)")
	secret := fs.String("secret", "", "cluster shared secret (default $TALUS_SECRET)")
	k := fs.Int("k", 4, "data shards per segment")
	m := fs.Int("m", 2, "parity shards per segment")
	downAfter := fs.Duration("down-after", 10*time.Second, "mark a chunk server down after this long without heartbeats")
	downOut := fs.Duration("down-out-interval", 10*time.Minute, "after this long down, a chunk server is out and its shards are rebuilt elsewhere")
	repairBW := fs.String("repair-bandwidth", "32MiB", "bytes per second repair and rebalance may write (0: unlimited)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return errors.New("meta: --data is required")
	}
	bw, err := bench.ParseSize(*repairBW)
	if err != nil || bw < 0 || *downOut <= 0 {
		return fmt.Errorf("meta: --repair-bandwidth %q must be a size like 64MiB, and --down-out-interval positive", *repairBW)
	}
	if bw == 0 {
		bw = -1 // no limit
	}
	if *bootstrap && len(join) > 0 {
		return errors.New("meta: --bootstrap and --join exclude each other: a node either starts a group or joins one")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if err := checkLayout(*k, *m); err != nil {
		return err
	}
	if *raftAddr == "" {
		if *raftAddr, err = offsetPort(*listen, 100); err != nil {
			return fmt.Errorf("meta: %w", err)
		}
	}
	g, err := gossipOption(*gossip, *listen, gossipJoin, nil, nil, "")
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	ms, err := node.StartMeta(ctx, *listen, meta.Config{
		Dir: *data, Secret: secretFrom(*secret), Logger: log, K: *k, M: *m, DownAfter: *downAfter,
		ID: *id, RaftAddr: *raftAddr, RaftAdvertise: *raftAdvertise, HTTPAddr: *advertise, Join: join,
		DownOutInterval: *downOut, RepairBandwidth: bw,
	}, g...)
	if err != nil {
		return err
	}
	log.Info("metadata server running", "id", *id, "addr", ms.Addr(), "raft", *raftAddr, "data", *data)
	<-ctx.Done()
	return ms.Stop()
}

// offsetPort derives a companion address: the same host, port+delta; port 0
// stays 0 (any free port).
func offsetPort(addr string, delta int) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("address %q: bad port", addr)
	}
	if p != 0 {
		p += delta
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

func runChunk(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("chunk")
	var disks, metas listFlag
	fs.Var(&disks, "disk", "shard directory; repeat for several disks (required)")
	fs.Var(&metas, "meta", "metadata server address; repeatable (required)")
	listen := fs.String("listen", "127.0.0.1:7701", "address to serve shards on")
	advertise := fs.String("advertise", "", "address other processes reach this server at (default: the listen address)")
	zone := fs.String("zone", "default", "failure zone (rack, room, availability zone)")
	id := fs.String("id", "", "node id (default: generated once and kept in the first disk)")
	gossip := fs.String("gossip", "", "gossip (serf) address, UDP and TCP (default: listen port + 1000 on the listen host; \"off\": no gossip)")
	var join listFlag
	fs.Var(&join, "join", "gossip address of any cluster member, comma-separated or repeated (default: asked from --meta)")
	scrubBW := fs.Int64("scrub-bandwidth", chunkserver.DefaultScrubBandwidth, "most bytes per second the background scrubber reads")
	scrubEvery := fs.Duration("scrub-interval", chunkserver.DefaultScrubInterval, "how long one scrub pass over every shard should take")
	secret := fs.String("secret", "", "cluster shared secret (default $TALUS_SECRET)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(disks) == 0 {
		return errors.New("chunk: at least one --disk is required")
	}
	if len(metas) == 0 {
		return errors.New("chunk: --meta is required")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if *scrubBW <= 0 || *scrubEvery <= 0 {
		return errors.New("chunk: --scrub-bandwidth and --scrub-interval must be positive")
	}
	g, err := gossipOption(*gossip, *listen, join, nil, nil, "")
	if err != nil {
		return fmt.Errorf("chunk: %w", err)
	}
	cs, err := node.StartChunk(ctx, node.ChunkOptions{Listen: *listen, Advertise: *advertise, Meta: metas},
		chunkserver.Config{ID: *id, Zone: *zone, Disks: disks, Secret: secretFrom(*secret), Logger: log,
			ScrubBandwidth: *scrubBW, ScrubInterval: *scrubEvery}, g...)
	if err != nil {
		return err
	}
	log.Info("chunk server running", "id", cs.Server.ID(), "addr", cs.Addr(), "zone", *zone, "disks", disks)
	<-ctx.Done()
	return cs.Stop()
}

func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dev")
	dir := fs.String("dir", "talus-data", "directory for every server's data")
	chunks := fs.Int("chunks", 6, "number of chunk servers")
	metas := fs.Int("meta", 1, "number of metadata nodes (1, 3 or 5; more than one form a Raft group)")
	k := fs.Int("k", 4, "data shards per segment")
	m := fs.Int("m", 2, "parity shards per segment")
	metaPort := fs.Int("meta-port", 7700, "metadata server port (0: any free port)")
	chunkPort := fs.Int("chunk-port", 7701, "first chunk server port (0: any free ports)")
	s3Port := fs.Int("s3-port", 9000, "S3 gateway port (0: any free port)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (default: off)")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	var profiles string
	if *pprofAddr != "" {
		if profiles, err = servePprof(ctx, *pprofAddr, log); err != nil {
			return err
		}
	}
	if err := checkLayout(*k, *m); err != nil {
		return err
	}
	if *metas < 1 || *metas%2 == 0 {
		return fmt.Errorf("dev: --meta %d: a metadata group needs an odd number of nodes (1, 3, 5)", *metas)
	}
	if *chunks < *k+*m {
		return fmt.Errorf("dev: %d chunk servers cannot hold %d+%d shards on distinct servers", *chunks, *k, *m)
	}
	user, password, created, err := dev.LoadCredentials(*dir)
	if err != nil {
		return err
	}
	c, err := dev.Start(ctx, dev.Options{
		Dir: *dir, Chunks: *chunks, Metas: *metas, K: *k, M: *m, MetaPort: *metaPort, ChunkPort: *chunkPort, Logger: log,
	})
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		c.Stop()
		return err
	}
	gw, err := gateway.New(gateway.Config{Client: cl, RootAccessKey: user, RootSecretKey: password, Logger: log})
	if err != nil {
		c.Stop()
		return err
	}
	g, err := node.StartGateway(ctx, fmt.Sprintf("127.0.0.1:%d", *s3Port), gw.Handler(), gw.Run, log, c.Gossip())
	if err != nil {
		c.Stop()
		return err
	}
	fmt.Fprintf(stdout, "talus dev cluster running (%d+%d erasure coding), data in %s\n", *k, *m, *dir)
	for _, m := range c.Metas {
		fmt.Fprintf(stdout, "  metadata      http://%s\n", m.Addr())
	}
	for i, ch := range c.Chunks {
		fmt.Fprintf(stdout, "  chunk %d       http://%s  %s\n", i, ch.Addr(), c.ChunkDir(i))
	}
	fmt.Fprintf(stdout, "  S3 gateway    http://%s\n", g.Addr())
	if profiles != "" {
		fmt.Fprintf(stdout, "  profiles      http://%s/debug/pprof/\n", profiles)
	}
	fmt.Fprintf(stdout, "  secret        %s/secret (export TALUS_SECRET=$(cat %s/secret))\n", *dir, *dir)
	if created {
		fmt.Fprintf(stdout, "  S3 root credentials (shown once; kept in %s/root-credentials):\n", *dir)
		fmt.Fprintf(stdout, "    export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", user, password)
	} else if os.Getenv("TALUS_ROOT_USER") != "" {
		fmt.Fprintf(stdout, "  S3 root credentials: $TALUS_ROOT_USER / $TALUS_ROOT_PASSWORD\n")
	} else {
		fmt.Fprintf(stdout, "  S3 root credentials: in %s/root-credentials (ACCESS_KEY:SECRET)\n", *dir)
	}
	fmt.Fprintln(stdout, "Ctrl-C stops it.")
	<-ctx.Done()
	return errors.Join(g.Stop(), c.Stop())
}

func checkLayout(k, m int) error {
	if k < 1 || m < 0 || k+m > 256 {
		return fmt.Errorf("erasure layout %d+%d is invalid: need k >= 1, m >= 0, k+m <= 256", k, m)
	}
	return nil
}

func runGateway(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("gateway")
	var metas listFlag
	fs.Var(&metas, "meta", "metadata server address; repeatable (required)")
	listen := fs.String("listen", "127.0.0.1:9000", "address to serve S3 on")
	domain := fs.String("domain", "", "domain for virtual-host-style requests (<bucket>.<domain>); empty: path style only")
	region := fs.String("region", "us-east-1", "region reported to S3 clients")
	secret := fs.String("secret", "", "cluster shared secret (default $TALUS_SECRET)")
	expiry := fs.Duration("multipart-expiry", 24*time.Hour, "abort multipart uploads left unfinished this long")
	id := fs.String("id", "", "this gateway's name in the cluster gossip (default: host name and listen port)")
	gossip := fs.String("gossip", "", "gossip (serf) address, UDP and TCP (default: listen port + 1000 on the listen host; \"off\": no gossip)")
	var join listFlag
	fs.Var(&join, "join", "gossip address of any cluster member, comma-separated or repeated (default: asked from --meta)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(metas) == 0 {
		return errors.New("gateway: --meta is required")
	}
	user, password := os.Getenv("TALUS_ROOT_USER"), os.Getenv("TALUS_ROOT_PASSWORD")
	if user == "" || password == "" {
		return errors.New("gateway: set TALUS_ROOT_USER and TALUS_ROOT_PASSWORD to the root S3 credentials")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	cl, err := client.New(client.Config{Meta: metas, Secret: secretFrom(*secret), Logger: log})
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Config{
		Client: cl, RootAccessKey: user, RootSecretKey: password,
		Domain: *domain, Region: *region, Logger: log, MultipartExpiry: *expiry,
	})
	if err != nil {
		return err
	}
	if *id == "" {
		// Gateways listen on the same address in every container; the
		// host name tells them apart.
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(*listen)
		*id = "gateway-" + host + "-" + port
	}
	gopt, err := gossipOption(*gossip, *listen, join, metas, secretFrom(*secret), *id)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g, err := node.StartGateway(ctx, *listen, gw.Handler(), gw.Run, log, gopt...)
	if err != nil {
		return err
	}
	log.Info("S3 gateway running", "addr", g.Addr())
	<-ctx.Done()
	return g.Stop()
}

// gossipOption turns the --gossip and --join flags into a start option:
// gossip on listen's port + 1000 unless told otherwise, none for "off".
// Without join addresses the server asks the metadata nodes at metas.
func gossipOption(bind, listen string, join, metas []string, secret []byte, id string) ([]node.Option, error) {
	if bind == "off" {
		return nil, nil
	}
	if bind == "" {
		var err error
		if bind, err = offsetPort(listen, 1000); err != nil {
			return nil, fmt.Errorf("--gossip: %w", err)
		}
	}
	var addrs []string
	for _, j := range join {
		for _, a := range strings.Split(j, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("--join %q is not a host:port address", a)
			}
			addrs = append(addrs, a)
		}
	}
	return []node.Option{node.WithGossip(node.Gossip{Bind: bind, Join: addrs, Meta: metas, Secret: secret, ID: id})}, nil
}
