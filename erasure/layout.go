package erasure

import (
	"errors"
	"fmt"
)

// DefaultBlockSize is the per-shard block size talus uses unless a storage
// class says otherwise; a 4+2 stripe then carries 256 KiB of data.
//
// Block size does not change how many requests reach the chunk servers (a
// shard of a segment is one stream); it sets how much memory is in flight
// and how well it stays in cache. Measured with bench_test.go (2-core Xeon
// with GFNI, 2 MiB L2 per core), the streaming Writer costs least CPU per
// byte with 64 to 128 KiB blocks: 4+2 encodes 14 to 19 GB per CPU-second
// across runs, against 10 to 12 at 256 KiB and 8.5 to 10 at 1 MiB, because
// the few stripes it keeps in flight ((K+M)*BlockSize each, up to 4) stay
// in L2, where Encode runs faster than memory. The Reader is dominated by
// copying shard bytes and varies by about 10% over the same range. Between
// 64 and 128 KiB the difference is within run-to-run noise; 64 KiB halves
// the memory in flight, bounds what a degraded read fetches beyond its
// range (up to one block per shard), and matches the chunk servers'
// checksum block.
const DefaultBlockSize = 64 << 10

// MaxBlockSize bounds Layout.BlockSize. It keeps a Writer's stripe buffers
// (K+M)*BlockSize bytes each, up to 4 of them, within reason.
const MaxBlockSize = 16 << 20

// MaxShards is the largest K+M that the GF(2^8) Reed-Solomon code supports.
const MaxShards = 256

var (
	// ErrInvalidLayout is returned for a Layout that fails Validate.
	ErrInvalidLayout = errors.New("erasure: invalid layout")
	// ErrTooManyFailures is returned by a Writer once more shard writers
	// have failed than its WriterOptions.MaxFailures allows.
	ErrTooManyFailures = errors.New("erasure: too many shard write failures")
	// ErrTooFewShards is returned when fewer than K shards of a segment can
	// be read, so its data cannot be recovered.
	ErrTooFewShards = errors.New("erasure: too few readable shards")
	// ErrRange is returned for a byte range outside the segment.
	ErrRange = errors.New("erasure: range out of bounds")
	// ErrShardTimeout is what ReaderOptions.OnBadShard receives (wrapped)
	// for a shard that delivered nothing for ReaderOptions.ShardTimeout.
	ErrShardTimeout = errors.New("erasure: shard timed out")
	// ErrClosed is returned by a Writer or Reader used after Close.
	ErrClosed = errors.New("erasure: use after close")
)

// Layout fixes how a segment is striped: K data shards, M parity shards, and
// BlockSize bytes of each shard per stripe. Every shard of a segment is
// written and read with the same Layout, so it is recorded with the segment.
type Layout struct {
	K, M      int // data and parity shards
	BlockSize int // bytes of each shard per full stripe
}

// Validate reports whether l can be used.
func (l Layout) Validate() error {
	switch {
	case l.K < 1:
		return fmt.Errorf("%w: %d data shards, need at least 1", ErrInvalidLayout, l.K)
	case l.M < 0:
		return fmt.Errorf("%w: %d parity shards", ErrInvalidLayout, l.M)
	case l.K+l.M > MaxShards:
		return fmt.Errorf("%w: %d+%d shards, at most %d in all", ErrInvalidLayout, l.K, l.M, MaxShards)
	case l.BlockSize <= 0 || l.BlockSize > MaxBlockSize:
		return fmt.Errorf("%w: block size %d, want 1 to %d", ErrInvalidLayout, l.BlockSize, MaxBlockSize)
	}
	return nil
}

func (l Layout) String() string {
	return fmt.Sprintf("%d+%d/%d", l.K, l.M, l.BlockSize)
}

// StripeSize is the number of data bytes in a full stripe, K*BlockSize.
func (l Layout) StripeSize() int64 { return int64(l.K) * int64(l.BlockSize) }

// ShardSize is the length of every shard of a segment of segSize data bytes:
// one BlockSize block per full stripe plus ceil(rem/K) bytes for the final
// partial stripe of rem bytes. It is 0 for segSize <= 0.
func (l Layout) ShardSize(segSize int64) int64 {
	if segSize <= 0 {
		return 0
	}
	s := l.StripeSize()
	full, rem := segSize/s, segSize%s
	return full*int64(l.BlockSize) + ceilDiv(rem, int64(l.K))
}

// numStripes is how many stripes a segment of segSize bytes has.
func (l Layout) numStripes(segSize int64) int64 {
	return ceilDiv(segSize, l.StripeSize())
}

// stripeBlockSize is the block size of stripe s: BlockSize for a full
// stripe, ceil(rem/K) for the final partial one.
func (l Layout) stripeBlockSize(segSize, s int64) int {
	ss := l.StripeSize()
	if rem := segSize - s*ss; rem < ss {
		return int(ceilDiv(rem, int64(l.K)))
	}
	return l.BlockSize
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
