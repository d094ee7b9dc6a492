package bench

import (
	"iter"
	"math"
	"math/bits"
	"time"
)

// Histogram layout (HDR-style, log-linear): values below 2*subBuckets get a
// bucket each; above that, every power-of-two range [2^e, 2^(e+1)) is split
// into subBuckets equal buckets. A bucket is then never wider than
// 1/subBuckets of its lower bound, so reporting its midpoint is off by at
// most 1/(2*subBuckets) of the true value: RelativeError.
const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
	// maxBuckets covers every non-negative int64: the largest has shift
	// 63-subBits-1 = 55 and index 55*128 + 255.
	maxBuckets = (63-subBits-1)*subBuckets + 2*subBuckets
)

// RelativeError bounds the error of every value a Histogram reports
// (quantiles, bucket midpoints) relative to the recorded value it stands for:
// 1/256, about 0.39%.
const RelativeError = 1.0 / (2 * subBuckets)

// Histogram counts durations in log-linear buckets. Its memory is bounded
// (at most 58 KiB, grown only as far as the largest value seen requires) and
// independent of how many values it holds, and two histograms merge exactly,
// so each worker can keep its own without locking and the results add up
// afterwards. The zero value is empty and ready to use; a Histogram is not
// safe for concurrent use.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      int64 // nanoseconds
	min, max int64
}

// bucketOf returns the index of the bucket holding v >= 0.
func bucketOf(v int64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return shift*subBuckets + int(v>>shift)
}

// bucketRange returns the values [lo, lo+width) that bucket i holds.
func bucketRange(i int) (lo, width int64) {
	if i < 2*subBuckets {
		return int64(i), 1
	}
	shift := i/subBuckets - 1
	top := int64(i - shift*subBuckets)
	return top << shift, 1 << shift
}

// Record adds one value; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	i := bucketOf(v)
	if i >= len(h.counts) {
		h.grow(i + 1)
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

func (h *Histogram) grow(n int) {
	// Grow by whole powers of two of the value range so that a latency
	// creeping upwards does not reallocate on every new maximum.
	n = min(max(n+subBuckets, 2*len(h.counts)), maxBuckets)
	c := make([]uint64, n)
	copy(c, h.counts)
	h.counts = c
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.grow(len(o.counts))
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, 0, 0
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max are the exact extremes (zero when empty).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max is the largest value recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact arithmetic mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / int64(h.n))
}

// Quantile returns the q-quantile (0 <= q <= 1) by the nearest-rank
// definition: the value of rank ceil(q*n) among the n recorded values sorted
// ascending, or rather the midpoint of its bucket, which is within
// RelativeError of it. Quantile(0) and Quantile(1) are the exact Min and Max.
// It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	switch {
	case q <= 0 || math.IsNaN(q):
		return time.Duration(h.min)
	case q >= 1:
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return time.Duration(h.represent(i))
		}
	}
	return time.Duration(h.max) // unreachable: the counts add up to n
}

// represent is the value reported for bucket i: its midpoint, clamped to
// what was actually recorded (which makes the extreme buckets exact).
func (h *Histogram) represent(i int) int64 {
	lo, w := bucketRange(i)
	return min(max(lo+w/2, h.min), h.max)
}

// Buckets yields every non-empty bucket in ascending order as the value that
// represents it (within RelativeError of each value in it) and its count.
func (h *Histogram) Buckets() iter.Seq2[time.Duration, uint64] {
	return func(yield func(time.Duration, uint64) bool) {
		for i, c := range h.counts {
			if c > 0 && !yield(time.Duration(h.represent(i)), c) {
				return
			}
		}
	}
}
