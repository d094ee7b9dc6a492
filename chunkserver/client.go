package chunkserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talusfs/talus/internal/clusterauth"
)

// A Client talks to chunk servers. It is safe for concurrent use; share
// one per process so connections are reused.
type Client struct {
	hc     *http.Client
	secret []byte
	bufs   sync.Pool // *[]byte of clientBufSize
}

// clientBufSize is how much of a PUT body goes out per HTTP chunk (and
// write(2)); net/http would otherwise send 32 KiB chunks.
const clientBufSize = 256 << 10

// NewClient returns a client that signs its requests with secret. If hc
// is nil it uses a transport tuned for bulk transfer between cluster
// nodes: many idle connections per server, no compression, no proxy, and
// a 64 KiB read buffer per connection so that small reads of a GET body
// still make large read(2)s. (The write buffer stays at 4 KiB: PUT bodies
// go out in 256 KiB pieces, which a larger buffer would only copy.)
// Requests have no timeout of their own; bound them with the context.
func NewClient(secret []byte, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			// Small, so that the shard reads (a block or more) go
			// straight into the caller's buffer: a read smaller than
			// this buffer fills it and is copied out, and with 64 KiB
			// that was most of the blocks of a large GET after a short
			// read (BenchmarkGet64MiB in client/: 10-25% less CPU).
			ReadBufferSize: 8 << 10,
		}}
	}
	c := &Client{hc: hc, secret: secret}
	c.bufs.New = func() any { b := make([]byte, clientBufSize); return &b }
	return c
}

func shardURL(addr, id string) string {
	return "http://" + addr + "/v1/shards/" + id
}

func (c *Client) newRequest(ctx context.Context, method, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	clusterauth.Sign(req, c.secret)
	return req, nil
}

// Put stores size bytes read from body as shard id on the chunk server at
// addr and returns the id of the disk it went to. It streams the body,
// sending its CRC32C as a trailer so the server rejects anything that got
// damaged on the way. Put does not close body, and does not return before
// it has stopped reading it.
//
// A negative size means the length is unknown: the shard is whatever body
// yields before io.EOF, up to the server's largest shard size. The server
// then holds room for its largest shard until the body ends (see
// Server.Handler), so pass the size when it is known. A body with a
// ShardBody method is sent with its WriteTo, from the slices it writes
// (see streamWriterTo). If body is a pipe,
// close it with an error once Put returns, so that its writer does not
// block on a Put that failed early.
func (c *Client) Put(ctx context.Context, addr, id string, size int64, body io.Reader) (disk string, err error) {
	return c.put(ctx, addr, id, size, 0, body)
}

// PutStream stores a shard of unknown length, at most limit bytes, read from
// body until EOF. The limit lets the server reserve only that much space.
func (c *Client) PutStream(ctx context.Context, addr, id string, limit int64, body io.Reader) (disk string, err error) {
	return c.put(ctx, addr, id, unknownSize, limit, body)
}

func (c *Client) put(ctx context.Context, addr, id string, size, limit int64, body io.Reader) (disk string, err error) {
	defer annotate(&err, "put", id, addr)
	if !ValidShardID(id) {
		return "", fmt.Errorf("%w: invalid shard id", ErrBadRequest)
	}
	size = max(size, unknownSize)
	pb := &putBody{c: c, r: body, remaining: size, closed: make(chan struct{})}
	pb.trailer = http.Header{HeaderCRC32C: nil}
	req, err := c.newRequest(ctx, http.MethodPut, shardURL(addr, id))
	if err != nil {
		return "", err
	}
	req.Header.Set(HeaderShardSize, strconv.FormatInt(size, 10))
	if size < 0 && limit > 0 {
		req.Header.Set(HeaderShardMax, strconv.FormatInt(limit, 10))
	}
	req.Body = pb
	req.ContentLength = -1 // chunked, which is what carries trailers
	req.Trailer = pb.trailer
	resp, err := c.hc.Do(req)
	// The transport may still be reading body in another goroutine (when
	// the server answered early); stop it and wait, so the caller can reuse
	// whatever backs body as soon as we return.
	pb.abandoned.Store(true)
	<-pb.closed
	if pb.err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return "", pb.err
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", statusError(resp)
	}
	var out struct{ Disk string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&out); err != nil {
		return "", fmt.Errorf("decode answer: %w", err)
	}
	return out.Disk, nil
}

