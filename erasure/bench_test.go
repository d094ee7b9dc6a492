package erasure_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/reedsolomon"
	"github.com/talusfs/talus/erasure"
)

// Run with: go test -run '^$' -bench . ./erasure/
//
// Besides MB/s (wall clock), every throughput benchmark reports MB/cpu-s:
// bytes per second of CPU time used by the whole process. On a shared or
// loaded machine wall-clock numbers swing widely; CPU time does not, and
// CPU per byte is what a storage node pays.

var benchShapes = [][2]int{{4, 2}, {8, 3}}

var benchBlocks = []int{64 << 10, 128 << 10, 256 << 10, 1 << 20}

const benchSegment = 64 << 20

func shapeName(km [2]int, bs int) string {
	return fmt.Sprintf("%d+%d/%dKiB", km[0], km[1], bs>>10)
}

// cpuMeter reports MB per CPU-second for the bytes a benchmark processed.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuMeter { return cpuMeter{b, cpuTime()} }

func (m cpuMeter) report(bytes float64) {
	if used := cpuTime() - m.start; used > 0 {
		m.b.ReportMetric(bytes/1e6/used.Seconds(), "MB/cpu-s")
	}
}

func benchEncoder(b *testing.B, l erasure.Layout) (reedsolomon.Encoder, [][]byte) {
	enc, err := reedsolomon.New(l.K, l.M)
	if err != nil {
		b.Fatal(err)
	}
	mem := randBytes(rand.New(rand.NewPCG(1, 1)), (l.K+l.M)*l.BlockSize)
	shards := make([][]byte, l.K+l.M)
	for i := range shards {
		shards[i] = mem[i*l.BlockSize : (i+1)*l.BlockSize]
	}
	return enc, shards
}

func discards(n int) []io.Writer {
	ws := make([]io.Writer, n)
	for i := range ws {
		ws[i] = io.Discard
	}
	return ws
}

// BenchmarkEncode is raw reedsolomon Encode of one stripe with shards of the
// given size (1 MiB shards are the 1024KiB case), always the same buffer.
func BenchmarkEncode(b *testing.B) {
	for _, km := range benchShapes {
		for _, bs := range benchBlocks {
			b.Run(shapeName(km, bs), func(b *testing.B) {
				l := erasure.Layout{K: km[0], M: km[1], BlockSize: bs}
				enc, shards := benchEncoder(b, l)
				b.SetBytes(l.StripeSize())
				cpu := startCPU(b)
				for b.Loop() {
					if err := enc.Encode(shards); err != nil {
						b.Fatal(err)
					}
				}
				cpu.report(float64(b.N) * float64(l.StripeSize()))
			})
		}
	}
}

// netReader stands in for a connection: each Read copies up to 64 KiB from
// a small buffer that stays in cache, as a socket read copies from kernel
// buffers, so the data really lands in the buffer Read is given.
type netReader struct {
	n   int64
	src []byte
}

var netSource = sync.OnceValue(func() []byte {
	return randBytes(rand.New(rand.NewPCG(5, 5)), 64<<10)
})

func newNetReader(n int64) *netReader { return &netReader{n: n, src: netSource()} }

func (r *netReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), r.n)], r.src)
	r.n -= int64(n)
	return n, nil
}

// BenchmarkWriter streams a 64 MiB segment into io.Discard shard writers:
// ReadFrom from a netReader (the gateway's path: body straight into the
// stripe buffer), or Write in 1 MiB calls from a 64 MiB buffer in memory.
func BenchmarkWriter(b *testing.B) {
	data := randBytes(rand.New(rand.NewPCG(2, 2)), benchSegment)
	for _, km := range benchShapes {
		for _, bs := range benchBlocks {
			l := erasure.Layout{K: km[0], M: km[1], BlockSize: bs}
			ws := discards(l.K + l.M)
			for _, how := range []string{"ReadFrom", "Write"} {
				b.Run(shapeName(km, bs)+"/"+how, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(benchSegment)
					cpu := startCPU(b)
					for b.Loop() {
						w, err := erasure.NewWriter(l, ws, erasure.WriterOptions{})
						if err != nil {
							b.Fatal(err)
						}
						if how == "ReadFrom" {
							_, err = w.ReadFrom(newNetReader(benchSegment))
						} else {
							for p := data; len(p) > 0 && err == nil; p = p[min(len(p), 1<<20):] {
								_, err = w.Write(p[:min(len(p), 1<<20)])
							}
						}
						if err != nil {
							b.Fatal(err)
						}
						if err := w.Close(); err != nil {
							b.Fatal(err)
						}
					}
					cpu.report(float64(b.N) * benchSegment)
				})
			}
		}
	}
}

