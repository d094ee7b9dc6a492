package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// CreateMultipart starts a multipart upload and returns its ID.
func (c *Client) CreateMultipart(ctx context.Context, bucket, key string, opts PutOptions) (string, error) {
	if err := metaapi.ValidateKey(key); err != nil {
		return "", err
	}
	u, err := c.meta.CreateUpload(ctx, metaapi.Upload{Bucket: bucket, Key: key, ContentType: opts.ContentType, Meta: opts.Meta})
	if err != nil {
		return "", fmt.Errorf("create upload %s/%s: %w", bucket, key, err)
	}
	return u.ID, nil
}

// PartOptions are the optional attributes of a part.
type PartOptions struct {
	// Meta carries per-part attributes (e.g. its checksum).
	Meta map[string]string
	// MD5, if set, is the digest the part must have (Content-MD5).
	MD5 []byte
}

// PutPart stores part number n of an upload from r (size bytes, or -1 if
// unknown). A part is
// always written as segments, never inline, so completing the upload only
// concatenates segment lists.
func (c *Client) PutPart(ctx context.Context, bucket, key, uploadID string, n int, r io.Reader, size int64, opts PartOptions) (metaapi.Part, error) {
	part := metaapi.Part{Number: n, Meta: opts.Meta}
	if n < 1 || n > metaapi.MaxPartNumber {
		return part, fmt.Errorf("%w: part number %d is outside 1..%d", metaapi.ErrInvalidArgument, n, metaapi.MaxPartNumber)
	}
	if _, err := c.meta.Upload(ctx, bucket, key, uploadID); err != nil {
		return part, fmt.Errorf("upload part %d of %s/%s: %w", n, bucket, key, err)
	}
	h := c.md5.New()
	defer h.Close()
	segs, total, err := c.writeSegments(ctx, &hashReader{r: r, h: h}, size)
	if err != nil {
		return part, fmt.Errorf("upload part %d of %s/%s: %w", n, bucket, key, err)
	}
	sum := h.Sum(nil)
	if err := checkMD5(sum, opts.MD5); err != nil {
		c.discard(segs)
		return part, fmt.Errorf("upload part %d of %s/%s: %w", n, bucket, key, err)
	}
	part.Segments, part.Size, part.ETag, part.Modified = segs, total, hex.EncodeToString(sum), time.Now().UTC()
	err = c.meta.CommitPart(ctx, metaapi.PartCommitRequest{Bucket: bucket, Key: key, UploadID: uploadID, Part: part})
	if err != nil {
		if definitive(err) || isNoSuchUpload(err) {
			c.discard(segs)
		}
		return part, fmt.Errorf("upload part %d of %s/%s: commit: %w", n, bucket, key, err)
	}
	return part, nil
}

// CompleteMultipart assembles the listed parts into the object. No data
// moves: the object's segment list is the parts' lists, concatenated.
func (c *Client) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []metaapi.CompletePart, cond metaapi.Preconditions) (metaapi.Object, error) {
	o, err := c.meta.CompleteUpload(ctx, metaapi.CompleteRequest{Bucket: bucket, Key: key, UploadID: uploadID, Parts: parts, Cond: cond})
	if err != nil {
		return o, fmt.Errorf("complete upload of %s/%s: %w", bucket, key, err)
	}
	return o, nil
}

// AbortMultipart discards an upload; its parts are garbage-collected.
func (c *Client) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	if err := c.meta.AbortUpload(ctx, bucket, key, uploadID); err != nil {
		return fmt.Errorf("abort upload of %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Copy creates an object that shares the source's data; no bytes move.
func (c *Client) Copy(ctx context.Context, req metaapi.CopyRequest) (metaapi.Object, error) {
	if err := metaapi.ValidateKey(req.DstKey); err != nil {
		return metaapi.Object{}, err
	}
	o, err := c.meta.Copy(ctx, req)
	if err != nil {
		return o, fmt.Errorf("copy %s/%s to %s/%s: %w", req.SrcBucket, req.SrcKey, req.DstBucket, req.DstKey, err)
	}
	return o, nil
}
