package client_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

// startCluster starts a real 6-server 4+2 cluster on loopback.
func startCluster(t testing.TB, opts dev.Options) (*dev.Cluster, *client.Client) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}
	if opts.Secret == nil {
		opts.Secret = []byte("test-secret")
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 200 * time.Millisecond
	}
	if opts.Meta.GCInterval == 0 {
		opts.Meta.GCInterval = 100 * time.Millisecond
	}
	c, err := dev.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c, cl
}

func mustBucket(t testing.TB, cl *client.Client, name string) {
	t.Helper()
	if err := cl.Meta().CreateBucket(context.Background(), metaapi.Bucket{Name: name}); err != nil {
		t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t testing.TB, cl *client.Client, bucket, key string, data []byte) metaapi.Object {
	t.Helper()
	o, err := cl.Put(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return o
}

func get(cl *client.Client, bucket, key string, off, n int64) ([]byte, error) {
	r, err := cl.Get(context.Background(), bucket, key, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func mustGet(t testing.TB, cl *client.Client, bucket, key string, want []byte) {
	t.Helper()
	got, err := get(cl, bucket, key, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: %d bytes differ from the %d written", key, len(got), len(want))
	}
}

func TestRoundTripSizes(t *testing.T) {
	_, cl := startCluster(t, dev.Options{})
	mustBucket(t, cl, "sizes")
	stripe := 4 * erasure.DefaultBlockSize
	sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, stripe - 1, stripe, stripe + 1, 3*stripe + 12345}
	for _, size := range sizes {
		data := randBytes(uint64(size), size)
		key := fmt.Sprintf("obj-%d", size)
		o := put(t, cl, "sizes", key, data)
		if o.Size != int64(size) {
			t.Fatalf("size %d: committed size %d", size, o.Size)
		}
		mustGet(t, cl, "sizes", key, data)
		// The same through a stream of unknown length.
		o, err := cl.Put(context.Background(), "sizes", key+"-stream", io.MultiReader(bytes.NewReader(data)), -1, client.PutOptions{})
		if err != nil {
			t.Fatalf("streaming put of %d bytes: %v", size, err)
		}
		if o.Size != int64(size) {
			t.Fatalf("streaming put of %d bytes committed %d", size, o.Size)
		}
		mustGet(t, cl, "sizes", key+"-stream", data)
	}
}

func TestLargeObjectAndRanges(t *testing.T) {
	size := 100 << 20
	if testing.Short() {
		size = 10 << 20
	}
	// Small segments, so that the object spans several.
	_, cl := startCluster(t, dev.Options{Meta: meta.Config{SegmentSize: 4 << 20}})
	mustBucket(t, cl, "big")
	data := randBytes(42, size)
	o := put(t, cl, "big", "blob", data)
	if len(o.Segments) < 2 {
		t.Fatalf("a %d-byte object was stored in %d segments; want it split", size, len(o.Segments))
	}
	mustGet(t, cl, "big", "blob", data)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		off := r.Int64N(int64(size))
		n := r.Int64N(min(int64(size)-off, 3<<20)) + 1
		if i%10 == 0 {
			n = int64(size) - off // open-ended
		}
		got, err := get(cl, "big", "blob", off, n)
		if err != nil {
			t.Fatalf("range %d+%d: %v", off, n, err)
		}
		if !bytes.Equal(got, data[off:off+n]) {
			t.Fatalf("range %d+%d: wrong bytes", off, n)
		}
	}
	if _, err := get(cl, "big", "blob", int64(size)+1, 1); !errors.Is(err, client.ErrInvalidRange) {
		t.Fatalf("range past the end: got %v, want ErrInvalidRange", err)
	}
}

// TestSurvivesAnyTwoServersDown stops every pair of the six chunk servers in
// turn: with 4+2 every object must still read back identically; with a third
// server down reads must fail, saying why.
func TestSurvivesAnyTwoServersDown(t *testing.T) {
	c, cl := startCluster(t, dev.Options{})
	mustBucket(t, cl, "avail")
	objs := map[string][]byte{}
	for i, size := range []int{100 << 10, 1 << 20, 3<<20 + 7} {
		key := fmt.Sprintf("o%d", i)
		objs[key] = randBytes(uint64(i+100), size)
		put(t, cl, "avail", key, objs[key])
	}
	for a := 0; a < 6; a++ {
		for b := a + 1; b < 6; b++ {
			c.KillChunk(a)
			c.KillChunk(b)
			for key, want := range objs {
				got, err := get(cl, "avail", key, 0, -1)
				if err != nil {
					t.Fatalf("servers %d,%d down: get %s: %v", a, b, key, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("servers %d,%d down: get %s: wrong bytes", a, b, key)
				}
			}
			if a == 0 && b == 1 {
				c.KillChunk(2)
				_, err := get(cl, "avail", "o1", 0, -1)
				if !errors.Is(err, erasure.ErrTooFewShards) {
					t.Fatalf("three servers down: got %v, want ErrTooFewShards", err)
				}
				t.Logf("three servers down: %v", err)
				if err := c.StartChunk(2); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range []int{a, b} {
				if err := c.StartChunk(i); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// shardFiles maps shard ids ("<segment>.<index>") to their files on disk.
func shardFiles(t testing.TB, c *dev.Cluster) map[string]string {
	t.Helper()
	files := map[string]string{}
	for i := range c.Chunks {
		filepath.WalkDir(c.ChunkDir(i), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			name := d.Name()
			if seg, idx, ok := strings.Cut(name, "."); ok && len(seg) == 32 && len(idx) <= 3 && !strings.Contains(idx, ".") {
				files[name] = path
			}
			return nil
		})
	}
	return files
}

func TestCorruptShardIsReadAroundAndReported(t *testing.T) {
	c, cl := startCluster(t, dev.Options{})
	mustBucket(t, cl, "rot")
	data := randBytes(7, 2<<20)
	o := put(t, cl, "rot", "x", data)
	seg := o.Segments[0]
	victim := meta.ShardID(seg.ID, 1) // a data shard: the healthy read path needs it
	path, ok := shardFiles(t, c)[victim]
	if !ok {
		t.Fatalf("shard %s not found on disk", victim)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	f.ReadAt(b[:], 100)
	b[0] ^= 0xff
	f.WriteAt(b[:], 100)
	f.Close()

	mustGet(t, cl, "rot", "x", data)
	deadline := time.Now().Add(10 * time.Second)
	for {
		bad, err := cl.Meta().BadShards(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, bs := range bad {
			if bs.Segment == seg.ID && bs.Index == 1 {
				t.Logf("reported: %+v", bs)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("corrupt shard %s was never reported; reports: %+v", victim, bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	c, cl := startCluster(t, dev.Options{Dir: dir})
	mustBucket(t, cl, "keep")
	objs := map[string][]byte{}
	for i, size := range []int{0, 10, 70 << 10, 5 << 20} {
		key := fmt.Sprintf("k/%d", i)
		objs[key] = randBytes(uint64(i), size)
		put(t, cl, "keep", key, objs[key])
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	c2, cl2 := startCluster(t, dev.Options{Dir: dir})
	_ = c2
	for key, want := range objs {
		mustGet(t, cl2, "keep", key, want)
	}
	res, err := cl2.List(context.Background(), metaapi.ListRequest{Bucket: "keep"})
	if err != nil || len(res.Objects) != len(objs) {
		t.Fatalf("after restart: list has %d objects (err %v), want %d", len(res.Objects), err, len(objs))
	}
}

// TestGarbageCollection overwrites and deletes objects and checks that, once
// the collector is idle, every shard file on disk belongs to a live object.
func TestGarbageCollection(t *testing.T) {
	c, cl := startCluster(t, dev.Options{Meta: meta.Config{GCDelay: time.Millisecond}})
	mustBucket(t, cl, "gcb")
	ctx := context.Background()
	for i := range 10 {
		key := fmt.Sprintf("o%d", i)
		put(t, cl, "gcb", key, randBytes(uint64(i), 300<<10))
		put(t, cl, "gcb", key, randBytes(uint64(i+50), 200<<10)) // overwrite
		if i%2 == 0 {
			if err := cl.Delete(ctx, "gcb", key); err != nil {
				t.Fatal(err)
			}
		}
	}
	live := map[string]bool{}
	res, err := cl.List(ctx, metaapi.ListRequest{Bucket: "gcb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 5 {
		t.Fatalf("listing has %d objects, want 5", len(res.Objects))
	}
	for _, o := range res.Objects {
		full, err := cl.Head(ctx, "gcb", o.Key)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range full.Segments {
			live[s.ID] = true
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := cl.Meta().GCStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var stray []string
		files := shardFiles(t, c)
		for id := range files {
			seg, _, _ := strings.Cut(id, ".")
			if !live[seg] {
				stray = append(stray, id)
			}
		}
		if st.Pending == 0 && len(stray) == 0 {
			if len(files) != len(live)*6 {
				t.Fatalf("%d shard files for %d live segments, want %d", len(files), len(live), len(live)*6)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gc: %d deletions pending, %d unreferenced shard files remain: %v", st.Pending, len(stray), stray)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBadNames(t *testing.T) {
	_, cl := startCluster(t, dev.Options{})
	ctx := context.Background()
	for _, name := range []string{"", "ab", "UPPER", "has_underscore", "-lead", "trail-", "a..b", "192.168.1.1", strings.Repeat("a", 64)} {
		err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: name})
		if !errors.Is(err, metaapi.ErrInvalidName) {
			t.Errorf("bucket %q: got %v, want ErrInvalidName", name, err)
		}
	}
	mustBucket(t, cl, "names")
	for _, key := range []string{"", strings.Repeat("k", 1025), "bad\xffutf8"} {
		_, err := cl.Put(ctx, "names", key, strings.NewReader("x"), 1, client.PutOptions{})
		if !errors.Is(err, metaapi.ErrInvalidName) {
			t.Errorf("key of %d bytes: got %v, want ErrInvalidName", len(key), err)
		}
	}
	if _, err := cl.Put(ctx, "nobucket", "k", strings.NewReader("x"), 1, client.PutOptions{}); !errors.Is(err, metaapi.ErrNoSuchBucket) {
		t.Errorf("put into a missing bucket: got %v", err)
	}
	if _, err := cl.Put(ctx, "nobucket", "k", bytes.NewReader(make([]byte, 1<<20)), 1<<20, client.PutOptions{}); !errors.Is(err, metaapi.ErrNoSuchBucket) {
		t.Errorf("large put into a missing bucket: got %v", err)
	}
	res, _ := cl.List(ctx, metaapi.ListRequest{Bucket: "names"})
	if len(res.Objects) != 0 {
		t.Errorf("rejected writes left %d objects", len(res.Objects))
	}
	// A declared size the body does not match leaves nothing behind.
	if _, err := cl.Put(ctx, "names", "short", bytes.NewReader(make([]byte, 100)), 2<<20, client.PutOptions{}); !errors.Is(err, client.ErrSizeMismatch) {
		t.Errorf("short body: got %v, want ErrSizeMismatch", err)
	}
	if _, err := cl.Head(ctx, "names", "short"); !errors.Is(err, metaapi.ErrNoSuchKey) {
		t.Errorf("short body left an object: %v", err)
	}
}

func sum(b []byte) string { h := sha256.Sum256(b); return fmt.Sprintf("%x", h[:8]) }

func TestList(t *testing.T) {
	_, cl := startCluster(t, dev.Options{})
	mustBucket(t, cl, "list")
	ctx := context.Background()
	keys := []string{"a", "b/1", "b/2", "b/c/3", "c", "d/4", "e"}
	for _, k := range keys {
		put(t, cl, "list", k, []byte(k))
	}
	page := func(req metaapi.ListRequest) (got []string) {
		req.Bucket = "list"
		res, err := cl.List(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			got = append(got, o.Key)
		}
		for _, p := range res.CommonPrefixes {
			got = append(got, p+"*")
		}
		if res.Truncated {
			got = append(got, "next="+res.Next)
		}
		return got
	}
	cases := []struct {
		req  metaapi.ListRequest
		want string
	}{
		{metaapi.ListRequest{}, "a b/1 b/2 b/c/3 c d/4 e"},
		{metaapi.ListRequest{Delimiter: "/"}, "a c e b/* d/*"},
		{metaapi.ListRequest{Prefix: "b/", Delimiter: "/"}, "b/1 b/2 b/c/*"},
		{metaapi.ListRequest{After: "b/2"}, "b/c/3 c d/4 e"},
		{metaapi.ListRequest{Max: 2}, "a b/1 next=b/1"},
		{metaapi.ListRequest{Max: 2, Delimiter: "/"}, "a b/* next=b/"},
		{metaapi.ListRequest{After: "b/", Delimiter: "/", Max: 2}, "c d/* next=d/"},
		{metaapi.ListRequest{After: "b/1", Delimiter: "/"}, "c e b/* d/*"},
		{metaapi.ListRequest{Prefix: "zzz"}, ""},
	}
	for _, tc := range cases {
		got := strings.Join(sortedCopy(page(tc.req)), " ")
		want := strings.Join(sortedCopy(strings.Fields(tc.want)), " ")
		if got != want {
			t.Errorf("list %+v: got %q, want %q", tc.req, got, want)
		}
	}
	if _, err := cl.List(ctx, metaapi.ListRequest{Bucket: "missing"}); !errors.Is(err, metaapi.ErrNoSuchBucket) {
		t.Errorf("list of a missing bucket: %v", err)
	}
}

func sortedCopy(s []string) []string {
	s = append([]string(nil), s...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestFullDisk fills one server, then all of them: a full server costs a
// write one shard (reported for repair), and a cluster with no room refuses
// the write with a clear error and no object left behind.
func TestFullDisk(t *testing.T) {
	full := map[int]bool{0: true}
	var mu sync.Mutex
	_, cl := startCluster(t, dev.Options{ChunkConfig: func(i int, cfg *chunkserver.Config) {
		mu.Lock()
		defer mu.Unlock()
		if full[i] {
			cfg.DiskLimits = []int64{64 << 10}
		}
	}})
	mustBucket(t, cl, "full")
	ctx := context.Background()
	data := randBytes(5, 4<<20)
	for i := range 6 {
		// Every placement that includes server 0 loses that shard.
		put(t, cl, "full", fmt.Sprintf("one-full-%d", i), data)
		mustGet(t, cl, "full", fmt.Sprintf("one-full-%d", i), data)
	}

	c2, cl2 := startCluster(t, dev.Options{ChunkConfig: func(i int, cfg *chunkserver.Config) {
		cfg.DiskLimits = []int64{64 << 10}
	}})
	_ = c2
	mustBucket(t, cl2, "full")
	_, err := cl2.Put(ctx, "full", "nospace", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	if !errors.Is(err, chunkserver.ErrInsufficientStorage) {
		t.Fatalf("put into a full cluster: got %v, want ErrInsufficientStorage", err)
	}
	t.Logf("full cluster: %v", err)
	if _, err := cl2.Head(ctx, "full", "nospace"); !errors.Is(err, metaapi.ErrNoSuchKey) {
		t.Fatalf("failed put left an object: %v", err)
	}
	// Small objects live in the metadata store and still fit.
	put(t, cl2, "full", "tiny", []byte("still fits"))
}

// TestDeclaredMD5: a body that does not match its declared MD5 is never
// committed, inline or segmented; a matching one is.
func TestDeclaredMD5(t *testing.T) {
	_, cl := startCluster(t, dev.Options{})
	mustBucket(t, cl, "digest")
	ctx := context.Background()
	for _, size := range []int{10, 300 << 10} {
		data := randBytes(uint64(size), size)
		good := md5.Sum(data)
		bad := good
		bad[0] ^= 1
		key := fmt.Sprintf("k%d", size)
		_, err := cl.Put(ctx, "digest", key, bytes.NewReader(data), int64(size), client.PutOptions{MD5: bad[:]})
		if !errors.Is(err, client.ErrBadDigest) {
			t.Fatalf("%d bytes with a wrong MD5: %v", size, err)
		}
		if _, err := cl.Head(ctx, "digest", key); !errors.Is(err, metaapi.ErrNoSuchKey) {
			t.Fatalf("%d bytes with a wrong MD5 left an object: %v", size, err)
		}
		if _, err := cl.Put(ctx, "digest", key, bytes.NewReader(data), int64(size), client.PutOptions{MD5: good[:]}); err != nil {
			t.Fatalf("%d bytes with the right MD5: %v", size, err)
		}
		mustGet(t, cl, "digest", key, data)
	}
}
