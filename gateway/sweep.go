package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// Run does the gateway's background work until ctx is done: it aborts
// multipart uploads left unfinished for longer than Config.MultipartExpiry,
// whose parts would otherwise hold space forever. Gateways sharing a
// cluster may all run it; they start at random offsets, and an upload
// aborted twice is no harm.
func (g *Gateway) Run(ctx context.Context) {
	every := sweepInterval(g.cfg.MultipartExpiry)
	wait := rand.N(every) + time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n, err := g.sweepUploads(ctx, time.Now().Add(-g.cfg.MultipartExpiry))
		if err != nil && ctx.Err() == nil {
			g.log.Warn("sweep of abandoned multipart uploads failed", "aborted", n, "err", err)
		} else if n > 0 {
			g.log.Info("aborted abandoned multipart uploads", "count", n, "older than", g.cfg.MultipartExpiry)
		}
		wait = every
	}
}

// sweepInterval is how often Run looks for abandoned uploads.
func sweepInterval(expiry time.Duration) time.Duration {
	return min(max(expiry/4, 100*time.Millisecond), time.Hour)
}

// sweepUploads aborts every upload initiated before cutoff and reports how
// many it aborted.
func (g *Gateway) sweepUploads(ctx context.Context, cutoff time.Time) (int, error) {
	buckets, err := g.meta.Buckets(ctx)
	if err != nil {
		return 0, fmt.Errorf("list buckets: %w", err)
	}
	aborted := 0
	var errs []error
	for _, b := range buckets {
		req := metaapi.UploadListRequest{Bucket: b.Name, Max: maxListUploads}
		for {
			page, err := g.meta.Uploads(ctx, req)
			if err != nil {
				if !errors.Is(err, metaapi.ErrNoSuchBucket) {
					errs = append(errs, fmt.Errorf("list uploads of %s: %w", b.Name, err))
				}
				break
			}
			for _, u := range page.Uploads {
				if !u.Initiated.Before(cutoff) {
					continue
				}
				err := g.meta.AbortUpload(ctx, u.Bucket, u.Key, u.ID)
				switch {
				case err == nil:
					aborted++
				case !errors.Is(err, metaapi.ErrNoSuchUpload):
					errs = append(errs, fmt.Errorf("abort upload %s of %s/%s: %w", u.ID, u.Bucket, u.Key, err))
				}
			}
			if !page.Truncated || ctx.Err() != nil {
				break
			}
			req.KeyMarker, req.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
		}
		if ctx.Err() != nil {
			return aborted, ctx.Err()
		}
	}
	return aborted, errors.Join(errs...)
}
