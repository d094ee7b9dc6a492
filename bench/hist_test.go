package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBucketLayout checks the invariants the error bound rests on: buckets
// tile the values without gaps or overlaps, every value lands in the bucket
// that holds it, and no bucket is wider than 1/subBuckets of its lower bound.
func TestBucketLayout(t *testing.T) {
	var next int64
	for i := range maxBuckets {
		lo, w := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if w > 1 && w*subBuckets > lo {
			t.Fatalf("bucket %d [%d, +%d) is wider than 1/%d of its start", i, lo, w, subBuckets)
		}
		for _, v := range []int64{lo, lo + w/2, lo + w - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		next = lo + w
		if next < 0 { // wrapped past MaxInt64: the last bucket
			if i != maxBuckets-1 {
				t.Fatalf("bucket %d reaches past MaxInt64 before the last", i)
			}
		}
	}
	if got := bucketOf(math.MaxInt64); got != maxBuckets-1 {
		t.Fatalf("bucketOf(MaxInt64) = %d, want %d", got, maxBuckets-1)
	}
}

// nearestRank is the exact q-quantile of sorted values, by the definition
// Quantile approximates.
func nearestRank(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(r, 1), len(sorted))-1]
}

var quantiles = []float64{0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}

// checkQuantiles records values and compares every quantile with the exact
// one: the error must stay within RelativeError (1/256), and Min, Max, Mean
// and Count are exact.
func checkQuantiles(t *testing.T, name string, values []int64) {
	t.Helper()
	var h Histogram
	var sum int64
	for _, v := range values {
		h.Record(time.Duration(v))
		sum += v
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for _, q := range quantiles {
		got, want := int64(h.Quantile(q)), nearestRank(sorted, q)
		if math.Abs(float64(got-want)) > float64(want)*RelativeError {
			t.Errorf("%s: Quantile(%v) = %d, exact %d: off by %.3f%%, bound %.3f%%", name, q, got, want,
				100*math.Abs(float64(got-want))/float64(want), 100*RelativeError)
		}
	}
	if h.Count() != uint64(len(values)) || int64(h.Min()) != sorted[0] || int64(h.Max()) != sorted[len(sorted)-1] ||
		int64(h.Mean()) != sum/int64(len(values)) {
		t.Errorf("%s: count %d min %d max %d mean %d; want %d %d %d %d", name, h.Count(), h.Min(), h.Max(), h.Mean(),
			len(values), sorted[0], sorted[len(sorted)-1], sum/int64(len(values)))
	}
}

func TestQuantileUniform(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	values := make([]int64, 100_000)
	for i := range values {
		values[i] = 1e5 + r.Int64N(1e9) // 100µs to 1s
	}
	checkQuantiles(t, "uniform", values)

	// Every value from 1 to n once: the q-quantile is exactly ceil(q*n),
	// without any sampling.
	var h Histogram
	const n = 1_000_000
	for v := range n {
		h.Record(time.Duration(v + 1))
	}
	for _, q := range quantiles[1:] {
		want := math.Ceil(q * n)
		if got := float64(h.Quantile(q)); math.Abs(got-want) > want*RelativeError {
			t.Errorf("1..%d: Quantile(%v) = %v, want %v within %.2f%%", n, q, got, want, 100*RelativeError)
		}
	}
}

func TestQuantileExponential(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	values := make([]int64, 100_000)
	for i := range values {
		values[i] = int64(r.ExpFloat64() * 5e6) // mean 5ms, a long tail
	}
	checkQuantiles(t, "exponential", values)

	// The sample agrees with the distribution's own quantiles, -mean*ln(1-q),
	// as far as sampling allows: this catches a histogram that is precise
	// about the wrong thing.
	var h Histogram
	for _, v := range values {
		h.Record(time.Duration(v))
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := -5e6 * math.Log(1-q)
		if got := float64(h.Quantile(q)); math.Abs(got-want)/want > 0.05 {
			t.Errorf("exponential: Quantile(%v) = %.0f, distribution's %.0f", q, got, want)
		}
	}
}

func TestQuantileConstant(t *testing.T) {
	for _, c := range []int64{0, 1, 255, 256, 12_345_678, 3e12} {
		values := slices.Repeat([]int64{c}, 1000)
		checkQuantiles(t, "constant", values)
		var h Histogram
		for _, v := range values {
			h.Record(time.Duration(v))
		}
		// Clamping to the exact min and max makes a constant exact.
		for _, q := range quantiles {
			if got := int64(h.Quantile(q)); got != c {
				t.Errorf("constant %d: Quantile(%v) = %d", c, q, got)
			}
		}
	}
}

func TestQuantileSmallValuesExact(t *testing.T) {
	// Below 2*subBuckets every value has a bucket of its own.
	var h Histogram
	for v := range 2 * subBuckets {
		h.Record(time.Duration(v))
	}
	for v := range 2 * subBuckets {
		q := float64(v+1) / (2 * subBuckets)
		if got := h.Quantile(q); got != time.Duration(v) {
			t.Errorf("Quantile(%v) = %d, want %d", q, got, v)
		}
	}
	// Between ranks, nearest-rank rounds up: of 1, 2, 3, 4 the 0.3-quantile
	// is 2 (rank ceil(1.2)), the 0.75-quantile 3.
	var four Histogram
	sorted := []int64{1, 2, 3, 4}
	for _, v := range sorted {
		four.Record(time.Duration(v))
	}
	for _, q := range []float64{0.01, 0.25, 0.3, 0.5, 0.51, 0.75, 0.76, 0.99} {
		if got, want := int64(four.Quantile(q)), nearestRank(sorted, q); got != want {
			t.Errorf("1..4: Quantile(%v) = %d, want %d", q, got, want)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var whole Histogram
	parts := make([]Histogram, 8)
	for i := range 50_000 {
		v := time.Duration(r.ExpFloat64() * float64(time.Millisecond) * float64(1+i%8*100))
		whole.Record(v)
		parts[i%8].Record(v)
	}
	var merged Histogram
	for i := range parts {
		merged.Merge(&parts[i])
	}
	merged.Merge(&Histogram{}) // merging an empty histogram changes nothing
	trim := func(c []uint64) []uint64 {
		for len(c) > 0 && c[len(c)-1] == 0 {
			c = c[:len(c)-1]
		}
		return c
	}
	if !slices.Equal(trim(whole.counts), trim(merged.counts)) || merged.n != whole.n ||
		merged.sum != whole.sum || merged.min != whole.min || merged.max != whole.max {
		t.Fatal("merged parts differ from the histogram of the whole")
	}
	for _, q := range quantiles {
		if merged.Quantile(q) != whole.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, whole %v", q, merged.Quantile(q), whole.Quantile(q))
		}
	}
	// Merging into an empty histogram takes the other's minimum.
	var e Histogram
	e.Merge(&parts[3])
	if e.Min() != parts[3].Min() {
		t.Errorf("min after merge into empty = %v, want %v", e.Min(), parts[3].Min())
	}
}

func TestHistogramBoundedMemory(t *testing.T) {
	var h Histogram
	h.Record(-5) // counts as 0
	h.Record(time.Duration(math.MaxInt64))
	h.Record(time.Duration(math.MaxInt64 - 1))
	if len(h.counts) > maxBuckets {
		t.Fatalf("%d buckets, bound %d", len(h.counts), maxBuckets)
	}
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.Quantile(0.5) < time.Duration(math.MaxInt64/2) {
		t.Fatalf("min %d max %d median %d", h.Min(), h.Max(), h.Quantile(0.5))
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatal("Reset left values behind")
	}
	var small Histogram
	small.Record(time.Millisecond)
	// A millisecond needs about 2,000 buckets; growth stops well short of all.
	if len(small.counts) > maxBuckets/2 {
		t.Errorf("one 1ms value grew %d buckets", len(small.counts))
	}
}

func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{5, 5, 300, 1e6, 1e6 + 1} {
		h.Record(v)
	}
	var total uint64
	var prev time.Duration = -1
	for v, c := range h.Buckets() {
		if v <= prev {
			t.Errorf("bucket value %v after %v", v, prev)
		}
		prev = v
		total += c
	}
	if total != h.Count() {
		t.Errorf("buckets hold %d values, want %d", total, h.Count())
	}
	xys, top := percentileCurve(&h)
	if top != math.Log10(5) {
		t.Errorf("curve ends at %v nines, want log10(5)", top)
	}
	for i := 1; i < len(xys); i++ {
		if xys[i].X < xys[i-1].X || xys[i].Y < xys[i-1].Y {
			t.Errorf("percentile curve goes back at point %d: %v after %v", i, xys[i], xys[i-1])
		}
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 1))
	vs := make([]time.Duration, 1024)
	for i := range vs {
		vs[i] = time.Duration(r.ExpFloat64() * 5e6)
	}
	i := 0
	for b.Loop() {
		h.Record(vs[i&1023])
		i++
	}
}
