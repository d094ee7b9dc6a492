package erasure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/talusfs/talus/erasure"
)

func TestRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, l := range []erasure.Layout{{K: 4, M: 2, BlockSize: 512}, {K: 2, M: 1, BlockSize: 333}} {
		for _, seg := range []int64{1, l.StripeSize() - 1, 3*l.StripeSize() + 5} {
			data := randBytes(rng, int(seg))
			shards := writeSegment(t, l, data, false, rng)
			total := l.K + l.M
			var sets [][]int
			for a := range total {
				sets = append(sets, []int{a})
				for b := a + 1; b < total && l.M >= 2; b++ {
					sets = append(sets, []int{a, b})
				}
			}
			for _, set := range sets {
				t.Run(fmt.Sprintf("%v/%d/%v", l, seg, set), func(t *testing.T) {
					// The shards being rebuilt are gone: serving them
					// would be an error the test catches.
					faults := map[int]fault{}
					targets := map[int]io.Writer{}
					bufs := map[int]*bytes.Buffer{}
					for _, i := range set {
						faults[i] = fault{kind: faultOpen}
						bufs[i] = new(bytes.Buffer)
						targets[i] = bufs[i]
					}
					st := newStore(t, shards, faults)
					err := erasure.Rebuild(context.Background(), l, seg, st.open, targets, erasure.ReaderOptions{
						OnBadShard: func(idx int, err error) { t.Errorf("shard %d reported: %v", idx, err) },
					})
					if err != nil {
						t.Fatal(err)
					}
					for i, b := range bufs {
						if !bytes.Equal(b.Bytes(), shards[i]) {
							t.Errorf("rebuilt shard %d differs (%d bytes, want %d)", i, b.Len(), len(shards[i]))
						}
					}
					if len(st.triggeredSet()) != 0 {
						t.Errorf("Rebuild tried to read a target: %v", st.openLog())
					}
				})
			}
		}
	}
}

func TestRebuildDegraded(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 5*l.StripeSize() + 3
	data := randBytes(rng, int(seg))
	shards := writeSegment(t, l, data, false, rng)
	size := l.ShardSize(seg)

	// One target and one source failing mid-stream: still K left.
	var out bytes.Buffer
	var reported []int
	st := newStore(t, shards, map[int]fault{1: {kind: faultOpen}, 0: {kind: faultReadErr, at: size / 2}})
	err := erasure.Rebuild(context.Background(), l, seg, st.open, map[int]io.Writer{1: &out}, erasure.ReaderOptions{
		OnBadShard: func(idx int, err error) { reported = append(reported, idx) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), shards[1]) {
		t.Error("rebuilt shard differs")
	}
	if fmt.Sprint(reported) != "[0]" {
		t.Errorf("reported %v, want [0]", reported)
	}

	// Two targets and a failing source: too few.
	st = newStore(t, shards, map[int]fault{2: {kind: faultReadErr, at: 100}})
	err = erasure.Rebuild(context.Background(), l, seg, st.open, map[int]io.Writer{0: io.Discard, 5: io.Discard}, erasure.ReaderOptions{})
	if !errors.Is(err, erasure.ErrTooFewShards) {
		t.Errorf("got %v, want ErrTooFewShards", err)
	}
	// More targets than parity.
	err = erasure.Rebuild(context.Background(), l, seg, st.open, map[int]io.Writer{0: io.Discard, 1: io.Discard, 2: io.Discard}, erasure.ReaderOptions{})
	if !errors.Is(err, erasure.ErrTooFewShards) {
		t.Errorf("3 targets: got %v, want ErrTooFewShards", err)
	}
	// A failing target writer fails the rebuild, naming the shard.
	err = erasure.Rebuild(context.Background(), l, seg, newStore(t, shards, nil).open,
		map[int]io.Writer{4: &failingWriter{limit: 1000}}, erasure.ReaderOptions{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("shard 4")) {
		t.Errorf("failing target: got %v", err)
	}
}