// putBody is a PUT request body: it sends exactly size bytes of r, or
// all of r if the size is unknown, and sets the CRC32C trailer when done.
type putBody struct {
	c         *Client
	r         io.Reader
	remaining int64 // unknownSize: send r to its EOF
	crc       uint32
	trailer   http.Header
	err       error // a problem with the caller's reader
	abandoned atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
}

func (b *putBody) Read(p []byte) (int, error) {
	if b.abandoned.Load() {
		return 0, errors.New("request finished")
	}
	if b.remaining == 0 {
		b.finish()
		return 0, io.EOF
	}
	if b.remaining > 0 && int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	b.crc = crc32.Update(b.crc, castagnoli, p[:n])
	if b.remaining == unknownSize {
		switch {
		case err == io.EOF:
			b.finish()
		case err != nil:
			b.err = fmt.Errorf("read body: %w", err)
			return n, b.err
		}
		return n, err
	}
	b.remaining -= int64(n)
	if err == io.EOF && b.remaining > 0 {
		return n, b.short()
	}
	if err != nil && err != io.EOF {
		b.err = fmt.Errorf("read body: %w", err)
		return n, b.err
	}
	if b.remaining == 0 {
		b.finish()
		return n, io.EOF
	}
	return n, nil
}

// WriteTo lets net/http's body copy hand us the connection, so the body
// goes out in clientBufSize chunks, or, from an in-memory reader of
// exactly the right length or a shard hand-off, straight from the
// caller's memory.
func (b *putBody) WriteTo(w io.Writer) (int64, error) {
	if r, ok := b.r.(streamWriterTo); ok {
		return b.writeFrom(r, w)
	}
	if b.remaining == unknownSize {
		return b.writeAll(w)
	}
	if r, ok := b.r.(interface {
		io.WriterTo
		Len() int
	}); ok && int64(r.Len()) == b.remaining {
		return b.writeFrom(r, w)
	}
	bp := b.c.bufs.Get().(*[]byte)
	defer b.c.bufs.Put(bp)
	buf := *bp
	var total int64
	for b.remaining > 0 {
		if b.abandoned.Load() {
			return total, errors.New("request finished")
		}
		n := int(min(int64(len(buf)), b.remaining))
		m, err := io.ReadFull(b.r, buf[:n])
		b.remaining -= int64(m)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, b.short()
		}
		if err != nil {
			b.err = fmt.Errorf("read body: %w", err)
			return total, b.err
		}
		b.crc = crc32.Update(b.crc, castagnoli, buf[:n])
		k, err := w.Write(buf[:n])
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
	b.finish()
	return total, nil
}

// writeFrom sends the body by letting r write itself to w through a
// crcWriter, from memory r keeps unchanged until each write returns.
func (b *putBody) writeFrom(r io.WriterTo, w io.Writer) (int64, error) {
	cw := &crcWriter{w: w, b: b}
	n, err := r.WriteTo(cw)
	if err != nil {
		if cw.err == nil && !b.abandoned.Load() {
			// Not the connection's failure: the body's.
			b.err = fmt.Errorf("read body: %w", err)
		}
		return n, err
	}
	if b.remaining > 0 {
		return n, b.short()
	}
	b.finish()
	return n, nil
}

// writeAll sends all of a body of unknown length in clientBufSize
// chunks, however small the pieces its reader (a pipe, say) returns.
func (b *putBody) writeAll(w io.Writer) (int64, error) {
	bp := b.c.bufs.Get().(*[]byte)
	defer b.c.bufs.Put(bp)
	buf := *bp
	var total int64
	for {
		if b.abandoned.Load() {
			return total, errors.New("request finished")
		}
		n, err := io.ReadFull(b.r, buf)
		end := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !end {
			b.err = fmt.Errorf("read body: %w", err)
			return total, b.err
		}
		if n > 0 {
			b.crc = crc32.Update(b.crc, castagnoli, buf[:n])
			k, err := w.Write(buf[:n])
			total += int64(k)
			if err != nil {
				return total, err
			}
		}
		if end {
			b.finish()
			return total, nil
		}
	}
}

