package chunkserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/talusfs/talus/internal/clusterauth"
)

// pipeBody returns a pipe that yields data in odd-sized writes, as the
// native client's encoder feeds a shard of unknown length. Close the
// reader when done with it.
func pipeBody(data []byte) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		for i, p := 0, data; len(p) > 0; i++ {
			n := min(len(p), []int{1, 4099, 65537, 333, 200 << 10}[i%5])
			if _, err := pw.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
		pw.Close()
	}()
	return pr
}

// putUnknown stores data as a shard of unknown size, fed through a pipe
// if pipe is set.
func (ts *testServer) putUnknown(id string, data []byte, pipe bool) (string, error) {
	var body io.Reader = struct{ io.Reader }{bytes.NewReader(data)}
	if pipe {
		pr := pipeBody(data)
		defer pr.CloseWithError(errors.New("put returned"))
		body = pr
	}
	return ts.c.Put(context.Background(), ts.addr, id, -1, body)
}

// checkShard checks that shard id holds data, whole and by HEAD, in the
// file size and in the inventory.
func (ts *testServer) checkShard(t *testing.T, id string, data []byte) {
	t.Helper()
	n := len(data)
	got, err := ts.get(id, 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get %d bytes: %d bytes, %v", n, len(got), err)
	}
	if size, err := ts.c.Head(context.Background(), ts.addr, id); err != nil || size != int64(n) {
		t.Errorf("head = %d, %v; want %d", size, err, n)
	}
	if err := ts.VerifyShard(context.Background(), id); err != nil {
		t.Errorf("VerifyShard: %v", err)
	}
	fi, err := os.Stat(ts.shardPath(t, id))
	if err != nil || fi.Size() != fileSize(int64(n), ts.blockSize) {
		t.Errorf("file of %d bytes: %v, %v; want %d", n, fi.Size(), err, fileSize(int64(n), ts.blockSize))
	}
}

func TestUnknownSizeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},                                // turns to direct I/O after 1 MiB
		{"direct", Config{directMin: 1}},                     // direct from the first write
		{"buffered", Config{noDirect: true}},                 //
		{"small-io", Config{ioSize: 64 << 10, NoSync: true}}, // one block per read
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, c.cfg)
			bs, ios := int(ts.blockSize), ts.ioSize
			sizes := []int{0, 1, bs - 1, bs, bs + 1, ios - 1, ios, ios + 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 5}
			for i, n := range sizes {
				pipe := i%2 == 0
				id := newShardID()
				data := randomBytes(n)
				if _, err := ts.putUnknown(id, data, pipe); err != nil {
					t.Fatalf("put %d bytes of unknown size (pipe %v): %v", n, pipe, err)
				}
				ts.checkShard(t, id, data)
			}
			if f := ts.files(t); len(f) != len(sizes) {
				t.Errorf("%d files on disk, want %d: %v", len(f), len(sizes), f)
			}
		})
	}
}

// TestPutReadPath sends bodies through a transport that reads them with
// Read, as HTTP/2 and some proxies' transports do, rather than letting
// them write themselves to the connection.
func TestPutReadPath(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := NewClient(testSecret, &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r := *req // shallow, so that the trailer set at EOF is the one sent
		r.Body = struct{ io.ReadCloser }{req.Body}
		return tr.RoundTrip(&r)
	})})
	ctx := context.Background()
	for _, n := range []int{0, 1, 100 << 10, 2<<20 + 3} {
		data := randomBytes(n)
		for _, size := range []int64{int64(n), -1} {
			id := newShardID()
			pr := pipeBody(data)
			_, err := c.Put(ctx, ts.addr, id, size, pr)
			pr.CloseWithError(errors.New("put returned"))
			if err != nil {
				t.Fatalf("put %d bytes, size %d: %v", n, size, err)
			}
			ts.checkShard(t, id, data)
		}
		if n > 0 {
			short := pipeBody(data[:n-1])
			_, err := c.Put(ctx, ts.addr, newShardID(), int64(n), short)
			short.CloseWithError(errors.New("put returned"))
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("put of %d bytes with a body one short: %v, want ErrBadRequest", n, err)
			}
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUnknownSizeRange(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	id := newShardID()
	data := randomBytes(5<<20 + 123)
	if _, err := ts.putUnknown(id, data, true); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	bs := ts.blockSize
	for _, r := range [][2]int64{{0, 0}, {size, 0}, {0, size}, {size - 1, 1}, {bs - 1, 2}, {bs, bs}, {1, size - 2}, {size - 200, 200}, {3 << 20, 1 << 20}} {
		got, err := ts.get(id, r[0], r[1])
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("get [%d,+%d): %d bytes, %v", r[0], r[1], len(got), err)
		}
	}
	if _, err := ts.get(id, size-5, 6); !errors.Is(err, ErrBadRequest) {
		t.Errorf("get past the end: %v, want ErrBadRequest", err)
	}
}

