package chunkserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talusfs/talus/internal/clusterauth"
)

var testSecret = []byte("test secret")

type testServer struct {
	*Server
	addr  string
	url   string
	c     *Client
	disks []string
}

// start runs a chunk server on 127.0.0.1 with cfg; it fills in two temp
// disks, the test secret and a quiet logger where cfg leaves them empty.
func start(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if len(cfg.Disks) == 0 {
		cfg.Disks = []string{t.TempDir(), t.TempDir()}
	}
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return &testServer{
		Server: s,
		addr:   hs.Listener.Addr().String(),
		url:    hs.URL,
		c:      NewClient(cfg.Secret, nil),
		disks:  cfg.Disks,
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newShardID() string {
	return ShardID(hex.EncodeToString(randomBytes(16)), mrand.IntN(256))
}

func (ts *testServer) put(t testing.TB, id string, data []byte) string {
	t.Helper()
	disk, err := ts.c.Put(context.Background(), ts.addr, id, int64(len(data)), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %d bytes: %v", len(data), err)
	}
	return disk
}

func (ts *testServer) get(id string, off, n int64) ([]byte, error) {
	rc, err := ts.c.Get(context.Background(), ts.addr, id, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// awaitNoFiles fails the test if files remain under the disks. A client
// that gives up on a request (a short body, say) can return before the
// server's handler has finished failing it, so the handler gets a moment to
// clean up.
func (ts *testServer) awaitNoFiles(t testing.TB, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f := ts.files(t); len(f) != 0; f = ts.files(t) {
		if time.Now().After(deadline) {
			t.Fatalf("%s left files: %v", what, f)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// files lists every file under the disks except the fixed layout files.
func (ts *testServer) files(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, d := range ts.disks {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			switch e.Name() {
			case lockFile, diskIDFile, nodeIDFile:
				return nil
			}
			if !e.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

func (ts *testServer) shardPath(t testing.TB, id string) string {
	t.Helper()
	for _, d := range ts.disks {
		p := filepath.Join(d, shardsDir, id[:2], id)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("shard %s not on any disk", id)
	return ""
}

func (ts *testServer) status(t testing.TB) Status {
	t.Helper()
	st, err := ts.c.Status(context.Background(), ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) { testRoundTrip(t, Config{}) })
	t.Run("direct", func(t *testing.T) { testRoundTrip(t, Config{directMin: 1}) })
	t.Run("buffered", func(t *testing.T) { testRoundTrip(t, Config{noDirect: true}) })
}

func testRoundTrip(t *testing.T, cfg Config) {
	ts := start(t, cfg)
	st := ts.status(t)
	bs := defaultBlockSize
	for _, n := range []int{0, 1, bs - 1, bs, bs + 1, defaultIOSize - 1, defaultIOSize, defaultIOSize + 1, 3<<20 + 5} {
		id := newShardID()
		data := randomBytes(n)
		disk := ts.put(t, id, data)
		if !slices.ContainsFunc(st.Disks, func(d DiskStatus) bool { return d.ID == disk }) {
			t.Errorf("put answered disk %q, not one of the server's", disk)
		}
		got, err := ts.get(id, 0, -1)
		if err != nil {
			t.Fatalf("get %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("get %d bytes: got %d different bytes", n, len(got))
		}
		size, err := ts.c.Head(context.Background(), ts.addr, id)
		if err != nil || size != int64(n) {
			t.Errorf("head = %d, %v; want %d", size, err, n)
		}
		if err := ts.VerifyShard(context.Background(), id); err != nil {
			t.Errorf("VerifyShard: %v", err)
		}
		fi, err := os.Stat(ts.shardPath(t, id))
		if err != nil || fi.Size() != fileSize(int64(n), defaultBlockSize) {
			t.Errorf("file size %v, %v; want %d", fi.Size(), err, fileSize(int64(n), defaultBlockSize))
		}
	}
	if f := ts.files(t); len(f) != 9 {
		t.Errorf("%d files on disk, want 9: %v", len(f), f)
	}
}

func TestRangeReads(t *testing.T) {
	t.Parallel()
	for _, io := range []int{0, 64 << 10} { // default, and one block per read
		ts := start(t, Config{ioSize: io})
		id := newShardID()
		data := randomBytes(5<<20 + 123)
		ts.put(t, id, data)
		size := int64(len(data))
		ranges := [][2]int64{{0, 0}, {size, 0}, {0, size}, {size - 1, 1}, {65535, 2}, {65536, 65536}, {1, size - 2}}
		for range 100 {
			off := mrand.Int64N(size + 1)
			ranges = append(ranges, [2]int64{off, mrand.Int64N(size - off + 1)})
		}
		for _, r := range ranges {
			got, err := ts.get(id, r[0], r[1])
			if err != nil {
				t.Fatalf("get [%d,+%d): %v", r[0], r[1], err)
			}
			if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Fatalf("get [%d,+%d): wrong bytes", r[0], r[1])
			}
		}
		// To the end.
		if got, err := ts.get(id, size-10, -1); err != nil || !bytes.Equal(got, data[size-10:]) {
			t.Errorf("get to end: %d bytes, %v", len(got), err)
		}
		for _, r := range [][2]int64{{size + 1, -1}, {size, 1}, {0, size + 1}, {size - 5, 6}} {
			if _, err := ts.get(id, r[0], r[1]); !errors.Is(err, ErrBadRequest) {
				t.Errorf("get [%d,+%d) outside the shard: %v, want ErrBadRequest", r[0], r[1], err)
			}
		}
	}
}

// rawPut sends a PUT by hand so that tests can send what Client would not.
func (ts *testServer) rawPut(t *testing.T, path string, body io.Reader, hdr, trailer map[string]string, secret []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest("PUT", ts.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if trailer != nil {
		req.ContentLength = -1
		req.Trailer = http.Header{}
		for k, v := range trailer {
			req.Trailer.Set(k, v)
		}
	}
	clusterauth.Sign(req, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func crcHex(b []byte) string {
	return fmt.Sprintf("%08x", crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func TestCRCChecked(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	data := randomBytes(200 << 10)
	size := fmt.Sprint(len(data))
	good := crcHex(data)
	bad := crcHex(append([]byte{1}, data...))

	id := newShardID()
	code, body := ts.rawPut(t, "/v1/shards/"+id, bytes.NewReader(data),
		map[string]string{HeaderShardSize: size}, map[string]string{HeaderCRC32C: bad}, testSecret)
	if code != 400 || !strings.Contains(body, "crc32c mismatch") {
		t.Errorf("wrong trailer: %d %s, want 400 crc32c mismatch", code, body)
	}
	code, body = ts.rawPut(t, "/v1/shards/"+id, bytes.NewReader(data),
		map[string]string{HeaderShardSize: size, HeaderCRC32C: bad}, nil, testSecret)
	if code != 400 {
		t.Errorf("wrong crc header: %d %s, want 400", code, body)
	}
	code, body = ts.rawPut(t, "/v1/shards/"+id, bytes.NewReader(data),
		map[string]string{HeaderShardSize: size}, map[string]string{HeaderCRC32C: "xyz"}, testSecret)
	if code != 400 {
		t.Errorf("malformed trailer: %d %s, want 400", code, body)
	}
	ts.awaitNoFiles(t, "rejected puts")
	if _, err := ts.c.Head(context.Background(), ts.addr, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("head after rejected put: %v, want ErrNotFound", err)
	}

	// The right checksum, as trailer and as header, is accepted.
	code, body = ts.rawPut(t, "/v1/shards/"+id, bytes.NewReader(data),
		map[string]string{HeaderShardSize: size}, map[string]string{HeaderCRC32C: good}, testSecret)
	if code != 201 {
		t.Errorf("right trailer: %d %s", code, body)
	}
	code, body = ts.rawPut(t, "/v1/shards/"+id, bytes.NewReader(data),
		map[string]string{HeaderShardSize: size, HeaderCRC32C: good}, nil, testSecret)
	if code != 201 {
		t.Errorf("right header: %d %s", code, body)
	}
	if got, err := ts.get(id, 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Errorf("get: %v", err)
	}
}

// TestClientSendsCRC checks that Client.Put sends the body's checksum, so
// that the server can catch damage in transit.
func TestClientSendsCRC(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Disks: []string{t.TempDir()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var got []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Handler().ServeHTTP(w, r)
		mu.Lock()
		got = append(got, r.Trailer.Get(HeaderCRC32C))
		mu.Unlock()
	}))
	defer hs.Close()
	c := NewClient(nil, nil)
	for _, n := range []int{0, 1, 100 << 10, 1 << 20} {
		data := randomBytes(n)
		if _, err := c.Put(context.Background(), hs.Listener.Addr().String(), newShardID(), int64(n), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if last := got[len(got)-1]; last != crcHex(data) {
			t.Errorf("%d bytes: trailer %q, want %q", n, last, crcHex(data))
		}
		mu.Unlock()
	}
}

func TestBadSizes(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{MaxShardSize: 1 << 20})
	id := newShardID()
	data := randomBytes(1000)
	cases := []struct {
		name    string
		body    io.Reader
		hdr     map[string]string
		chunked bool
	}{
		{"no size", bytes.NewReader(data), nil, false},
		{"bad size", bytes.NewReader(data), map[string]string{HeaderShardSize: "x"}, false},
		{"negative", bytes.NewReader(data), map[string]string{HeaderShardSize: "-1"}, false},
		{"too large", bytes.NewReader(data), map[string]string{HeaderShardSize: fmt.Sprint(2 << 20)}, true},
		{"content-length differs", bytes.NewReader(data), map[string]string{HeaderShardSize: "999"}, false},
		{"chunked body short", bytes.NewReader(data), map[string]string{HeaderShardSize: "1001"}, true},
		{"chunked body long", bytes.NewReader(data), map[string]string{HeaderShardSize: "999"}, true},
	}
	for _, c := range cases {
		var trailer map[string]string
		if c.chunked {
			trailer = map[string]string{}
		}
		if code, body := ts.rawPut(t, "/v1/shards/"+id, c.body, c.hdr, trailer, testSecret); code != 400 {
			t.Errorf("%s: %d %s, want 400", c.name, code, body)
		}
	}
	// A client body shorter than the size it promised.
	_, err := ts.c.Put(context.Background(), ts.addr, id, 2000, bytes.NewReader(data))
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("client put with short body: %v, want ErrBadRequest", err)
	}
	ts.awaitNoFiles(t, "rejected puts")
}

func TestBadIDs(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	seg := hex.EncodeToString(randomBytes(16))
	for _, p := range []string{"../x", "..%2Fx", "a/b", "a%2Fb", "", strings.ToUpper(seg) + ".1",
		seg + ".01", seg + ".256", seg + "/../" + seg + ".1", "%2e%2e%2f" + seg + ".1"} {
		code, body := ts.rawPut(t, "/v1/shards/"+p, strings.NewReader("x"), map[string]string{HeaderShardSize: "1"}, nil, testSecret)
		if code != 400 {
			t.Errorf("PUT id %q: %d %s, want 400", p, code, body)
		}
		_, err := ts.c.Put(context.Background(), ts.addr, p, 1, strings.NewReader("x"))
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("client put %q: %v, want ErrBadRequest", p, err)
		}
	}
	ts.awaitNoFiles(t, "bad ids")
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	id := newShardID()
	big := randomBytes(8 << 20)
	for _, secret := range [][]byte{nil, []byte("wrong")} {
		c := NewClient(secret, nil)
		_, err := c.Put(context.Background(), ts.addr, id, 3, strings.NewReader("abc"))
		if !errors.Is(err, clusterauth.ErrUnauthorized) {
			t.Errorf("put with secret %q: %v, want ErrUnauthorized", secret, err)
		}
		_, err = c.Put(context.Background(), ts.addr, id, int64(len(big)), bytes.NewReader(big))
		if !errors.Is(err, clusterauth.ErrUnauthorized) {
			t.Errorf("put 8 MiB with secret %q: %v, want ErrUnauthorized", secret, err)
		}
		if _, err := c.Get(context.Background(), ts.addr, id, 0, -1); !errors.Is(err, clusterauth.ErrUnauthorized) {
			t.Errorf("get with secret %q: %v, want ErrUnauthorized", secret, err)
		}
		if err := c.Delete(context.Background(), ts.addr, id); !errors.Is(err, clusterauth.ErrUnauthorized) {
			t.Errorf("delete with secret %q: %v, want ErrUnauthorized", secret, err)
		}
		if _, err := c.Status(context.Background(), ts.addr); !errors.Is(err, clusterauth.ErrUnauthorized) {
			t.Errorf("status with secret %q: %v, want ErrUnauthorized", secret, err)
		}
	}
	ts.awaitNoFiles(t, "unauthorized put")
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(ts.url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(ts.url + "/v1/inventory")
	if err != nil || resp.StatusCode != 401 {
		t.Errorf("unsigned inventory: %v %v, want 401", resp.Status, err)
	}
	resp.Body.Close()
}

// flip inverts one byte of a file.
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruption(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	bs := int64(defaultBlockSize)
	perRead := int64(defaultIOSize) // bytes per verified read
	data := randomBytes(int(2*perRead + 3*bs + 100))
	size := int64(len(data))
	ctx := context.Background()

	t.Run("first block", func(t *testing.T) {
		id := newShardID()
		ts.put(t, id, data)
		flip(t, ts.shardPath(t, id), bs+10) // block 1
		for _, r := range [][2]int64{{0, -1}, {bs, 1}, {bs + 10, 1}, {bs - 1, 2}} {
			_, err := ts.get(id, r[0], r[1])
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("get [%d,+%d) over corrupt block: %v, want ErrCorrupt", r[0], r[1], err)
			}
			if err != nil && (!strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), ts.addr)) {
				t.Errorf("error %q does not name the shard and server", err)
			}
		}
		// Ranges in other blocks are still served.
		for _, r := range [][2]int64{{0, bs}, {2 * bs, size - 2*bs}, {bs - 1, 1}, {2 * bs, 1}} {
			got, err := ts.get(id, r[0], r[1])
			if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Errorf("get [%d,+%d) around corrupt block: %v", r[0], r[1], err)
			}
		}
		if err := ts.VerifyShard(ctx, id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("VerifyShard: %v, want ErrCorrupt", err)
		}
	})

	t.Run("later block", func(t *testing.T) {
		id := newShardID()
		ts.put(t, id, data)
		corruptAt := perRead + bs + 5 // in the second read of a whole-shard GET
		flip(t, ts.shardPath(t, id), corruptAt)
		rc, err := ts.c.Get(ctx, ts.addr, id, 0, size)
		if err != nil {
			t.Fatalf("get: %v (the first read is intact, so it should start)", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err == nil {
			t.Fatal("read of a shard with a corrupt block succeeded")
		}
		if int64(len(got)) > corruptAt/bs*bs || !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("got %d bytes before the error; must be a correct prefix ending before block %d", len(got), corruptAt/bs)
		}
		if _, err := ts.get(id, corruptAt-3, 10); !errors.Is(err, ErrCorrupt) {
			t.Errorf("range starting in the corrupt block: %v, want ErrCorrupt", err)
		}
		if got, err := ts.get(id, 0, perRead); err != nil || !bytes.Equal(got, data[:perRead]) {
			t.Errorf("range before the corrupt block: %v", err)
		}
		// The connection pool survives the aborted response.
		if got, err := ts.get(id, size-10, 10); err != nil || !bytes.Equal(got, data[size-10:]) {
			t.Errorf("range after the corrupt block: %v", err)
		}
	})

	t.Run("table", func(t *testing.T) {
		id := newShardID()
		ts.put(t, id, data)
		flip(t, ts.shardPath(t, id), size+4*2) // checksum of block 2
		if _, err := ts.get(id, 2*bs, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("block with corrupt checksum: %v, want ErrCorrupt", err)
		}
		if _, err := ts.get(id, 0, bs); err != nil {
			t.Errorf("block 0: %v", err)
		}
	})

	t.Run("footer", func(t *testing.T) {
		id := newShardID()
		ts.put(t, id, data)
		p := ts.shardPath(t, id)
		fi, _ := os.Stat(p)
		flip(t, p, fi.Size()-20)
		if _, err := ts.get(id, 0, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("corrupt footer: %v, want ErrCorrupt", err)
		}
		if _, err := ts.c.Head(ctx, ts.addr, id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("head of shard with corrupt footer: %v, want ErrCorrupt", err)
		}
	})

	t.Run("truncated", func(t *testing.T) {
		id := newShardID()
		ts.put(t, id, data)
		if err := os.Truncate(ts.shardPath(t, id), size); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.get(id, 0, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated shard: %v, want ErrCorrupt", err)
		}
	})

	t.Run("small shard", func(t *testing.T) {
		// Read whole in one go: the corrupt block is the only one.
		id := newShardID()
		small := randomBytes(1000)
		ts.put(t, id, small)
		flip(t, ts.shardPath(t, id), 999)
		if _, err := ts.get(id, 0, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("corrupt small shard: %v, want ErrCorrupt", err)
		}
	})
}

func TestDiskFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	shard := randomBytes(100 << 10)
	fsize := fileSize(int64(len(shard)), defaultBlockSize)

	t.Run("other disk used", func(t *testing.T) {
		ts := start(t, Config{DiskLimits: []int64{fsize - 1, 0}})
		st := ts.status(t)
		for range 4 {
			if disk := ts.put(t, newShardID(), shard); disk != st.Disks[1].ID {
				t.Errorf("shard went to disk %s, which is too small", disk)
			}
		}
	})

	t.Run("all full", func(t *testing.T) {
		ts := start(t, Config{DiskLimits: []int64{2 * fsize, fsize}, ReserveBytes: 1})
		ts.put(t, newShardID(), shard) // on disk 0: now fsize free, 1 reserved
		_, err := ts.c.Put(ctx, ts.addr, newShardID(), int64(len(shard)), bytes.NewReader(shard))
		if !errors.Is(err, ErrInsufficientStorage) {
			t.Fatalf("put to full disks: %v, want ErrInsufficientStorage", err)
		}
		// A big body is refused before it is sent, and the client still
		// gets the answer rather than a broken pipe.
		big := randomBytes(16 << 20)
		for _, r := range []io.Reader{bytes.NewReader(big), struct{ io.Reader }{bytes.NewReader(big)}} {
			_, err = ts.c.Put(ctx, ts.addr, newShardID(), int64(len(big)), r)
			if !errors.Is(err, ErrInsufficientStorage) {
				t.Fatalf("put 16 MiB to full disks: %v, want ErrInsufficientStorage", err)
			}
		}
		if f := ts.files(t); len(f) != 1 {
			t.Errorf("files after the failed put: %v", f)
		}
		// A smaller shard still fits.
		ts.put(t, newShardID(), shard[:1000])
		for _, d := range ts.status(t).Disks {
			if !d.Healthy {
				t.Errorf("full disk %s reported unhealthy", d.Path)
			}
		}
	})

	t.Run("ENOSPC while writing", func(t *testing.T) {
		var ts *testServer
		var mu sync.Mutex
		failOn := ""
		// Limits, so that which disk has more room does not depend on
		// what else writes to the filesystem the test disks share.
		ts = start(t, Config{DiskLimits: []int64{1 << 30, 1 << 30}, writeFault: func(disk string) error {
			mu.Lock()
			defer mu.Unlock()
			if disk == failOn {
				failOn = ""
				return syscall.ENOSPC
			}
			return nil
		}})
		// Fail whichever disk the next put picks: both, one at a time.
		for i, d := range ts.disks {
			mu.Lock()
			failOn = d
			mu.Unlock()
			var err error
			for range len(ts.disks) {
				if _, err = ts.c.Put(ctx, ts.addr, newShardID(), int64(len(shard)), bytes.NewReader(shard)); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrInsufficientStorage) {
				t.Fatalf("disk %d: ENOSPC gave %v, want ErrInsufficientStorage", i, err)
			}
			if n, _ := os.ReadDir(filepath.Join(d, tmpDir)); len(n) != 0 {
				t.Errorf("temp file left after ENOSPC: %v", n)
			}
		}
		// Both disks are cooling down after ENOSPC; until then, 507.
		if _, err := ts.c.Put(ctx, ts.addr, newShardID(), 1, strings.NewReader("x")); !errors.Is(err, ErrInsufficientStorage) {
			t.Errorf("put while all disks are full: %v", err)
		}
		ts.Server.disks[1].fullUntil.Store(0)
		if disk := ts.put(t, newShardID(), shard); disk != ts.Server.disks[1].id {
			t.Errorf("put went to %s, want the disk no longer full", disk)
		}
	})
}

func TestDiskFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var bad string
	var mu sync.Mutex
	ts := start(t, Config{writeFault: func(disk string) error {
		mu.Lock()
		defer mu.Unlock()
		if disk == bad {
			return syscall.EIO
		}
		return nil
	}})
	mu.Lock()
	bad = ts.disks[0]
	mu.Unlock()
	var failed error
	for range 4 {
		if _, err := ts.c.Put(ctx, ts.addr, newShardID(), 10, bytes.NewReader(make([]byte, 10))); err != nil {
			failed = err
		}
	}
	if failed == nil {
		t.Fatal("no put failed although a disk returns EIO")
	}
	st := ts.status(t)
	if st.Disks[0].Healthy || st.Disks[0].Error == "" || !st.Disks[1].Healthy {
		t.Errorf("after EIO, disks are %+v; want disk 0 unhealthy with an error", st.Disks)
	}
	for range 4 {
		if disk := ts.put(t, newShardID(), []byte("x")); disk != st.Disks[1].ID {
			t.Errorf("put went to the failed disk")
		}
	}
}

func TestSpreadAndInventory(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{Disks: []string{t.TempDir(), t.TempDir(), t.TempDir()}})
	want := map[string]ShardInfo{}
	for i := range 30 {
		id := newShardID()
		data := randomBytes(i * 5000)
		disk := ts.put(t, id, data)
		want[id] = ShardInfo{ID: id, Disk: disk, Size: int64(len(data))}
	}
	got := map[string]ShardInfo{}
	err := ts.c.Inventory(context.Background(), ts.addr, func(si ShardInfo) error {
		if _, dup := got[si.ID]; dup {
			t.Errorf("inventory lists %s twice", si.ID)
		}
		if si.MTime <= 0 {
			t.Errorf("mtime %d", si.MTime)
		}
		si.MTime = 0
		got[si.ID] = si
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("inventory has %d shards, want %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("inventory: %+v, want %+v", got[id], w)
		}
	}
	var total int64
	for _, d := range ts.status(t).Disks {
		if d.Shards == 0 {
			t.Errorf("disk %s got no shards", d.Path)
		}
		if d.Capacity == 0 || d.Free == 0 || d.Free > d.Capacity || !d.Healthy || d.ID == "" {
			t.Errorf("implausible disk status %+v", d)
		}
		total += d.Shards
	}
	if total != 30 {
		t.Errorf("status counts %d shards, want 30", total)
	}
	errStop := errors.New("stop")
	if err := ts.c.Inventory(context.Background(), ts.addr, func(ShardInfo) error { return errStop }); !errors.Is(err, errStop) {
		t.Errorf("inventory callback error: %v", err)
	}
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{Zone: "z1", ID: "node-7"})
	req, _ := http.NewRequest("GET", ts.url+"/v1/status", nil)
	clusterauth.Sign(req, testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m["id"] != "node-7" || m["zone"] != "z1" {
		t.Errorf("status %v", m)
	}
	d := m["disks"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "path", "capacity", "free", "used", "shards", "healthy"} {
		if _, ok := d[k]; !ok {
			t.Errorf("disk status lacks %q: %v", k, d)
		}
	}
}

func TestDeleteAndOverwrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := start(t, Config{DiskLimits: []int64{20 << 20, 15 << 20}})
	id := newShardID()
	ts.put(t, id, randomBytes(1000))
	for range 2 {
		if err := ts.c.Delete(ctx, ts.addr, id); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := ts.get(id, 0, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	for _, d := range ts.status(t).Disks {
		if d.Shards != 0 || d.Used != 0 {
			t.Errorf("after delete, disk %+v", d)
		}
	}

	// An overwrite that lands on another disk leaves one copy only.
	old := randomBytes(9 << 20)
	first := ts.put(t, id, old) // disk 0 has more room...
	newer := randomBytes(5 << 20)
	second := ts.put(t, id, newer) // ...now disk 1 has
	if first == second {
		t.Fatalf("both versions went to disk %s; the test needs them apart", first)
	}
	if got, err := ts.get(id, 0, -1); err != nil || !bytes.Equal(got, newer) {
		t.Errorf("get after overwrite: %v", err)
	}
	if f := ts.files(t); len(f) != 1 {
		t.Errorf("files after overwrite: %v", f)
	}
	var n int64
	for _, d := range ts.status(t).Disks {
		n += d.Shards
	}
	if n != 1 {
		t.Errorf("status counts %d shards after overwrite, want 1", n)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	disks := []string{t.TempDir(), t.TempDir()}
	cfg := Config{Disks: disks, Logger: slog.New(slog.DiscardHandler)}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodeID := s.ID()
	st, _ := s.Status(context.Background())
	s.Close()

	// Leftovers of a crashed write.
	for _, d := range disks {
		os.WriteFile(filepath.Join(d, tmpDir, newShardID()+".1"), []byte("partial"), 0o644)
	}

	ts := start(t, cfg)
	if ts.ID() != nodeID {
		t.Errorf("node id %s after restart, was %s", ts.ID(), nodeID)
	}
	for i, d := range ts.status(t).Disks {
		if d.ID != st.Disks[i].ID {
			t.Errorf("disk %d id %s after restart, was %s", i, d.ID, st.Disks[i].ID)
		}
	}
	if f := ts.files(t); len(f) != 0 {
		t.Errorf("temp files survived a restart: %v", f)
	}
	shards := map[string][]byte{}
	for i := range 10 {
		id := newShardID()
		shards[id] = randomBytes(i * 30000)
		ts.put(t, id, shards[id])
	}
	ts.Close() // release the disks; the HTTP server dies with the test
	if _, err := ts.c.Status(context.Background(), ts.addr); err == nil {
		t.Error("closed server still answers")
	}

	// Disks in another order: same node.
	ts2 := start(t, Config{Disks: []string{disks[1], disks[0]}})
	if ts2.ID() != nodeID {
		t.Errorf("node id %s with disks swapped, was %s", ts2.ID(), nodeID)
	}
	var n int64
	for _, d := range ts2.status(t).Disks {
		n += d.Shards
	}
	if n != 10 {
		t.Errorf("after restart status counts %d shards, want 10", n)
	}
	for id, data := range shards {
		if got, err := ts2.get(id, 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Errorf("get %s after restart: %v", id, err)
		}
	}

	// A disk can be open in one server only.
	if _, err := New(Config{Disks: []string{disks[0]}}); !errors.Is(err, errDiskInUse) {
		t.Errorf("second server on the same disk: %v, want in use", err)
	}
	ts2.Close()
	if _, err := New(Config{Disks: []string{disks[0], disks[0]}}); !errors.Is(err, errDiskInUse) {
		t.Errorf("one disk listed twice: %v, want in use", err)
	}
	// Disks of two different nodes.
	other := t.TempDir()
	s3, err := New(Config{Disks: []string{other}})
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	if s, err := New(Config{Disks: []string{disks[0], other}}); err == nil || !strings.Contains(err.Error(), "different nodes") {
		t.Errorf("disks of two nodes: %v", err)
		if s != nil {
			s.Close()
		}
	}
}

func TestUnusableDisk(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o644)
	ts := start(t, Config{Disks: []string{file, t.TempDir()}})
	st := ts.status(t)
	if st.Disks[0].Healthy || st.Disks[0].Error == "" || !st.Disks[1].Healthy {
		t.Errorf("status %+v; want the file reported as a broken disk", st.Disks)
	}
	ts.put(t, newShardID(), []byte("x"))
	if _, err := New(Config{Disks: []string{file}, Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("New with no usable disk succeeded")
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{ioSize: 64 << 10})
	ctx := context.Background()
	// A few ids everyone overwrites, reads and deletes, and private ones.
	shared := []string{newShardID(), newShardID(), newShardID()}
	versions := map[string]bool{}
	contents := make([][]byte, 8)
	for i := range contents {
		contents[i] = randomBytes(mrand.IntN(300 << 10))
		versions[string(contents[i])] = true
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				id := shared[i%len(shared)]
				data := contents[(g+i)%len(contents)]
				switch i % 4 {
				case 0, 1:
					if _, err := ts.c.Put(ctx, ts.addr, id, int64(len(data)), bytes.NewReader(data)); err != nil {
						t.Errorf("put: %v", err)
					}
				case 2:
					got, err := ts.get(id, 0, -1)
					if err != nil && !errors.Is(err, ErrNotFound) {
						t.Errorf("get: %v", err)
					}
					if err == nil && !versions[string(got)] {
						t.Errorf("get returned %d bytes that no put wrote", len(got))
					}
				case 3:
					if i%8 == 3 {
						if err := ts.c.Delete(ctx, ts.addr, id); err != nil {
							t.Errorf("delete: %v", err)
						}
					}
				}
				own := newShardID()
				if _, err := ts.c.Put(ctx, ts.addr, own, int64(len(data)), bytes.NewReader(data)); err != nil {
					t.Errorf("put: %v", err)
					continue
				}
				if got, err := ts.get(own, 0, -1); err != nil || !bytes.Equal(got, data) {
					t.Errorf("get own shard: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// The counters agree with what is on disk.
	var files int
	var bytesOnDisk int64
	for _, d := range ts.disks {
		for i := range 256 {
			ents, _ := os.ReadDir(filepath.Join(d, shardsDir, fmt.Sprintf("%02x", i)))
			for _, e := range ents {
				fi, _ := e.Info()
				files++
				bytesOnDisk += fi.Size()
			}
		}
	}
	var count int64
	var used uint64
	for _, d := range ts.status(t).Disks {
		count += d.Shards
		used += d.Used
	}
	if count != int64(files) || used != uint64(bytesOnDisk) {
		t.Errorf("status says %d shards, %d bytes; disks hold %d, %d", count, used, files, bytesOnDisk)
	}
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	do := func(method, path string) *http.Response {
		req, _ := http.NewRequest(method, ts.url+path, nil)
		clusterauth.Sign(req, testSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	id := newShardID()
	ts.put(t, id, []byte("hello"))
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/v1/shards/" + id, 405},
		{"POST", "/v1/status", 405},
		{"GET", "/v2/x", 404},
		{"GET", "/v1/shards/" + id + "?offset=x", 400},
		{"GET", "/v1/shards/" + id + "?length=-2", 400},
		{"GET", "/v1/shards/" + id + "?offset=6", 416},
		{"GET", "/v1/shards/" + id + "?offset=1&length=9223372036854775807", 416},
		{"GET", "/v1/shards/" + newShardID(), 404},
		{"DELETE", "/v1/shards/bad", 400},
		{"GET", "/v1/shards/" + id + "?offset=1&length=3", 200},
	} {
		if resp := do(c.method, c.path); resp.StatusCode != c.code {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, resp.Status, c.code)
		}
	}
	resp := do("HEAD", "/v1/shards/"+id)
	if resp.Header.Get(HeaderShardSize) != "5" {
		t.Errorf("HEAD: %s = %q", HeaderShardSize, resp.Header.Get(HeaderShardSize))
	}
}
