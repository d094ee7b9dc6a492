package mount_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/mount"
)

// The sequential benchmarks compare the mount with the native client in the
// same run, on the same in-process cluster: each iteration moves one file of
// -mount.benchsize bytes both ways and reports both rates and their ratio.
//
//	go test -run '^$' -bench Sequential -benchtime 1x -mount.benchsize 2GiB ./mount/
var (
	benchSize   = flag.String("mount.benchsize", "1GiB", "file size of the sequential mount benchmarks (MiB or GiB suffix)")
	benchDirect = flag.Bool("mount.directio", false, "mount with Options.DirectIO in the sequential benchmarks")
)

const benchBlock = 1 << 20 // what fio, dd bs=1M and cp hand the kernel at a time

func benchBytes(b *testing.B) int64 {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(*benchSize, "%d%s", &n, &unit); err != nil {
		b.Fatalf("-mount.benchsize %q: %v", *benchSize, err)
	}
	switch unit {
	case "MiB":
		return n << 20
	case "GiB":
		return n << 30
	}
	b.Fatalf("-mount.benchsize %q: unit must be MiB or GiB", *benchSize)
	return 0
}

// benchBody is size bytes of incompressible data, cycling through one block
// (the cluster neither compresses nor deduplicates, so this costs what fresh
// data would).
type benchBody struct {
	block []byte
	left  int64
}

func newBenchBlock() []byte {
	block := make([]byte, benchBlock)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(block); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			block[i+j] = byte(v >> (8 * j))
		}
	}
	return block
}

func (r *benchBody) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), r.left)], r.block)
	r.left -= int64(n)
	return n, nil
}

type rates struct{ native, mount time.Duration }

func (r rates) report(b *testing.B, size int64) {
	mibs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mibs(r.native), "native-MiB/s")
	b.ReportMetric(mibs(r.mount), "mount-MiB/s")
	b.ReportMetric(r.native.Seconds()/r.mount.Seconds(), "mount/native")
	b.ReportMetric(0, "ns/op")
}

// The mount and the native client take turns of benchTurn bytes, so that
// both see the same load from whatever else runs on the machine. A turn is
// long because the mount's background work (the kernel's and the mount's
// read-ahead, up to 16 MiB; the upload queue, up to 8 MiB) runs on into the
// native client's turn. The native client moves benchStep bytes per object
// or range, as in `talus bench put|get --size 64MiB --concurrency 1`.
const (
	benchTurn = 512 << 20
	benchStep = 64 << 20
)

// BenchmarkSequentialWrite writes a file front to back in 1 MiB writes
// through the mount (close included: that is when it is stored), taking
// turns with the native client, which puts as many bytes as 64 MiB objects.
func BenchmarkSequentialWrite(b *testing.B) {
	size := benchBytes(b)
	bucket := newBucket(b)
	dir := mountAt(b, bucket, mount.Options{DirectIO: *benchDirect})
	block := newBenchBlock()
	ctx := context.Background()
	var r rates
	b.ResetTimer()
	for i := range b.N {
		name := filepath.Join(dir, fmt.Sprintf("mount-%d", i))
		t := time.Now()
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		r.mount += time.Since(t)
		for turn := int64(0); turn < size; turn += benchTurn {
			end := min(turn+benchTurn, size)
			t = time.Now()
			for left := end - turn; left > 0; left -= benchBlock {
				if _, err := f.Write(block[:min(left, benchBlock)]); err != nil {
					b.Fatal(err)
				}
			}
			r.mount += time.Since(t)

			for off := turn; off < end; off += benchStep {
				step := min(benchStep, end-off)
				key := fmt.Sprintf("native-%d-%d", i, off)
				t = time.Now()
				if _, err := env.client.Put(ctx, bucket, key, &benchBody{block: block, left: step}, step, client.PutOptions{}); err != nil {
					b.Fatal(err)
				}
				r.native += time.Since(t)
				b.StopTimer()
				env.client.Delete(ctx, bucket, key)
				b.StartTimer()
			}
		}
		t = time.Now()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		r.mount += time.Since(t)

		b.StopTimer()
		os.Remove(name)
		b.StartTimer()
	}
	r.report(b, size)
}

// BenchmarkSequentialRead reads one stored object front to back in 1 MiB
// reads through the mount, taking turns with the native client, which gets
// the same bytes in 64 MiB ranges.
func BenchmarkSequentialRead(b *testing.B) {
	size := benchBytes(b)
	bucket := newBucket(b)
	dir := mountAt(b, bucket, mount.Options{DirectIO: *benchDirect})
	ctx := context.Background()
	if _, err := env.client.Put(ctx, bucket, "big", &benchBody{block: newBenchBlock(), left: size}, size, client.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchBlock)
	var r rates
	b.ResetTimer()
	for range b.N {
		t := time.Now()
		f, err := os.Open(filepath.Join(dir, "big"))
		if err != nil {
			b.Fatal(err)
		}
		r.mount += time.Since(t)
		for turn := int64(0); turn < size; turn += benchTurn {
			end := min(turn+benchTurn, size)
			t = time.Now()
			n, err := drain(io.LimitReader(f, end-turn), buf)
			if err != nil || n != end-turn {
				b.Fatalf("mount read at %d: %d of %d bytes: %v", turn, n, end-turn, err)
			}
			r.mount += time.Since(t)

			for off := turn; off < end; off += benchStep {
				step := min(benchStep, end-off)
				t = time.Now()
				rd, err := env.client.Get(ctx, bucket, "big", off, step)
				if err != nil {
					b.Fatal(err)
				}
				n, err := drain(rd, buf)
				rd.Close()
				if err != nil || n != step {
					b.Fatalf("native get at %d: %d of %d bytes: %v", off, n, step, err)
				}
				r.native += time.Since(t)
			}
		}
		f.Close()
	}
	r.report(b, size)
}

// drain reads r to its end in reads of len(buf) (io.Copy to io.Discard
// would read 8 KiB at a time).
func drain(r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
