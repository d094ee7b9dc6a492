package bench

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// Native is a Target that talks to a talus cluster through the native
// client, with no S3 gateway in between.
type Native struct {
	c    *client.Client
	name string
}

// NewNative returns a Target of the cluster c is a client of; name
// describes it in reports (the metadata address, say).
func NewNative(c *client.Client, name string) *Native {
	return &Native{c: c, name: name}
}

func (n *Native) String() string { return "talus " + n.name }

// BucketExists implements Target.
func (n *Native) BucketExists(ctx context.Context, bucket string) (bool, error) {
	_, err := n.c.Meta().Bucket(ctx, bucket)
	switch {
	case errors.Is(err, metaapi.ErrNoSuchBucket):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up bucket %s: %w", bucket, err)
	}
	return true, nil
}

// CreateBucket implements Target.
func (n *Native) CreateBucket(ctx context.Context, bucket string) error {
	if err := n.c.Meta().CreateBucket(ctx, metaapi.Bucket{Name: bucket}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// DeleteBucket implements Target.
func (n *Native) DeleteBucket(ctx context.Context, bucket string) error {
	if err := n.c.Meta().DeleteBucket(ctx, bucket); err != nil {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return nil
}

// Put implements Target.
func (n *Native) Put(ctx context.Context, bucket, key string, body io.Reader, size int64) error {
	_, err := n.c.Put(ctx, bucket, key, body, size, client.PutOptions{})
	return err
}

// Get implements Target.
func (n *Native) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	r, err := n.c.Get(ctx, bucket, key, 0, -1)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Stat implements Target.
func (n *Native) Stat(ctx context.Context, bucket, key string) (int64, error) {
	o, err := n.c.Head(ctx, bucket, key)
	return o.Size, err
}

// Delete implements Target.
func (n *Native) Delete(ctx context.Context, bucket, key string) error {
	return n.c.Delete(ctx, bucket, key)
}

// List implements Target.
func (n *Native) List(ctx context.Context, bucket, prefix, after string, max int) ([]string, bool, error) {
	res, err := n.c.List(ctx, metaapi.ListRequest{Bucket: bucket, Prefix: prefix, After: after, Max: max})
	if err != nil {
		return nil, false, err
	}
	keys := make([]string, len(res.Objects))
	for i, o := range res.Objects {
		keys[i] = o.Key
	}
	return keys, res.Truncated, nil
}