// A streamWriterTo is a body that writes itself, to its end, with WriteTo
// and keeps every slice it writes unchanged until the write returns (as
// the native client's shard hand-off does). Marking the method keeps
// readers that merely happen to have a WriteTo (a bufio.Reader would
// write past the shard) on the copying path.
type streamWriterTo interface {
	io.WriterTo
	ShardBody()
}

// crcWriter checksums what a body writes through it.
type crcWriter struct {
	w   io.Writer
	b   *putBody
	err error // why a write failed
}

func (cw *crcWriter) Write(p []byte) (int, error) {
	if cw.b.remaining != unknownSize && int64(len(p)) > cw.b.remaining {
		cw.err = fmt.Errorf("%w: body longer than its size", ErrBadRequest)
		return 0, cw.err
	}
	// Checksum and send piece by piece, so each piece is still in the CPU
	// cache when the kernel copies it: over a whole 16 MiB slice the
	// checksum alone would run at memory speed.
	var total int
	for len(p) > 0 {
		if cw.b.abandoned.Load() {
			cw.err = errors.New("request finished")
			return total, cw.err
		}
		piece := p[:min(len(p), clientBufSize)]
		cw.b.crc = crc32.Update(cw.b.crc, castagnoli, piece)
		n, err := cw.w.Write(piece)
		total += n
		if cw.b.remaining != unknownSize {
			cw.b.remaining -= int64(n)
		}
		if err != nil {
			cw.err = err
			return total, err
		}
		p = p[n:]
	}
	return total, nil
}

func (b *putBody) short() error {
	b.err = fmt.Errorf("%w: body ended %d bytes before the given size", ErrBadRequest, b.remaining)
	return b.err
}

func (b *putBody) finish() {
	var v [8]byte
	b.trailer.Set(HeaderCRC32C, string(hexCRC(v[:0], b.crc)))
}

func hexCRC(dst []byte, c uint32) []byte {
	const digits = "0123456789abcdef"
	for i := 28; i >= 0; i -= 4 {
		dst = append(dst, digits[c>>uint(i)&0xf])
	}
	return dst
}

func (b *putBody) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}

// Get reads n bytes of shard id from offset off (n < 0: to the end). The
// returned reader fails, rather than returning io.EOF, if the server
// stops before n bytes, as it does when it finds a corrupt block midway;
// a corrupt first block fails Get itself with ErrCorrupt.
func (c *Client) Get(ctx context.Context, addr, id string, off, n int64) (_ io.ReadCloser, err error) {
	defer annotate(&err, "get", id, addr)
	if !ValidShardID(id) {
		return nil, fmt.Errorf("%w: invalid shard id", ErrBadRequest)
	}
	if off < 0 {
		return nil, fmt.Errorf("%w: negative offset", ErrBadRequest)
	}
	u := shardURL(addr, id)
	if off > 0 || n >= 0 {
		u += "?offset=" + strconv.FormatInt(off, 10)
		if n >= 0 {
			u += "&length=" + strconv.FormatInt(n, 10)
		}
	}
	req, err := c.newRequest(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	if n < 0 {
		n = resp.ContentLength
	}
	if resp.ContentLength != n || n < 0 {
		resp.Body.Close()
		return nil, fmt.Errorf("server sent %d bytes, want %d", resp.ContentLength, n)
	}
	return &getBody{rc: resp.Body, remaining: n, id: id, addr: addr}, nil
}

type getBody struct {
	rc        io.ReadCloser
	remaining int64
	id, addr  string
}

func (b *getBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF && b.remaining == 0:
		return n, io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("get shard %s on %s: %w (%d bytes missing)", b.id, b.addr, err, b.remaining)
}

func (b *getBody) Close() error { return b.rc.Close() }

// Head returns the size of shard id.
func (c *Client) Head(ctx context.Context, addr, id string) (size int64, err error) {
	defer annotate(&err, "head", id, addr)
	if !ValidShardID(id) {
		return 0, fmt.Errorf("%w: invalid shard id", ErrBadRequest)
	}
	req, err := c.newRequest(ctx, http.MethodHead, shardURL(addr, id))
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(resp)
	}
	size, err = strconv.ParseInt(resp.Header.Get(HeaderShardSize), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed %s header", HeaderShardSize)
	}
	return size, nil
}

