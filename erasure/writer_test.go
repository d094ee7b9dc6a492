package erasure_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/talusfs/talus/erasure"
)

// failingWriter accepts limit bytes, then fails every Write.
type failingWriter struct {
	buf   bytes.Buffer
	limit int
	short bool // fail by writing short instead of returning an error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.limit {
		if w.short {
			return len(p) / 2, nil
		}
		return 0, fmt.Errorf("connection reset")
	}
	return w.buf.Write(p)
}

func TestWriterFailures(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	seg := 6*l.StripeSize() + 99
	data := randBytes(rng, int(seg))
	for _, tc := range []struct {
		failing []int
		maxFail int
		short   bool
		wantErr bool
	}{
		{failing: nil},
		{failing: []int{3}},
		{failing: []int{0, 5}},
		{failing: []int{1, 4}, short: true},
		{failing: []int{0, 1, 2}, wantErr: true},
		{failing: []int{2}, maxFail: -1, wantErr: true},
		{failing: []int{2, 3}, maxFail: 1, wantErr: true},
		{failing: []int{2}, maxFail: 1},
	} {
		t.Run(fmt.Sprintf("%v/max%d/short%v", tc.failing, tc.maxFail, tc.short), func(t *testing.T) {
			ws := make([]io.Writer, l.K+l.M)
			fws := make([]*failingWriter, len(ws))
			failing := map[int]bool{}
			for _, i := range tc.failing {
				failing[i] = true
			}
			for i := range ws {
				fws[i] = &failingWriter{limit: 1 << 30, short: tc.short}
				if failing[i] {
					fws[i].limit = 3 * l.BlockSize
				}
				ws[i] = fws[i]
			}
			w, err := erasure.NewWriter(l, ws, erasure.WriterOptions{MaxFailures: tc.maxFail})
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for p := data; len(p) > 0 && werr == nil; {
				c := min(len(p), 1+rng.IntN(2000))
				_, werr = w.Write(p[:c])
				p = p[c:]
			}
			cerr := w.Close()
			if tc.wantErr {
				if werr == nil && cerr == nil {
					t.Fatal("no error with too many failed shards")
				}
				err := cerr
				if werr != nil {
					err = werr
				}
				if !errors.Is(err, erasure.ErrTooManyFailures) {
					t.Fatalf("got %v, want ErrTooManyFailures", err)
				}
				for _, i := range tc.failing {
					if !strings.Contains(err.Error(), fmt.Sprintf("shard %d", i)) && tc.maxFail >= 0 {
						t.Errorf("error %q does not name shard %d", err, i)
					}
				}
				if _, err := w.Write([]byte{1}); err == nil {
					t.Error("Write after failure succeeded")
				}
				return
			}
			if werr != nil || cerr != nil {
				t.Fatalf("Write: %v, Close: %v", werr, cerr)
			}
			for i, err := range w.ShardErrors() {
				if failing[i] != (err != nil) {
					t.Errorf("ShardErrors[%d] = %v, shard failing: %v", i, err, failing[i])
				}
				if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("shard %d", i)) {
					t.Errorf("ShardErrors[%d] = %q does not name the shard", i, err)
				}
				if tc.short && err != nil && !errors.Is(err, io.ErrShortWrite) {
					t.Errorf("ShardErrors[%d] = %v, want io.ErrShortWrite", i, err)
				}
			}
			// The surviving shards must be complete and decodable, with
			// the failed ones counting as missing.
			shards := make([][]byte, len(fws))
			faults := map[int]fault{}
			for i, fw := range fws {
				shards[i] = fw.buf.Bytes()
				if failing[i] {
					shards[i] = make([]byte, l.ShardSize(seg)) // not served
					faults[i] = fault{kind: faultOpen}
				} else if int64(len(shards[i])) != l.ShardSize(seg) {
					t.Fatalf("healthy shard %d has %d bytes, want %d", i, len(shards[i]), l.ShardSize(seg))
				}
			}
			degradedCase(t, l, data, shards, faults, 0, seg, rng, 0)
		})
	}
}

func TestWriterOptions(t *testing.T) {
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	ws := make([]io.Writer, 6)
	for i := range ws {
		ws[i] = io.Discard
	}
	if _, err := erasure.NewWriter(l, ws, erasure.WriterOptions{MaxFailures: 3}); err == nil {
		t.Error("MaxFailures above M accepted")
	}
	if _, err := erasure.NewWriter(l, ws[:5], erasure.WriterOptions{}); err == nil {
		t.Error("5 writers for 6 shards accepted")
	}
	if _, err := erasure.NewWriter(erasure.Layout{K: 4, M: 2}, ws, erasure.WriterOptions{}); !errors.Is(err, erasure.ErrInvalidLayout) {
		t.Errorf("zero block size: %v", err)
	}
	ws[3] = nil
	if _, err := erasure.NewWriter(l, ws, erasure.WriterOptions{}); err == nil {
		t.Error("nil shard writer accepted")
	}
	ws[3] = io.Discard
	w, err := erasure.NewWriter(l, ws, erasure.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, erasure.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestWriterSlowShard checks that a shard writer that blocks does not keep
// the other shards from receiving blocks while the Writer has stripes to
// spare.
func TestWriterSlowShard(t *testing.T) {
	l := erasure.Layout{K: 4, M: 2, BlockSize: 512}
	ws := make([]io.Writer, 6)
	pr, pw := io.Pipe()
	ws[5] = pw
	writes := make(chan int, 100)
	for i := range 5 {
		ws[i] = notifyWriter{idx: i, ch: writes}
	}
	w, err := erasure.NewWriter(l, ws, erasure.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Two stripes fit in flight while shard 5 accepts nothing.
	if _, err := w.Write(make([]byte, 2*l.StripeSize())); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	perShard := map[int]int{}
	for n := 0; n < 10; n++ {
		select {
		case i := <-writes:
			perShard[i]++
		case <-time.After(10 * time.Second):
			t.Fatalf("fast shards stuck behind the blocked one: %v", perShard)
		}
	}
	for i := range 5 {
		if perShard[i] != 2 {
			t.Errorf("shard %d got %d blocks, want 2", i, perShard[i])
		}
	}
	go io.Copy(io.Discard, pr)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

type notifyWriter struct {
	idx int
	ch  chan<- int
}

func (w notifyWriter) Write(p []byte) (int, error) {
	w.ch <- w.idx
	return len(p), nil
}