func TestUnknownSizeChecked(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	data := randomBytes(300 << 10)
	id := newShardID()
	path := "/v1/shards/" + id
	unknown := map[string]string{HeaderShardSize: "-1"}
	for _, c := range []struct {
		name    string
		hdr     map[string]string
		trailer map[string]string
		want    string
	}{
		{"wrong crc", unknown, map[string]string{HeaderCRC32C: crcHex(data[1:])}, "crc32c mismatch"},
		{"malformed crc", unknown, map[string]string{HeaderCRC32C: "xyz"}, "malformed"},
		{"empty crc", unknown, map[string]string{HeaderCRC32C: ""}, "no " + HeaderCRC32C},
		{"no trailer declared", unknown, map[string]string{}, "needs a chunked body"},
		{"other trailer", unknown, map[string]string{"X-Other": "1"}, "needs a chunked body"},
		{"content-length", unknown, nil, "needs a chunked body"},
		{"below -1", map[string]string{HeaderShardSize: "-2"}, map[string]string{HeaderCRC32C: crcHex(data)}, "out of range"},
	} {
		code, body := ts.rawPut(t, path, bytes.NewReader(data), c.hdr, c.trailer, testSecret)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 %q", c.name, code, body, c.want)
		}
	}

	// A trailer that is declared but never sent.
	req, err := http.NewRequest("PUT", ts.url+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderShardSize, "-1")
	req.ContentLength = -1
	req.Trailer = http.Header{HeaderCRC32C: nil}
	clusterauth.Sign(req, testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "no "+HeaderCRC32C) {
		t.Errorf("declared trailer missing: %s %s, want 400", resp.Status, b)
	}

	ts.awaitNoFiles(t, "rejected puts")
	if _, err := ts.c.Head(context.Background(), ts.addr, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("head after rejected puts: %v, want ErrNotFound", err)
	}
	// The same body with the right trailer is taken, so the rejections
	// above were for what they say.
	code, body := ts.rawPut(t, path, bytes.NewReader(data), unknown, map[string]string{HeaderCRC32C: crcHex(data)}, testSecret)
	if code != 201 {
		t.Fatalf("right trailer: %d %s", code, body)
	}
	ts.checkShard(t, id, data)
}

// TestUnknownSizeDamaged damages a body of unknown length on its way to
// the server: the checksum Client.Put sends must catch it.
func TestUnknownSizeDamaged(t *testing.T) {
	t.Parallel()
	ts := start(t, Config{})
	damage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &flipReader{ReadCloser: r.Body, at: 70000}
		ts.Handler().ServeHTTP(w, r)
	}))
	defer damage.Close()
	data := randomBytes(200 << 10)
	for _, pipe := range []bool{false, true} {
		var body io.Reader = struct{ io.Reader }{bytes.NewReader(data)}
		if pipe {
			pr := pipeBody(data)
			defer pr.Close()
			body = pr
		}
		_, err := ts.c.Put(context.Background(), damage.Listener.Addr().String(), newShardID(), -1, body)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "crc32c mismatch") {
			t.Errorf("damaged body (pipe %v): %v, want a crc32c mismatch", pipe, err)
		}
	}
	ts.awaitNoFiles(t, "damaged puts")
}

