package chunkserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU time per operation (client and server together)
// since start, which is what a 2-core box runs out of first.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// Benchmarks run one chunk server over loopback HTTP with one disk (a
// temp dir) and the client in the same process, so allocations and CPU
// include both ends.
//
//	go test -run '^$' -bench . -benchtime 2s ./chunkserver/

var benchSizes = []struct {
	name string
	n    int
}{{"16KiB", 16 << 10}, {"1MiB", 1 << 20}, {"16MiB", 16 << 20}}

func benchServer(b *testing.B, cfg Config) *testServer {
	cfg.Disks = []string{b.TempDir()}
	return start(b, cfg)
}

func benchPut(b *testing.B, cfg Config, n, parallel int) {
	ts := benchServer(b, cfg)
	data := randomBytes(n)
	ctx := context.Background()
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	if parallel <= 1 {
		for b.Loop() {
			if _, err := ts.c.Put(ctx, ts.addr, newShardID(), int64(n), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(parallel)
	b.RunParallel(func(pb *testing.PB) {
		r := bytes.NewReader(data)
		for pb.Next() {
			r.Reset(data)
			if _, err := ts.c.Put(ctx, ts.addr, newShardID(), int64(n), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchGet(b *testing.B, cfg Config, n, parallel int) {
	ts := benchServer(b, cfg)
	ids := make([]string, 16)
	for i := range ids {
		ids[i] = newShardID()
		ts.put(b, ids[i], randomBytes(n))
	}
	ctx := context.Background()
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	b.SetParallelism(parallel)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 256<<10)
		i := mrand.IntN(len(ids))
		for pb.Next() {
			i++
			rc, err := ts.c.Get(ctx, ts.addr, ids[i%len(ids)], 0, int64(n))
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
				b.Error(err)
			}
			rc.Close()
		}
	})
}

// BenchmarkPut stores shards one after another, durably (fdatasync of the
// file and fsync of its directory before answering).
func BenchmarkPut(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) { benchPut(b, Config{}, s.n, 1) })
	}
}

// BenchmarkPutParallel has 16 concurrent writers (8 per CPU).
func BenchmarkPutParallel(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) { benchPut(b, Config{}, s.n, 8) })
	}
}

// BenchmarkGet reads whole shards (from the page cache) with one reader;
// BenchmarkGetParallel with 16.
func BenchmarkGet(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) { benchGet(b, Config{}, s.n, 1) })
	}
}

func BenchmarkGetParallel(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) { benchGet(b, Config{}, s.n, 8) })
	}
}

// BenchmarkPutUnknownSize stores shards whose size the client does not
// give (Client.Put with size -1), from a reader that hides its length, next
// to the same with the size given.
func BenchmarkPutUnknownSize(b *testing.B) {
	for _, s := range benchSizes {
		for _, size := range []string{"known", "unknown"} {
			b.Run(s.name+"/"+size, func(b *testing.B) {
				ts := benchServer(b, Config{})
				data := randomBytes(s.n)
				n := int64(s.n)
				if size == "unknown" {
					n = -1
				}
				ctx := context.Background()
				r := bytes.NewReader(data)
				body := struct{ io.Reader }{r}
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				defer reportCPU(b, cpuTime())
				for b.Loop() {
					r.Reset(data)
					if _, err := ts.c.Put(ctx, ts.addr, newShardID(), n, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPutSync prices durability: "full" is the default (one group
// flush after the rename covers data and rename), "twice" also flushes
// the data before the rename (the scheme before; see writeShard for why
// once is enough), "none" is NoSync.
func BenchmarkPutSync(b *testing.B) {
	modes := []struct {
		name string
		cfg  Config
	}{
		{"full", Config{}},
		{"twice", Config{syncBeforeRename: true}},
		{"none", Config{NoSync: true}},
	}
	for _, par := range []int{1, 8} {
		for _, m := range modes {
			for _, s := range benchSizes[:2] {
				b.Run(fmt.Sprintf("%s/%s/par%d", m.name, s.name, par), func(b *testing.B) { benchPut(b, m.cfg, s.n, par) })
			}
		}
	}
}

// BenchmarkPutDirect compares writing shard data with O_DIRECT and
// through the page cache (both then fdatasync'ed), alternating the two
// servers op by op so that both see the same disk and machine weather.
// It reports wall time and process CPU per op for each.
func BenchmarkPutDirect(b *testing.B) {
	for _, n := range []int{16 << 10, 256 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			servers := []*testServer{
				benchServer(b, Config{directMin: 1}),
				benchServer(b, Config{noDirect: true}),
			}
			data := randomBytes(n)
			ctx := context.Background()
			var wall, cpu [2]time.Duration
			var ops [2]int
			b.SetBytes(int64(n))
			b.ResetTimer()
			i := 0
			for b.Loop() {
				m := i % 2
				i++
				ts := servers[m]
				c0, t0 := cpuTime(), time.Now()
				if _, err := ts.c.Put(ctx, ts.addr, newShardID(), int64(n), bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				wall[m] += time.Since(t0)
				cpu[m] += cpuTime() - c0
				ops[m]++
			}
			for m, name := range []string{"direct", "buffered"} {
				if ops[m] > 0 {
					b.ReportMetric(float64(wall[m].Microseconds())/float64(ops[m]), name+"-µs/op")
					b.ReportMetric(float64(cpu[m].Microseconds())/float64(ops[m]), name+"-cpu-µs/op")
				}
			}
		})
	}
}

// BenchmarkIOSize compares the per-request buffer size for big shards,
// without syncs so the buffer handling shows.
func BenchmarkIOSize(b *testing.B) {
	for _, io := range []int{64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("put/%dKiB", io>>10), func(b *testing.B) { benchPut(b, Config{NoSync: true, ioSize: io}, 16<<20, 1) })
		b.Run(fmt.Sprintf("get/%dKiB", io>>10), func(b *testing.B) { benchGet(b, Config{ioSize: io}, 16<<20, 1) })
	}
}

// BenchmarkBlockSize measures the checksum block size: 4 KiB random range
// reads (which read and verify whole blocks) and whole 16 MiB reads.
func BenchmarkBlockSize(b *testing.B) {
	for _, bs := range []int64{16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		cfg := Config{blockSize: bs, ioSize: int(max(bs, 256<<10))}
		b.Run(fmt.Sprintf("range4KiB/%dKiB", bs>>10), func(b *testing.B) {
			ts := benchServer(b, cfg)
			id := newShardID()
			const size = 16 << 20
			ts.put(b, id, randomBytes(size))
			ctx := context.Background()
			buf := make([]byte, 4<<10)
			b.SetBytes(4 << 10)
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				rc, err := ts.c.Get(ctx, ts.addr, id, mrand.Int64N(size-4<<10), 4<<10)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rc, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
		b.Run(fmt.Sprintf("get16MiB/%dKiB", bs>>10), func(b *testing.B) { benchGet(b, cfg, 16<<20, 1) })
	}
}