// BenchmarkWriterVsEncode compares, within one loop so both see the same
// machine, a 64 MiB segment through the streaming Writer with what the same
// stripes cost raw:
//
//   - "encode": raw Encode of every stripe in one reused buffer, against
//     Writer.ReadFrom from a netReader. The Writer also pays for moving the
//     data in and for its buffers rotating through cache.
//   - "landed": both sides first copy each stripe's data from a netReader
//     into the stripe buffer, as data arriving from the network must be;
//     what remains between them is the Writer's own cost.
//
// stream/raw is the Writer's throughput as a fraction of the raw loop's, by
// wall clock and by CPU time.
func BenchmarkWriterVsEncode(b *testing.B) {
	for _, km := range benchShapes {
		for _, bs := range benchBlocks {
			for _, mode := range []string{"encode", "landed"} {
				b.Run(shapeName(km, bs)+"/"+mode, func(b *testing.B) {
					l := erasure.Layout{K: km[0], M: km[1], BlockSize: bs}
					enc, shards := benchEncoder(b, l)
					data := shards[0][:l.StripeSize():l.StripeSize()] // the data blocks, contiguous
					ws := discards(l.K + l.M)
					stripes := int(benchSegment / l.StripeSize())
					var rawWall, rawCPU, strWall, strCPU time.Duration
					raw := func() {
						t0, c0 := time.Now(), cpuTime()
						src := newNetReader(benchSegment)
						for range stripes {
							if mode == "landed" {
								if _, err := io.ReadFull(src, data); err != nil {
									b.Fatal(err)
								}
							}
							if err := enc.Encode(shards); err != nil {
								b.Fatal(err)
							}
						}
						rawWall += time.Since(t0)
						rawCPU += cpuTime() - c0
					}
					stream := func() {
						t0, c0 := time.Now(), cpuTime()
						w, err := erasure.NewWriter(l, ws, erasure.WriterOptions{})
						if err != nil {
							b.Fatal(err)
						}
						if _, err := w.ReadFrom(newNetReader(benchSegment)); err != nil {
							b.Fatal(err)
						}
						if err := w.Close(); err != nil {
							b.Fatal(err)
						}
						strWall += time.Since(t0)
						strCPU += cpuTime() - c0
					}
					n := 0
					for b.Loop() {
						if n%2 == 0 {
							raw()
							stream()
						} else {
							stream()
							raw()
						}
						n++
					}
					mb := float64(n) * benchSegment / 1e6
					b.ReportMetric(mb/rawWall.Seconds(), "raw-MB/s")
					b.ReportMetric(mb/strWall.Seconds(), "stream-MB/s")
					b.ReportMetric(rawWall.Seconds()/strWall.Seconds(), "stream/raw")
					if strCPU > 0 {
						b.ReportMetric(rawCPU.Seconds()/strCPU.Seconds(), "stream/raw-cpu")
					}
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

type memShards [][]byte

func (m memShards) open(ctx context.Context, idx int, off, n int64) (io.ReadCloser, error) {
	if m[idx] == nil {
		return nil, errors.New("missing")
	}
	return io.NopCloser(&sliceReader{m[idx][off : off+n]}), nil
}

// sliceReader is bytes.Reader without WriteTo, so reads go through Read
// into the Reader's buffers as they would from a connection.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// BenchmarkReader reads a whole 64 MiB segment from in-memory shards with
// WriteTo into io.Discard, healthy and with data shard 0 missing, so that
// every stripe is reconstructed.
func BenchmarkReader(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	data := randBytes(rng, benchSegment)
	for _, km := range benchShapes {
		for _, bs := range benchBlocks {
			l := erasure.Layout{K: km[0], M: km[1], BlockSize: bs}
			shards := memShards(writeSegment(b, l, data, false, rng))
			degraded := append(memShards(nil), shards...)
			degraded[0] = nil
			for _, c := range []struct {
				name   string
				shards memShards
			}{{"healthy", shards}, {"degraded", degraded}} {
				b.Run(shapeName(km, bs)+"/"+c.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(benchSegment)
					cpu := startCPU(b)
					for b.Loop() {
						r, err := erasure.NewReader(context.Background(), l, benchSegment, 0, benchSegment, c.shards.open, erasure.ReaderOptions{})
						if err != nil {
							b.Fatal(err)
						}
						if _, err := r.WriteTo(io.Discard); err != nil {
							b.Fatal(err)
						}
						r.Close()
					}
					cpu.report(float64(b.N) * benchSegment)
				})
			}
		}
	}
}

// BenchmarkReaderSmallRange reads 16 KiB at random offsets: the fixed cost
// of a range request.
func BenchmarkReaderSmallRange(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	const seg = 8 << 20
	data := randBytes(rng, seg)
	l := erasure.Layout{K: 4, M: 2, BlockSize: erasure.DefaultBlockSize}
	shards := memShards(writeSegment(b, l, data, false, rng))
	b.ReportAllocs()
	b.SetBytes(16 << 10)
	for b.Loop() {
		off := rng.Int64N(seg - 16<<10)
		r, err := erasure.NewReader(context.Background(), l, seg, off, 16<<10, shards.open, erasure.ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
