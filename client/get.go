package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/meta/metaapi"
)

// Head returns an object's record.
func (c *Client) Head(ctx context.Context, bucket, key string) (metaapi.Object, error) {
	o, err := c.meta.Object(ctx, bucket, key)
	if err != nil {
		return o, fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	o.Inline = nil
	return o, nil
}

// Delete removes an object; its shards are garbage-collected.
func (c *Client) Delete(ctx context.Context, bucket, key string) error {
	if err := c.meta.DeleteObject(ctx, bucket, key, metaapi.Preconditions{}); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// List returns one page of a bucket's keys.
func (c *Client) List(ctx context.Context, req metaapi.ListRequest) (metaapi.ListResult, error) {
	res, err := c.meta.List(ctx, req)
	if err != nil {
		return res, fmt.Errorf("list %s: %w", req.Bucket, err)
	}
	return res, nil
}

// Get opens bytes [off, off+n) of an object; n < 0 reads to the end. The
// returned Reader holds the object's record in Info.
func (c *Client) Get(ctx context.Context, bucket, key string, off, n int64) (*Reader, error) {
	o, err := c.meta.Object(ctx, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return c.Open(ctx, o, off, n)
}

// Open reads bytes [off, off+n) of an object whose record the caller already
// holds (n < 0: to the end).
func (c *Client) Open(ctx context.Context, o metaapi.Object, off, n int64) (*Reader, error) {
	if n < 0 {
		n = o.Size - off
	}
	if off < 0 || off > o.Size || n < 0 || off+n > o.Size {
		return nil, fmt.Errorf("get %s/%s bytes %d+%d of %d: %w", o.Bucket, o.Key, off, n, o.Size, ErrInvalidRange)
	}
	r := &Reader{Info: o, c: c, ctx: ctx, off: off, end: off + n}
	if len(o.Segments) == 0 {
		r.cur = io.NopCloser(bytes.NewReader(o.Inline[off : off+n]))
		r.off = r.end
	}
	return r, nil
}

// Reader streams an object's bytes, one segment at a time.
type Reader struct {
	// Info is the object's record as of the open.
	Info metaapi.Object

	c        *Client
	ctx      context.Context
	off, end int64 // object bytes not yet handed to a segment reader
	cur      io.ReadCloser
	err      error
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.cur == nil {
			if r.off >= r.end {
				return 0, io.EOF
			}
			if r.err = r.next(); r.err != nil {
				return 0, r.err
			}
		}
		n, err := r.cur.Read(p)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		if err != nil {
			r.err = fmt.Errorf("read %s/%s: %w", r.Info.Bucket, r.Info.Key, err)
			return n, r.err
		}
		return n, nil
	}
}

// WriteTo implements io.WriterTo, letting each segment reader write straight
// into w without an intermediate buffer.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.err != nil {
			return total, r.err
		}
		if r.cur == nil {
			if r.off >= r.end {
				return total, nil
			}
			if r.err = r.next(); r.err != nil {
				return total, r.err
			}
		}
		n, err := io.Copy(w, r.cur)
		total += n
		r.cur.Close()
		r.cur = nil
		if err != nil {
			r.err = fmt.Errorf("read %s/%s: %w", r.Info.Bucket, r.Info.Key, err)
			return total, r.err
		}
	}
}

// Close releases the reader.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	if r.err == nil {
		r.err = errors.New("reader closed")
	}
	return nil
}

// next opens the segment holding r.off.
func (r *Reader) next() error {
	var start int64
	for _, seg := range r.Info.Segments {
		if r.off >= start+seg.Size {
			start += seg.Size
			continue
		}
		segOff := r.off - start
		n := min(seg.Size-segOff, r.end-r.off)
		sr, err := r.c.openSegment(r.ctx, seg, segOff, n)
		if err != nil {
			return err
		}
		r.cur = sr
		r.off += n
		return nil
	}
	return fmt.Errorf("offset %d is past the object's segments", r.off)
}

// openSegment reads bytes [off, off+n) of a segment, reconstructing from
// parity around shards that are missing, slow or corrupt.
func (c *Client) openSegment(ctx context.Context, seg metaapi.Segment, off, n int64) (io.ReadCloser, error) {
	rs, err := c.ringFor(ctx, false)
	if err != nil {
		return nil, err
	}
	layout := erasure.Layout{K: seg.K, M: seg.M, BlockSize: seg.BlockSize}
	open := func(ctx context.Context, idx int, off, n int64) (io.ReadCloser, error) {
		loc := seg.Shards[idx]
		node, ok := rs.nodes[loc.Node]
		switch {
		case loc.Node == "":
			return nil, fmt.Errorf("shard %d of segment %s: %w", idx, seg.ID, errShardMissing)
		case !ok:
			return nil, fmt.Errorf("shard %d of segment %s: node %s unknown: %w", idx, seg.ID, loc.Node, errShardMissing)
		case node.State != metaapi.NodeUp && node.State != metaapi.NodeDraining:
			return nil, fmt.Errorf("shard %d of segment %s: node %s is %s: %w", idx, seg.ID, loc.Node, node.State, errShardMissing)
		}
		return c.chunks.Get(ctx, node.Addr, chunkserver.ShardID(seg.ID, idx), off, n)
	}
	onBad := func(idx int, err error) {
		// Shards known to be missing and reads the caller cancelled are no
		// news to repair.
		if ctx.Err() != nil || errors.Is(err, errShardMissing) || errors.Is(err, context.Canceled) {
			return
		}
		reason := err.Error()
		if errors.Is(err, chunkserver.ErrCorrupt) {
			reason = "corrupt: " + reason
		}
		c.report([]metaapi.BadShard{{Segment: seg.ID, Index: idx, Node: seg.Shards[idx].Node, Reason: strings.TrimSpace(reason)}})
	}
	r, err := erasure.NewReader(ctx, layout, seg.Size, off, n, open, erasure.ReaderOptions{OnBadShard: onBad, ShardTimeout: c.cfg.ShardTimeout})
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", seg.ID, err)
	}
	return r, nil
}

var errShardMissing = errors.New("shard not available")
