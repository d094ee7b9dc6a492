package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/internal/membership"
	"github.com/talusfs/talus/internal/node"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

func startCluster(t *testing.T, opts dev.Options) *dev.Cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts.Dir = t.TempDir()
	opts.Secret = []byte("test-secret")
	opts.Logger = slog.New(slog.DiscardHandler)
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 200 * time.Millisecond
	}
	c, err := dev.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		cancel()
	})
	return c
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A chunk server that dies is seen failed by gossip and marked down by the
// metadata leader long before its missed heartbeats would.
func TestGossipMarksDeadChunkServerDown(t *testing.T) {
	const downAfter = time.Minute
	c := startCluster(t, dev.Options{Meta: meta.Config{DownAfter: downAfter}})
	gossip := c.Meta.Gossip
	if gossip == nil {
		t.Fatal("metadata node runs without gossip")
	}
	waitFor(t, 10*time.Second, "all seven processes alive in the gossip", func() bool {
		alive := 0
		for _, m := range gossip.Members() {
			if m.Status == membership.StatusAlive {
				alive++
			}
		}
		return alive == 7
	})
	// The metadata node publishes its gossip address for discovery.
	mc, err := metaapi.NewClient([]string{c.MetaAddr()}, []byte("test-secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mc.MetaMembers(context.Background())
	if err != nil || len(ms) != 1 || ms[0].GossipAddr != gossip.Addr() {
		t.Fatalf("meta members %+v (err %v), want gossip address %s", ms, err, gossip.Addr())
	}

	victim := c.Chunks[2].Server.ID()
	killed := time.Now()
	c.KillChunk(2)
	waitFor(t, 15*time.Second, "killed chunk server seen failed", func() bool {
		for _, m := range gossip.Members() {
			if m.ID == victim {
				return m.Status == membership.StatusFailed
			}
		}
		return false
	})
	waitFor(t, downAfter/2, "killed chunk server marked down", func() bool {
		ns, err := mc.Nodes(context.Background())
		if err != nil {
			return false
		}
		for _, n := range ns {
			if n.ID == victim {
				return n.State == metaapi.NodeDown
			}
		}
		return false
	})
	t.Logf("marked down %s after the kill (DownAfter %s)", time.Since(killed).Round(100*time.Millisecond), downAfter)

	// Restarted, it heartbeats itself back up and rejoins the gossip.
	if err := c.StartChunk(2); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			ns, _ := mc.Nodes(context.Background())
			t.Logf("nodes %+v\nmembers %+v", ns, gossip.Members())
		}
	}()
	// Generous: on a loaded machine the first joins may time out.
	waitFor(t, 30*time.Second, "restarted chunk server up and alive", func() bool {
		ns, err := mc.Nodes(context.Background())
		up := false
		for _, n := range ns {
			up = up || (err == nil && n.ID == victim && n.State == metaapi.NodeUp)
		}
		for _, m := range gossip.Members() {
			if m.ID == victim && m.Status == membership.StatusAlive {
				return up
			}
		}
		return false
	})
}

