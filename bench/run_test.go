package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/bench"
	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta/metaapi"
)

const (
	accessKey = "k"
	secretKey = "s"
)

// cluster is a dev cluster with an S3 gateway in front of it.
type cluster struct {
	*dev.Cluster
	client *client.Client
	s3URL  string
	stop   func()
}

func startCluster(ctx context.Context, dir string) (*cluster, error) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(100)}))
	dc, err := dev.Start(ctx, dev.Options{Dir: dir, Secret: []byte("s"), Heartbeat: 200 * time.Millisecond, Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	c := &cluster{Cluster: dc}
	if c.client, err = dc.Client(); err != nil {
		dc.Stop()
		return nil, err
	}
	gw, err := gateway.New(gateway.Config{Client: c.client, RootAccessKey: accessKey, RootSecretKey: secretKey, Logger: quiet})
	if err != nil {
		dc.Stop()
		return nil, err
	}
	srv := httptest.NewServer(gw.Handler()) // on 127.0.0.1
	c.s3URL = srv.URL
	c.stop = func() {
		srv.Close()
		dc.Stop()
	}
	return c, nil
}

// env is the cluster the tests share.
var env *cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binDir, err = os.MkdirTemp("", "bench-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	if env, err = startCluster(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.stop()
	return m.Run()
}

func s3Target(t *testing.T) *bench.S3 {
	t.Helper()
	return s3TargetOf(t, env)
}

func s3TargetOf(t *testing.T, c *cluster) *bench.S3 {
	t.Helper()
	// The environment's AWS_CA_BUNDLE must not matter to a plain-HTTP
	// endpoint, even when it names no file at all.
	tg, err := bench.NewS3(bench.S3Config{Endpoint: c.s3URL, AccessKey: accessKey, SecretKey: secretKey, CABundle: "/nonexistent/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func nativeTarget() *bench.Native {
	return bench.NewNative(env.client, env.MetaAddr())
}

// small is a configuration that finishes in about a second and a half,
// with sizes on both sides of the 64 KiB inline limit.
func small(tg bench.Target, w bench.Workload) bench.Config {
	return bench.Config{
		Target: tg, Workload: w,
		Sizes:       bench.Sizes{Min: 1 << 10, Max: 256 << 10},
		Concurrency: 4, Duration: time.Second, Warmup: 200 * time.Millisecond, Objects: 40,
	}
}

// jsonResult is the JSON contract of a Result that scripts rely on.
type jsonResult struct {
	Workload string           `json:"workload"`
	Bucket   string           `json:"bucket"`
	Seconds  float64          `json:"seconds"`
	Cleanup  string           `json:"cleanup"`
	Total    jsonOp           `json:"total"`
	Ops      []jsonOp         `json:"ops"`
	Errors   []map[string]any `json:"errors"`
	Timeline []struct {
		T   float64 `json:"t"`
		Ops int64   `json:"ops"`
	} `json:"timeline"`
}

type jsonOp struct {
	Op        string       `json:"op"`
	Ops       int64        `json:"ops"`
	Errors    int64        `json:"errors"`
	Bytes     int64        `json:"bytes"`
	OpsPerSec float64      `json:"ops_per_s"`
	Latency   jsonLatency  `json:"latency_ms"`
	TTFB      *jsonLatency `json:"ttfb_ms"`
}

type jsonLatency struct {
	Min, P50, P90, P99, P999, Max float64
}

func (l *jsonLatency) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*l = jsonLatency{m["min"], m["p50"], m["p90"], m["p99"], m["p99_9"], m["max"]}
	return nil
}

func (l jsonLatency) ordered() bool {
	return 0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max
}

// decode checks a result through its JSON: operations done, none failed,
// percentiles in order, a timeline.
func decode(t *testing.T, b []byte) jsonResult {
	t.Helper()
	var r jsonResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("result JSON: %v\n%s", err, b)
	}
	if r.Total.Ops <= 0 || r.Total.OpsPerSec <= 0 || r.Seconds <= 0 {
		t.Errorf("%s: %d ops, %v ops/s in %vs", r.Workload, r.Total.Ops, r.Total.OpsPerSec, r.Seconds)
	}
	if r.Total.Errors != 0 || len(r.Errors) != 0 {
		t.Errorf("%s: %d errors: %v", r.Workload, r.Total.Errors, r.Errors)
	}
	for _, o := range append([]jsonOp{r.Total}, r.Ops...) {
		if o.Ops > 0 && !o.Latency.ordered() {
			t.Errorf("%s %s: latency percentiles out of order: %+v", r.Workload, o.Op, o.Latency)
		}
		if o.TTFB != nil {
			// Each get's first byte comes before its last, so every
			// quantile of the one is at most that of the other.
			l, f := o.Latency, *o.TTFB
			if !f.ordered() || f.P50 > l.P50 || f.P99 > l.P99 || f.Max > l.Max {
				t.Errorf("%s %s: time to first byte %+v against latency %+v", r.Workload, o.Op, f, l)
			}
		}
	}
	if len(r.Timeline) == 0 {
		t.Errorf("%s: no timeline", r.Workload)
	}
	return r
}

func check(t *testing.T, res *bench.Result, err error) jsonResult {
	t.Helper()
	return checkOn(t, env, res, err)
}

func checkOn(t *testing.T, c *cluster, res *bench.Result, err error) jsonResult {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	r := decode(t, b)
	if _, err := c.client.Meta().Bucket(context.Background(), res.Bucket); !errors.Is(err, metaapi.ErrNoSuchBucket) {
		t.Errorf("bucket %s after clean-up: %v, want ErrNoSuchBucket", res.Bucket, err)
	}
	return r
}

func opNames(r jsonResult) []string {
	var names []string
	for _, o := range r.Ops {
		names = append(names, o.Op)
	}
	return names
}

func TestS3Workloads(t *testing.T) {
	tg := s3Target(t)
	for _, w := range bench.Workloads() {
		t.Run(string(w), func(t *testing.T) {
			res, err := bench.Run(context.Background(), small(tg, w))
			r := check(t, res, err)
			want := map[bench.Workload][]string{
				bench.WorkloadPut: {"put"}, bench.WorkloadGet: {"get"}, bench.WorkloadList: {"list"},
				bench.WorkloadDelete: {"delete"}, bench.WorkloadMixed: {"put", "get", "delete", "stat"},
			}[w]
			if got := opNames(r); !slices.Equal(got, want) {
				t.Errorf("operations %v, want %v", got, want)
			}
			switch w {
			case bench.WorkloadPut, bench.WorkloadGet:
				if r.Total.Bytes <= 0 {
					t.Errorf("%s moved no bytes", w)
				}
			case bench.WorkloadDelete:
				// It ends when the prefilled objects are gone.
				if r.Total.Ops != 40 {
					t.Errorf("deleted %d objects, want the 40 prefilled", r.Total.Ops)
				}
			case bench.WorkloadMixed:
				for _, o := range r.Ops {
					if o.Ops == 0 {
						t.Errorf("mixed did no %s", o.Op)
					}
				}
			}
		})
	}
}

func TestNative(t *testing.T) {
	for _, w := range []bench.Workload{bench.WorkloadPut, bench.WorkloadGet, bench.WorkloadMixed} {
		t.Run(string(w), func(t *testing.T) {
			res, err := bench.Run(context.Background(), small(nativeTarget(), w))
			check(t, res, err)
			if !strings.HasPrefix(res.Target, "talus ") {
				t.Errorf("target %q", res.Target)
			}
		})
	}
}

// TestDeleteCount deletes as many objects as it prefilled, however the
// workers' shares run out.
func TestDeleteCount(t *testing.T) {
	cfg := small(nativeTarget(), bench.WorkloadDelete)
	cfg.Concurrency, cfg.Duration, cfg.Count, cfg.Objects = 7, 0, 200, 0
	res, err := bench.Run(context.Background(), cfg)
	check(t, res, err)
	if res.Objects != 200 || res.Total.Ops != 200 || res.Cleanup != "deleted 0 objects and bucket "+res.Bucket {
		t.Errorf("prefilled %d, deleted %d, clean-up %q; want 200, 200, nothing left", res.Objects, res.Total.Ops, res.Cleanup)
	}
}

func TestCount(t *testing.T) {
	cfg := small(nativeTarget(), bench.WorkloadPut)
	cfg.Duration, cfg.Count = 0, 25
	res, err := bench.Run(context.Background(), cfg)
	check(t, res, err)
	if res.Total.Ops != 25 {
		t.Errorf("%d operations, want 25", res.Total.Ops)
	}
	// The timeline saw them too (and warm-up operations finishing late).
	var n int64
	for _, s := range res.Timeline {
		n += s.Ops
	}
	if n < 25 {
		t.Errorf("timeline counts %d operations, want at least 25", n)
	}
}

func TestProgressAndSave(t *testing.T) {
	cfg := small(s3Target(t), bench.WorkloadGet)
	cfg.Duration = 1500 * time.Millisecond
	var mu sync.Mutex
	var phases []string
	cfg.Progress = func(p bench.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	res, err := bench.Run(context.Background(), cfg)
	check(t, res, err)
	if !slices.Contains(phases, "warmup") || !slices.Contains(phases, "run") {
		t.Errorf("progress phases %v, want warmup and run among them", phases)
	}

	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"get ttfb", "p99.9", "clean-up: deleted 40 objects and bucket " + res.Bucket} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	dir := filepath.Join(t.TempDir(), "out")
	if err := res.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bench.ThroughputFile, bench.LatencyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n")) {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
	csv, err := os.ReadFile(filepath.Join(dir, bench.TimelineFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	if len(lines) != len(res.Timeline)+1 || !strings.HasPrefix(lines[0], "t_s,") {
		t.Errorf("timeline CSV has %d lines for %d samples:\n%s", len(lines), len(res.Timeline), csv)
	}
	b, err := os.ReadFile(filepath.Join(dir, bench.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	decode(t, b)
}

func TestBucketOfOwn(t *testing.T) {
	ctx := context.Background()
	const bucket = "keep-me"
	if err := env.client.Meta().CreateBucket(ctx, metaapi.Bucket{Name: bucket}); err != nil {
		t.Fatal(err)
	}
	cfg := small(s3Target(t), bench.WorkloadPut)
	cfg.Bucket, cfg.Duration, cfg.Count = bucket, 0, 10
	if _, err := bench.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// A bucket the run did not create stays, emptied of what it wrote.
	res, err := env.client.List(ctx, metaapi.ListRequest{Bucket: bucket})
	if err != nil || len(res.Objects) != 0 {
		t.Fatalf("after the run: %d objects, %v; want an empty bucket", len(res.Objects), err)
	}

	cfg.NoCleanup = true
	if _, err := bench.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	res, err = env.client.List(ctx, metaapi.ListRequest{Bucket: bucket})
	if err != nil || len(res.Objects) < 10 {
		t.Fatalf("with NoCleanup: %d objects, %v; want the run's", len(res.Objects), err)
	}
}

// TestInterrupt cancels a run: it stops, reports what it measured, counts
// no failures for the requests it cut short, and cleans up. It has a
// cluster of its own: a shard write cut short while it waits for its fsync
// marks the chunk server's disk failed (chunkserver/put.go hands the
// context's error to diskError), which would fail the tests after it.
func TestInterrupt(t *testing.T) {
	c, err := startCluster(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := small(s3TargetOf(t, c), bench.WorkloadPut)
	cfg.Duration = time.Minute
	time.AfterFunc(time.Second, cancel)
	start := time.Now()
	res, err := bench.Run(ctx, cfg)
	r := checkOn(t, c, res, err)
	if !res.Interrupted || time.Since(start) > 20*time.Second {
		t.Errorf("interrupted %v after %v (%+v)", res.Interrupted, time.Since(start), r.Total)
	}
}

func TestBadCredentials(t *testing.T) {
	tg, err := bench.NewS3(bench.S3Config{Endpoint: env.s3URL, AccessKey: accessKey, SecretKey: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bench.Run(context.Background(), small(tg, bench.WorkloadPut))
	if kind := bench.ErrorKind(err); err == nil || (kind != "AccessDenied" && kind != "SignatureDoesNotMatch") {
		t.Fatalf("run with a wrong secret key: %v (%s)", err, bench.ErrorKind(err))
	}
}

// TestErrorsCounted takes half the chunk servers away in the middle of a
// get run: the reads that need them fail, and the run counts them by kind
// instead of folding them into the latencies.
func TestErrorsCounted(t *testing.T) {
	cfg := small(nativeTarget(), bench.WorkloadGet)
	cfg.Sizes = bench.Sizes{Min: 128 << 10, Max: 256 << 10} // erasure-coded, not inline
	cfg.Warmup = 0
	cfg.Progress = func(p bench.Progress) {
		if p.Phase == "run" && env.Chunks[0] != nil {
			for i := range 3 {
				env.KillChunk(i)
			}
		}
	}
	cfg.Duration = 2 * time.Second
	t.Cleanup(func() {
		for i := range 3 {
			if env.Chunks[i] == nil {
				if err := env.StartChunk(i); err != nil {
					t.Error(err)
				}
			}
		}
		if err := env.WaitRegistered(context.Background(), 6); err != nil {
			t.Error(err)
		}
	})
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := res.Ops[0]
	if get.Ops == 0 || get.Errors == 0 || len(res.Errors) == 0 {
		t.Fatalf("%d gets, %d failed, errors %+v: want both", get.Ops, get.Errors, res.Errors)
	}
	var counted int64
	for _, e := range res.Errors {
		if e.Op != "get" || e.Kind == "" || e.Example == "" {
			t.Errorf("error count %+v", e)
		}
		counted += e.Count
	}
	if counted != get.Errors || get.Latency.Count != uint64(get.Ops) {
		t.Errorf("%d errors by kind, %d failed gets; %d latencies for %d successful gets", counted, get.Errors,
			get.Latency.Count, get.Ops)
	}
}

// TestBinary runs the talus binary itself: flags, credentials from the
// environment, JSON on stdout, and an error as one line with a non-zero exit.
func TestBinary(t *testing.T) {
	bin := talusBinary(t)
	talus := func(env []string, args ...string) (stdout, stderr string, err error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		return o.String(), e.String(), err
	}

	out, errOut, err := talus([]string{"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey, "AWS_CA_BUNDLE=/nonexistent"},
		"bench", "mixed", "--endpoint", env.s3URL, "--size", "4KiB-128KiB", "--concurrency", "4",
		"--duration", "1s", "--warmup", "200ms", "--objects", "20", "--json")
	if err != nil {
		t.Fatalf("talus bench mixed: %v\n%s", err, errOut)
	}
	if r := decode(t, []byte(out)); r.Workload != "mixed" || len(r.Ops) != 4 {
		t.Errorf("workload %s with operations %v", r.Workload, opNames(r))
	}

	out, errOut, err = talus([]string{"TALUS_SECRET=s"}, "bench", "get", "--meta", env.MetaAddr(),
		"--size", "100KB", "--concurrency", "2", "--duration", "1s", "--warmup", "0s", "--objects", "10")
	if err != nil {
		t.Fatalf("talus bench get: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "get ttfb") || !strings.Contains(out, "clean-up: deleted 10 objects") {
		t.Errorf("table:\n%s", out)
	}

	_, errOut, err = talus(nil, "bench", "get", "--meta", env.MetaAddr(), "--secret", "s", "--size", "12 parsecs")
	if err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.HasPrefix(errOut, "talus: bench: --size") {
		t.Errorf("bad --size: %v, stderr %q", err, errOut)
	}
}