// flipReader inverts the byte at offset at.
type flipReader struct {
	io.ReadCloser
	at, pos int64
}

func (r *flipReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if i := r.at - r.pos; i >= 0 && i < int64(n) {
		p[i] ^= 0xff
	}
	r.pos += int64(n)
	return n, err
}

func TestUnknownSizeLimit(t *testing.T) {
	t.Parallel()
	const max = 1 << 20
	ts := start(t, Config{MaxShardSize: max})
	data := randomBytes(16 << 20)
	for _, pipe := range []bool{false, true} {
		for _, n := range []int{max + 1, max + ts.ioSize, 16 << 20} {
			_, err := ts.putUnknown(newShardID(), data[:n], pipe)
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "longer than the shard's limit") {
				t.Errorf("put %d bytes of unknown size (pipe %v) with a %d byte limit: %v, want ErrBadRequest", n, pipe, max, err)
			}
		}
	}
	ts.awaitNoFiles(t, "oversized puts")
	id := newShardID()
	if _, err := ts.putUnknown(id, data[:max], true); err != nil {
		t.Fatalf("put of exactly the largest shard: %v", err)
	}
	ts.checkShard(t, id, data[:max])
}

// TestUnknownSizeSpace checks that a put of unknown size needs room for
// the largest shard, and gives it back.
func TestUnknownSizeSpace(t *testing.T) {
	t.Parallel()
	const max = 1 << 20
	limit := fileSize(max, defaultBlockSize)
	ts := start(t, Config{MaxShardSize: max, DiskLimits: []int64{limit - 1, limit - 1}})
	ctx := context.Background()
	small := randomBytes(1000)
	if _, err := ts.c.Put(ctx, ts.addr, newShardID(), -1, bytes.NewReader(small)); !errors.Is(err, ErrInsufficientStorage) {
		t.Errorf("unknown-size put to disks smaller than the largest shard: %v, want ErrInsufficientStorage", err)
	}
	ts.put(t, newShardID(), small) // with its size it fits

	// Room for one largest shard: each put must give its hold back.
	ts = start(t, Config{MaxShardSize: max, Disks: []string{t.TempDir()}, DiskLimits: []int64{limit + 100}})
	for i := range 3 {
		id := newShardID()
		if _, err := ts.c.Put(ctx, ts.addr, id, -1, bytes.NewReader(small[:i])); err != nil {
			t.Fatalf("unknown-size put %d: %v", i, err)
		}
		ts.checkShard(t, id, small[:i])
	}
	want := fileSize(0, defaultBlockSize) + fileSize(1, defaultBlockSize) + fileSize(2, defaultBlockSize)
	if st := ts.status(t); st.Disks[0].Used != uint64(want) {
		t.Errorf("disk use %d after three tiny shards, want %d", st.Disks[0].Used, want)
	}
}

// TestPutStreamLimit checks that a stream's declared limit is what the disk
// must have room for, and that the stream may not outgrow it.
func TestPutStreamLimit(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Disks: []string{dir}, Secret: []byte("s"), DiskLimits: []int64{4 << 20}, ReserveBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := NewClient([]byte("s"), nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 100<<10)
	// The default reservation (MaxShardSize) does not fit a 4 MiB disk; a
	// 1 MiB limit does.
	if _, err := c.Put(ctx, addr, ShardID(strings.Repeat("a", 32), 0), -1, bytes.NewReader(data)); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("unbounded stream on a small disk: %v", err)
	}
	if _, err := c.PutStream(ctx, addr, ShardID(strings.Repeat("a", 32), 1), 1<<20, bytes.NewReader(data)); err != nil {
		t.Fatalf("bounded stream: %v", err)
	}
	if _, err := c.PutStream(ctx, addr, ShardID(strings.Repeat("a", 32), 2), 50<<10, bytes.NewReader(data)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("stream over its limit: %v", err)
	}
}
