package client

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/meta/metaapi"
)

// PutOptions are the optional attributes of a Put.
type PutOptions struct {
	ContentType string
	// Meta holds user metadata and stored headers (Cache-Control, ...).
	Meta map[string]string
	// Cond makes the write conditional on the current version.
	Cond metaapi.Preconditions
	// MD5, if set, is the digest the body must have (S3's Content-MD5). The
	// client computes MD5 anyway for the ETag, so checking it here costs
	// nothing; a mismatch fails the Put with ErrBadDigest before the commit.
	MD5 []byte
}

// Put stores the object read from r. size is the body length, or -1 if
// unknown: the body is streamed either way, never held whole in memory. The
// object becomes visible only once all of it is durable, replacing any
// previous version atomically; a Put that fails leaves the old version (or
// nothing) in place.
func (c *Client) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (metaapi.Object, error) {
	if err := metaapi.ValidateBucketName(bucket); err != nil {
		return metaapi.Object{}, err
	}
	if err := metaapi.ValidateKey(key); err != nil {
		return metaapi.Object{}, err
	}
	rs, err := c.ringFor(ctx, false)
	if err != nil {
		return metaapi.Object{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	obj := metaapi.Object{Bucket: bucket, Key: key, ContentType: opts.ContentType, Meta: opts.Meta}

	// Small objects go inline into the metadata record: one round trip, no
	// chunk-server files for bodies that would make k+m tiny shards.
	if size >= 0 && size <= rs.InlineMax {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return obj, fmt.Errorf("put %s/%s: read body: %w", bucket, key, sizeErr(err))
		}
		if err := expectEOF(r); err != nil {
			return obj, fmt.Errorf("put %s/%s: %w", bucket, key, err)
		}
		return c.commitInline(ctx, obj, buf, opts)
	}
	br := bufio.NewReaderSize(r, int(max(rs.InlineMax+1, 16<<10)))
	if size < 0 {
		head, err := br.Peek(int(rs.InlineMax) + 1)
		if len(head) <= int(rs.InlineMax) {
			if err != io.EOF {
				return obj, fmt.Errorf("put %s/%s: read body: %w", bucket, key, err)
			}
			return c.commitInline(ctx, obj, append([]byte(nil), head...), opts)
		}
	}
	if _, err := c.meta.Bucket(ctx, bucket); err != nil {
		// Refuse before moving any data, not after writing gigabytes.
		return obj, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}

	h := c.md5.New()
	defer h.Close()
	segs, total, err := c.writeSegments(ctx, &hashReader{r: br, h: h}, size)
	if err != nil {
		return obj, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	obj.Segments, obj.Size = segs, total
	sum := h.Sum(nil)
	if err := checkMD5(sum, opts.MD5); err != nil {
		c.discard(segs)
		return obj, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	obj.ETag = hex.EncodeToString(sum)
	committed, err := c.meta.Commit(ctx, metaapi.CommitRequest{Object: obj, Cond: opts.Cond})
	if err != nil {
		if definitive(err) {
			c.discard(obj.Segments)
		}
		return obj, fmt.Errorf("put %s/%s: commit: %w", bucket, key, err)
	}
	return committed, nil
}

// writeSegments stores r as a sequence of segments. size is r's length, or
// -1 to read to EOF. On error it discards whatever it wrote.
func (c *Client) writeSegments(ctx context.Context, r io.Reader, size int64) ([]metaapi.Segment, int64, error) {
	rs, err := c.ringFor(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	// Peeking for EOF between segments needs a buffered reader; a large
	// Read on an empty bufio.Reader bypasses the buffer, so the data itself
	// is not copied twice.
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 16<<10)
	}
	var segs []metaapi.Segment
	var total int64
	fail := func(err error) ([]metaapi.Segment, int64, error) {
		c.discard(segs)
		return nil, 0, err
	}
	for {
		if size >= 0 && total == size {
			if err := expectEOF(br); err != nil {
				return fail(err)
			}
			return segs, total, nil
		}
		if _, err := br.Peek(1); err == io.EOF {
			if size >= 0 {
				return fail(fmt.Errorf("%w: body ended after %d of %d bytes", ErrSizeMismatch, total, size))
			}
			return segs, total, nil
		} else if err != nil {
			return fail(fmt.Errorf("read body: %w", err))
		}
		segMax := rs.SegmentSize
		segSize := int64(-1)
		if size >= 0 {
			segSize = min(size-total, segMax)
			segMax = segSize
		}
		seg, err := c.writeSegment(ctx, rs, io.LimitReader(br, segMax), segSize)
		if err != nil {
			return fail(err)
		}
		segs = append(segs, seg)
		total += seg.Size
		if size < 0 && seg.Size < segMax {
			return segs, total, nil
		}
	}
}

func (c *Client) commitInline(ctx context.Context, obj metaapi.Object, data []byte, opts PutOptions) (metaapi.Object, error) {
	digest := md5.Sum(data)
	sum := digest[:]
	if err := checkMD5(sum, opts.MD5); err != nil {
		return obj, fmt.Errorf("put %s/%s: %w", obj.Bucket, obj.Key, err)
	}
	obj.Inline, obj.Size, obj.ETag = data, int64(len(data)), hex.EncodeToString(sum)
	o, err := c.meta.Commit(ctx, metaapi.CommitRequest{Object: obj, Cond: opts.Cond})
	if err != nil {
		return o, fmt.Errorf("put %s/%s: commit: %w", obj.Bucket, obj.Key, err)
	}
	return o, nil
}

// writeSegment erasure-codes the next segment of the body onto k+m chunk
// servers, streaming each shard as it is produced. size is the segment's
// length if known, else -1 (it then ends where r does).
func (c *Client) writeSegment(ctx context.Context, rs *ringState, r io.Reader, size int64) (metaapi.Segment, error) {
	layout := erasure.Layout{K: rs.K, M: rs.M, BlockSize: rs.BlockSize}
	seg := metaapi.Segment{ID: newSegmentID(), K: rs.K, M: rs.M, BlockSize: rs.BlockSize, Shards: make([]metaapi.ShardLoc, rs.K+rs.M)}
	nodes, err := rs.place.Fill(seg.ID, rs.K+rs.M, nil, rs.down)
	if err != nil {
		c.ringFor(ctx, true)
		return seg, fmt.Errorf("place segment %s: %w: %v", seg.ID, metaapi.ErrNotEnoughServers, err)
	}
	shardSize := int64(-1)
	if size >= 0 {
		shardSize = layout.ShardSize(size)
	}

	// Cancelling wctx aborts every shard upload still streaming.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(nodes)
	hands := make([]*handoff, n)
	writers := make([]io.Writer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range nodes {
		hand := newHandoff()
		hands[i], writers[i] = hand, hand
		seg.Shards[i].Node = id
		addr := rs.nodes[id].Addr
		wg.Add(1)
		go func() {
			defer wg.Done()
			var disk string
			var err error
			if shardSize >= 0 {
				disk, err = c.chunks.Put(wctx, addr, chunkserver.ShardID(seg.ID, i), shardSize, hand)
			} else {
				disk, err = c.chunks.PutStream(wctx, addr, chunkserver.ShardID(seg.ID, i), layout.ShardSize(rs.SegmentSize), hand)
			}
			// Unblock the encoder if the server gave up early.
			hand.CloseRead(fmt.Errorf("shard %d on %s: %w", i, id, errOrClosed(err)))
			seg.Shards[i].Disk, errs[i] = disk, err
		}()
	}
	// Up to m-1 servers may fail mid-write: the segment still has k+1 shards,
	// one more than it needs to be read, and the missing ones are reported
	// for repair.
	maxFail := rs.M - 1
	if maxFail == 0 {
		maxFail = -1 // erasure reads 0 as "M"
	}
	ew, err := erasure.NewWriter(layout, writers, erasure.WriterOptions{MaxFailures: maxFail})
	if err == nil {
		seg.Size, err = ew.ReadFrom(r)
		if cerr := ew.Close(); err == nil {
			err = cerr
		}
		if err == nil && size >= 0 && seg.Size != size {
			err = fmt.Errorf("%w: segment got %d of %d bytes", ErrSizeMismatch, seg.Size, size)
		}
	}
	if err != nil {
		cancel()
	}
	for i, hand := range hands {
		if err != nil {
			hand.CloseWrite(err)
		} else {
			hand.CloseWrite(ew.ShardErrors()[i])
		}
	}
	wg.Wait()
	if err != nil {
		c.discard([]metaapi.Segment{seg})
		return seg, fmt.Errorf("write segment %s: %w", seg.ID, err)
	}
	var bad []metaapi.BadShard
	var firstErr error
	for i, e := range errs {
		if e != nil {
			bad = append(bad, metaapi.BadShard{Segment: seg.ID, Index: i, Node: seg.Shards[i].Node, Reason: "write failed: " + e.Error()})
			firstErr = cmp.Or(firstErr, e)
		}
	}
	if len(bad) > rs.M-1 {
		c.discard([]metaapi.Segment{seg})
		return seg, fmt.Errorf("write segment %s: %d of %d shard writes failed, first: %w", seg.ID, len(bad), n, firstErr)
	}
	for _, b := range bad {
		seg.Shards[b.Index] = metaapi.ShardLoc{}
	}
	if len(bad) > 0 {
		c.ringFor(ctx, true)
		c.report(bad)
	}
	return seg, nil
}

// discard deletes the shards of segments that will never be committed. It
// runs in the background: a failed Put should not wait for the cleanup, and
// whatever it misses the orphan sweep finds later.
func (c *Client) discard(segs []metaapi.Segment) {
	segs = append([]metaapi.Segment(nil), segs...)
	c.mu.Lock()
	rs := c.ring
	c.mu.Unlock()
	if rs == nil || len(segs) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, seg := range segs {
			for i, loc := range seg.Shards {
				if n, ok := rs.nodes[loc.Node]; ok {
					c.chunks.Delete(ctx, n.Addr, chunkserver.ShardID(seg.ID, i))
				}
			}
		}
	}()
}

// report sends bad-shard reports in the background.
func (c *Client) report(bad []metaapi.BadShard) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.meta.ReportBadShards(ctx, bad); err != nil {
			c.log.Warn("report bad shards", "count", len(bad), "err", err)
		}
	}()
}