// A chunk server given only the metadata address finds the gossip through
// the metadata node's member record.
func TestGossipDiscoveryThroughMeta(t *testing.T) {
	c := startCluster(t, dev.Options{Chunks: 1, Zones: 1, K: 1, M: 0})
	gw, err := node.StartGateway(context.Background(), "127.0.0.1:0", http.NotFoundHandler(), func(context.Context) {}, slog.New(slog.DiscardHandler),
		node.WithGossip(node.Gossip{Bind: "127.0.0.1:0", Meta: []string{c.MetaAddr()}, Secret: []byte("test-secret"), Local: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	waitFor(t, 15*time.Second, "gateway in the metadata node's gossip", func() bool {
		for _, m := range c.Meta.Gossip.Members() {
			if m.Role == membership.RoleGateway && m.Addr == gw.Addr() && m.Status == membership.StatusAlive {
				return true
			}
		}
		return false
	})
}

// Every process serves /metrics without authentication, and the series
// count what happened.
func TestMetrics(t *testing.T) {
	c := startCluster(t, dev.Options{})
	ctx := context.Background()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Client: cl, RootAccessKey: "root", RootSecretKey: "rootsecret", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := node.StartGateway(ctx, "127.0.0.1:0", g.Handler(), g.Run, slog.New(slog.DiscardHandler), c.Gossip())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	s3c := s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + gw.Addr()),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("root", "rootsecret", ""),
	})
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("metrics-test")}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1<<20)
	rand.Read(body)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("metrics-test"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("metrics-test"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET returned %d bytes (err %v), want the %d put", len(got), err, len(body))
	}

	gwm := scrape(t, gw.Addr())
	if v := gwm[`talus_http_requests_total{code="200",op="PutObject"}`]; v != 1 {
		t.Errorf("gateway PutObject count %v, want 1", v)
	}
	if v := gwm[`talus_http_requests_total{code="200",op="GetObject"}`]; v != 1 {
		t.Errorf("gateway GetObject count %v, want 1", v)
	}
	if v := gwm[`talus_http_response_body_bytes_total{op="GetObject"}`]; v != float64(len(body)) {
		t.Errorf("gateway GetObject bytes out %v, want %d", v, len(body))
	}
	if v := gwm[`talus_http_request_body_bytes_total{op="PutObject"}`]; v < float64(len(body)) {
		t.Errorf("gateway PutObject bytes in %v, want at least %d", v, len(body))
	}
	if v := gwm[`talus_http_request_duration_seconds_count{op="PutObject"}`]; v != 1 {
		t.Errorf("gateway PutObject latency observations %v, want 1", v)
	}

	mm := scrape(t, c.MetaAddr())
	if v := mm[`talus_meta_nodes{state="up"}`]; v != 6 {
		t.Errorf("meta nodes up %v, want 6", v)
	}
	if v := mm[`talus_meta_raft_state{state="Leader"}`]; v != 1 {
		t.Errorf("meta raft leader state %v, want 1", v)
	}
	if v := mm[`talus_meta_raft_commit_index`]; v < 1 {
		t.Errorf("meta commit index %v", v)
	}
	if v := mm[`talus_http_requests_total{code="200",op="POST /v1/objects"}`]; v != 1 {
		t.Errorf("meta object commits %v, want 1", v)
	}
	if _, ok := mm[`talus_meta_gc_pending`]; !ok {
		t.Error("meta has no GC queue gauge")
	}

	// 1 MiB in 4+2: six shards of 256 KiB, one per chunk server.
	var shardBytes, reads float64
	for _, ch := range c.Chunks {
		cm := scrape(t, ch.Addr())
		shardBytes += cm[`talus_http_request_body_bytes_total{op="PUT shard"}`]
		reads += cm[`talus_http_requests_total{code="200",op="GET shard"}`]
		var free float64
		for k, v := range cm {
			if strings.HasPrefix(k, "talus_chunk_disk_free_bytes{") {
				free += v
			}
		}
		if free <= 0 {
			t.Errorf("chunk server %s reports no free disk space", ch.Addr())
		}
		if _, ok := cm["talus_chunk_fsync_batches_total"]; ok {
			t.Error("fsync batches not labelled by disk")
		}
	}
	if shardBytes < float64(len(body))*6/4 {
		t.Errorf("chunk servers took %v shard bytes, want at least %d", shardBytes, len(body)*6/4)
	}
	if reads < 4 {
		t.Errorf("chunk servers served %v shard reads, want at least 4", reads)
	}
}

// scrape reads addr's /metrics, unauthenticated, into series -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s: %s", addr, resp.Status, b)
	}
	if bytes.Contains(b, []byte("test-secret")) || bytes.Contains(b, []byte("rootsecret")) {
		t.Fatalf("%s/metrics shows a secret", addr)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}
