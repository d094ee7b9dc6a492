package erasure

import (
	"errors"
	"fmt"
)

// DefaultBlockSize is the per-shard block size talus uses unless a storage
// class says otherwise; a 4+2 stripe then carries 1 MiB of data.
//
// Block size does not change how many requests reach the chunk servers (a
// shard of a segment is one stream), but it is the size of every piece the
// data path hands on: each socket write of a GET's body and each read of a
// shard's stream. On the whole cluster that decides the cost: moving
// 256 KiB per system call instead of 64 KiB cut the CPU per GiB of 64 MiB
// GETs by about 15% and raised their throughput (bench/cpu-ab.sh, in
// bench/RESULTS.md), although the Writer alone encodes fastest with 64 to
// 128 KiB blocks (14 to 19 GB per CPU-second against 10 to 12 at 256 KiB,
// with its stripes in flight staying in L2), and at 6 to 8 times the
// loopback rate that is not what limits a PUT. 1 MiB gained nothing more.
// Larger blocks hold more memory per stream (up to 4 stripes of
// (K+M)*BlockSize while writing) and let a degraded read fetch up to one
// block per shard beyond its range. Small objects do not grow: the last
// partial stripe is split evenly over the K data shards.
const DefaultBlockSize = 256 << 10

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