// checkMD5 compares a body's digest with the one its sender declared.
func checkMD5(got, want []byte) error {
	if want != nil && !bytes.Equal(got, want) {
		return fmt.Errorf("%w: body has MD5 %x, sender declared %x", ErrBadDigest, got, want)
	}
	return nil
}

func isNoSuchUpload(err error) bool { return errors.Is(err, metaapi.ErrNoSuchUpload) }

// definitive reports whether a commit error proves the commit did not happen;
// after a lost answer it may have, and the shards must then stay.
func definitive(err error) bool {
	for _, e := range []error{metaapi.ErrNoSuchBucket, metaapi.ErrPrecondition, metaapi.ErrInvalidArgument, metaapi.ErrInvalidName, metaapi.ErrConflict} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func errOrClosed(err error) error {
	if err == nil {
		return errors.New("upload ended")
	}
	return err
}

func sizeErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: body ended early", ErrSizeMismatch)
	}
	return err
}

func expectEOF(r io.Reader) error {
	var b [1]byte
	n, err := r.Read(b[:])
	for n == 0 && err == nil {
		n, err = r.Read(b[:])
	}
	if n > 0 {
		return fmt.Errorf("%w: body is longer than declared", ErrSizeMismatch)
	}
	if err != io.EOF {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

type hashReader struct {
	r io.Reader
	h hash.Hash
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}
