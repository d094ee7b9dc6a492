package erasure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/erasure"
)

var testLayouts = []erasure.Layout{
	{K: 4, M: 2, BlockSize: 1000},
	{K: 8, M: 3, BlockSize: 512},
	{K: 1, M: 0, BlockSize: 700},
	{K: 2, M: 1, BlockSize: 333},
}

func segSizes(l erasure.Layout) []int64 {
	b, s := int64(l.BlockSize), l.StripeSize()
	return []int64{0, 1, b - 1, b, b + 1, s - 1, s, s + 1, 3*s + int64(7*l.K) + 3}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, l := range testLayouts {
		for _, seg := range segSizes(l) {
			t.Run(fmt.Sprintf("%v/%d", l, seg), func(t *testing.T) {
				data := randBytes(rng, int(seg))
				shards := writeSegment(t, l, data, false, rng)
				want := referenceShards(t, l, data)
				for i := range shards {
					if int64(len(shards[i])) != l.ShardSize(seg) {
						t.Fatalf("shard %d is %d bytes, ShardSize says %d", i, len(shards[i]), l.ShardSize(seg))
					}
					if !bytes.Equal(shards[i], want[i]) {
						t.Fatalf("shard %d differs from the reference striping", i)
					}
				}
				// ReadFrom must produce the same shards as Write.
				for i, sh := range writeSegment(t, l, data, true, rng) {
					if !bytes.Equal(sh, shards[i]) {
						t.Fatalf("shard %d written by ReadFrom differs", i)
					}
				}
				for _, viaWriteTo := range []bool{false, true} {
					st := newStore(t, shards, nil)
					r, err := erasure.NewReader(context.Background(), l, seg, 0, seg, st.open, erasure.ReaderOptions{})
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAll(r, viaWriteTo, rng)
					r.Close()
					if err != nil {
						t.Fatalf("read (WriteTo %v): %v", viaWriteTo, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("read (WriteTo %v) returned different bytes", viaWriteTo)
					}
				}
			})
		}
	}
}

// checkHealthyOpens verifies the healthy read of [off, off+n) opened only
// data shards, each at most once, for exactly the n bytes it needed.
func checkHealthyOpens(t *testing.T, l erasure.Layout, opens []openRec, off, n int64) {
	t.Helper()
	seen := map[int]bool{}
	var total int64
	for _, o := range opens {
		if o.idx >= l.K {
			t.Errorf("range [%d,+%d): opened parity shard %d", off, n, o.idx)
		}
		if seen[o.idx] {
			t.Errorf("range [%d,+%d): opened shard %d twice: %v", off, n, o.idx, opens)
		}
		seen[o.idx] = true
		total += o.n
	}
	if total != n {
		t.Errorf("range [%d,+%d): opened %d shard bytes: %v", off, n, total, opens)
	}
}

func TestRangeReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, l := range testLayouts {
		seg := 5*l.StripeSize() + int64(3*l.K) + 1
		data := randBytes(rng, int(seg))
		shards := writeSegment(t, l, data, false, rng)

		type rg struct{ off, n int64 }
		var ranges []rg
		// Single bytes and short spans around every block and stripe edge,
		// including those of the short final stripe.
		for s := int64(0); s*l.StripeSize() < seg; s++ {
			start := s * l.StripeSize()
			bs := int64(l.BlockSize)
			if rem := seg - start; rem < l.StripeSize() {
				bs = (rem + int64(l.K) - 1) / int64(l.K)
			}
			for i := int64(0); i <= int64(l.K); i++ {
				for _, d := range []int64{-1, 0, 1} {
					if x := start + i*bs + d; x >= 0 && x < seg {
						ranges = append(ranges, rg{x, 1}, rg{x, min(3, seg-x)})
					}
				}
			}
		}
		for range 300 {
			off := rng.Int64N(seg)
			n := rng.Int64N(seg - off + 1)
			if rng.IntN(3) == 0 {
				n = min(n, rng.Int64N(int64(2*l.BlockSize)))
			}
			ranges = append(ranges, rg{off, n})
		}
		ranges = append(ranges, rg{0, seg}, rg{seg, 0}, rg{0, 0})

		for _, r := range ranges {
			st := newStore(t, shards, nil)
			rd, err := erasure.NewReader(context.Background(), l, seg, r.off, r.n, st.open, erasure.ReaderOptions{
				OnBadShard: func(idx int, err error) { t.Errorf("healthy read reported shard %d: %v", idx, err) },
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(rd, rng.IntN(2) == 0, rng)
			rd.Close()
			if err != nil {
				t.Fatalf("%v range [%d,+%d): %v", l, r.off, r.n, err)
			}
			if !bytes.Equal(got, data[r.off:r.off+r.n]) {
				t.Fatalf("%v range [%d,+%d): wrong bytes", l, r.off, r.n)
			}
			checkHealthyOpens(t, l, st.openLog(), r.off, r.n)
		}
	}
}

func TestReaderArguments(t *testing.T) {
	l := erasure.Layout{K: 4, M: 2, BlockSize: 100}
	open := func(ctx context.Context, idx int, off, n int64) (io.ReadCloser, error) {
		t.Errorf("unexpected open of shard %d", idx)
		return nil, errors.New("no")
	}
	for _, r := range []struct{ seg, off, n int64 }{
		{1000, -1, 5}, {1000, 0, -1}, {1000, 999, 2}, {1000, 1001, 0}, {-1, 0, 0},
		{1000, 500, 1<<63 - 1},
	} {
		if _, err := erasure.NewReader(context.Background(), l, r.seg, r.off, r.n, open, erasure.ReaderOptions{}); !errors.Is(err, erasure.ErrRange) {
			t.Errorf("NewReader(seg %d, off %d, n %d) = %v, want ErrRange", r.seg, r.off, r.n, err)
		}
	}
	if _, err := erasure.NewReader(context.Background(), erasure.Layout{K: 0}, 10, 0, 1, open, erasure.ReaderOptions{}); !errors.Is(err, erasure.ErrInvalidLayout) {
		t.Errorf("invalid layout: got %v", err)
	}
	r, err := erasure.NewReader(context.Background(), l, 1000, 1000, 0, open, erasure.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("empty range Read = %d, %v; want 0, EOF", n, err)
	}
	r.Close()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, erasure.ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
}

// degradedCase reads a range with some shards faulty and checks the bytes
// and the shards reported bad.
func degradedCase(t *testing.T, l erasure.Layout, data []byte, shards [][]byte, faults map[int]fault, off, n int64, rng *rand.Rand, timeout time.Duration) {
	t.Helper()
	seg := int64(len(data))
	st := newStore(t, shards, faults)
	var mu sync.Mutex
	reported := map[int]error{}
	rd, err := erasure.NewReader(context.Background(), l, seg, off, n, st.open, erasure.ReaderOptions{
		ShardTimeout: timeout,
		OnBadShard: func(idx int, err error) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := reported[idx]; dup {
				t.Errorf("shard %d reported twice", idx)
			}
			reported[idx] = err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(rd, rng.IntN(2) == 0, rng)
	rd.Close()
	if err != nil {
		t.Fatalf("faults %v, range [%d,+%d): %v", faults, off, n, err)
	}
	if !bytes.Equal(got, data[off:off+n]) {
		t.Fatalf("faults %v, range [%d,+%d): wrong bytes", faults, off, n)
	}
	mu.Lock()
	defer mu.Unlock()
	trig := st.triggeredSet()
	for idx, err := range reported {
		if _, faulty := faults[idx]; !faulty {
			t.Errorf("faults %v, range [%d,+%d): healthy shard %d reported: %v", faults, off, n, idx, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("shard %d", idx)) {
			t.Errorf("error for shard %d does not name it: %v", idx, err)
		}
	}
	for idx := range trig {
		if _, ok := reported[idx]; !ok {
			t.Errorf("faults %v, range [%d,+%d): shard %d failed but was not reported", faults, off, n, idx)
		}
	}
}

func TestDegradedReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 5*l.StripeSize() + 123
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	size := l.ShardSize(seg)
	ranges := [][2]int64{{0, seg}, {1, seg - 1}, {700, 1}, {2047, 2}, {l.StripeSize() - 5, l.StripeSize() + 10}}
	for range 3 {
		off := rng.Int64N(seg)
		ranges = append(ranges, [2]int64{off, rng.Int64N(seg-off) + 1})
	}
	total := l.K + l.M
	for a := 0; a < total; a++ {
		for b := a + 1; b < total; b++ {
			for _, kind := range []faultKind{faultOpen, faultReadErr, faultShort, faultNoProgress} {
				// Mid-stream faults hit at different depths for a and b,
				// so the second failure comes while already degraded.
				faults := map[int]fault{
					a: {kind: kind, at: size / 3},
					b: {kind: kind, at: 2*size/3 + 17},
				}
				for _, r := range ranges {
					degradedCase(t, l, data, shards, faults, r[0], r[1], rng, 0)
				}
			}
		}
	}
}

func TestTooFewShards(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 4*l.StripeSize() + 77
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	size := l.ShardSize(seg)
	for _, missing := range [][]int{{0, 1, 2}, {0, 4, 5}, {3, 4, 5}, {1, 2, 3, 4}} {
		for _, kind := range []faultKind{faultOpen, faultReadErr, faultShort} {
			faults := map[int]fault{}
			for j, idx := range missing {
				faults[idx] = fault{kind: kind, at: size/2 + int64(j)*100}
			}
			st := newStore(t, shards, faults)
			rd, err := erasure.NewReader(context.Background(), l, seg, 0, seg, st.open, erasure.ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(rd, rng.IntN(2) == 0, rng)
			rd.Close()
			if !errors.Is(err, erasure.ErrTooFewShards) {
				t.Fatalf("missing %v (%v): got %v, want ErrTooFewShards", missing, kind, err)
			}
			// The Reader gives up as soon as K shards are out of reach, so a
			// faulty shard it never tried still counts as readable.
			var readable int
			if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "stripe"):], "stripe %d: %d of 6 shards readable, need 4", new(int), &readable); serr != nil {
				t.Errorf("missing %v: error %q does not say how many shards were readable: %v", missing, err, serr)
			} else if readable > 6-3 || readable < 6-len(missing) {
				t.Errorf("missing %v: error %q claims %d readable", missing, err, readable)
			}
			// Whatever came before the failure must be the segment's own
			// bytes, and an open failure leaves nothing at all.
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("missing %v (%v): returned wrong bytes before failing", missing, kind)
			}
			if kind == faultOpen && len(got) != 0 {
				t.Errorf("missing %v: %d bytes returned though no stripe was readable", missing, len(got))
			}
			if kind != faultOpen && int64(len(got)) > size/2*int64(l.K) {
				t.Errorf("missing %v (%v): %d bytes returned, past the failure", missing, kind, len(got))
			}
		}
	}
}

func TestSlowShard(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 4*l.StripeSize() + 300
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	size := l.ShardSize(seg)
	for _, faults := range []map[int]fault{
		{1: {kind: faultStallOpen}},
		{2: {kind: faultStall, at: size / 2}},
		{0: {kind: faultHang}},                                 // ignores cancellation entirely
		{3: {kind: faultStall, at: 700}, 4: {kind: faultHang}}, // parity replacement hangs too
	} {
		t.Run(fmt.Sprint(faults), func(t *testing.T) {
			degradedCase(t, l, data, shards, faults, 0, seg, rng, 20*time.Millisecond)
			degradedCase(t, l, data, shards, faults, 100, 2000, rng, 20*time.Millisecond)
		})
	}
	// And the error the callback gets says why.
	st := newStore(t, shards, map[int]fault{1: {kind: faultStallOpen}})
	var got error
	rd, _ := erasure.NewReader(context.Background(), l, seg, 0, seg, st.open, erasure.ReaderOptions{
		ShardTimeout: 10 * time.Millisecond,
		OnBadShard:   func(idx int, err error) { got = err },
	})
	if _, err := io.Copy(io.Discard, rd); err != nil {
		t.Fatal(err)
	}
	rd.Close()
	if !errors.Is(got, erasure.ErrShardTimeout) {
		t.Errorf("OnBadShard got %v, want ErrShardTimeout", got)
	}
}

func TestReaderCancel(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 4 * l.StripeSize()
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	st := newStore(t, shards, map[int]fault{2: {kind: faultStall, at: 600}})
	ctx, cancel := context.WithCancel(context.Background())
	rd, err := erasure.NewReader(ctx, l, seg, 0, seg, st.open, erasure.ReaderOptions{
		OnBadShard: func(idx int, err error) { t.Errorf("shard %d reported after cancel: %v", idx, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(rd, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.Copy(io.Discard, rd)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v, want context.Canceled", err)
	}
	rd.Close()
}

// TestDegradedOpens checks that a failure switches to parity from the
// failing stripe on, opening each further shard once, and leaves the
// shards already open in use.
func TestDegradedOpens(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 8 * l.StripeSize()
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	at := 3*int64(l.BlockSize) + 10 // in stripe 3
	st := newStore(t, shards, map[int]fault{1: {kind: faultReadErr, at: at}})
	degradedCaseStore(t, l, data, st)
	counts := map[int]int{}
	for _, o := range st.openLog() {
		counts[o.idx]++
		if o.idx == 4 && o.off != 3*int64(l.BlockSize) {
			t.Errorf("parity shard opened at %d, want the failing stripe's offset %d", o.off, 3*int64(l.BlockSize))
		}
	}
	want := map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("opens per shard %v, want %v (log %v)", counts, want, st.openLog())
	}
}

func degradedCaseStore(t *testing.T, l erasure.Layout, data []byte, st *store) {
	t.Helper()
	seg := int64(len(data))
	rd, err := erasure.NewReader(context.Background(), l, seg, 0, seg, st.open, erasure.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rd); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatal("wrong bytes")
	}
}

// TestDegradedReopenFails covers a shard that delivered its part of a
// stripe, is asked again for a wider window to reconstruct a neighbour, and
// fails partway through the second request: its first answer must not be
// used once its buffer has been reused.
func TestDegradedReopenFails(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 3 * l.StripeSize()
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	faults := map[int]fault{
		0: {kind: faultReopen, at: 50},
		1: {kind: faultOpen},
	}
	for range 10 {
		degradedCase(t, l, data, shards, faults, 100, seg-100, rng, 0)
		degradedCase(t, l, data, shards, faults, 100, 1500, rng, 0)
	}
}