// Delete removes shard id. Deleting a shard that is not there succeeds.
func (c *Client) Delete(ctx context.Context, addr, id string) (err error) {
	defer annotate(&err, "delete", id, addr)
	if !ValidShardID(id) {
		return fmt.Errorf("%w: invalid shard id", ErrBadRequest)
	}
	req, err := c.newRequest(ctx, http.MethodDelete, shardURL(addr, id))
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return statusError(resp)
	}
	return nil
}

// Inventory calls fn for every shard stored on the chunk server at addr,
// stopping at fn's first error. It fails if the listing ends early.
func (c *Client) Inventory(ctx context.Context, addr string, fn func(ShardInfo) error) (err error) {
	defer annotate(&err, "inventory of", "", addr)
	req, err := c.newRequest(ctx, http.MethodGet, "http://"+addr+"/v1/inventory")
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var si ShardInfo
		if err := dec.Decode(&si); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := fn(si); err != nil {
			return err
		}
	}
}

// Status returns the status of the chunk server at addr.
func (c *Client) Status(ctx context.Context, addr string) (st Status, err error) {
	defer annotate(&err, "status of", "", addr)
	req, err := c.newRequest(ctx, http.MethodGet, "http://"+addr+"/v1/status")
	if err != nil {
		return Status{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, statusError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("decode: %w", err)
	}
	return st, nil
}

// Scrub asks the chunk server at addr to start a scrub pass now (see
// Server.Scrub); the pass is done once ScrubStatus reports Completed >=
// the returned Requested.
func (c *Client) Scrub(ctx context.Context, addr string) (ScrubStatus, error) {
	return c.scrub(ctx, http.MethodPost, addr)
}

// ScrubStatus returns the scrub progress of the chunk server at addr.
func (c *Client) ScrubStatus(ctx context.Context, addr string) (ScrubStatus, error) {
	return c.scrub(ctx, http.MethodGet, addr)
}

func (c *Client) scrub(ctx context.Context, method, addr string) (st ScrubStatus, err error) {
	defer annotate(&err, "scrub", "", addr)
	req, err := c.newRequest(ctx, method, "http://"+addr+"/v1/scrub")
	if err != nil {
		return ScrubStatus{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return ScrubStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return ScrubStatus{}, statusError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return ScrubStatus{}, fmt.Errorf("decode: %w", err)
	}
	return st, nil
}

// statusError turns an error answer into an error wrapping the matching
// sentinel, with the server's message.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var e struct{ Error string }
	msg := string(body)
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	var kind error
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestedRangeNotSatisfiable:
		kind = ErrBadRequest
	case http.StatusUnauthorized:
		kind = clusterauth.ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusInsufficientStorage:
		return ErrInsufficientStorage
	case http.StatusInternalServerError:
		if resp.Header.Get(HeaderError) == "corrupt" {
			kind = ErrCorrupt
		}
	}
	if kind == nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	return fmt.Errorf("%w (HTTP %d: %s)", kind, resp.StatusCode, msg)
}

// annotate prefixes a non-nil *errp with what was being done, and where.
func annotate(errp *error, op, id, addr string) {
	switch {
	case *errp == nil:
	case id == "":
		*errp = fmt.Errorf("%s %s: %w", op, addr, *errp)
	default:
		*errp = fmt.Errorf("%s shard %s on %s: %w", op, id, addr, *errp)
	}
}
