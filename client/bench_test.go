package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/dev"
)

// The native-client benchmarks run against a real in-process dev cluster (a
// metadata server and six chunk servers on loopback, 4+2). Run with e.g.
//
//	go test -run '^$' -bench . -benchtime 20x ./client/
//
// Each reports latency percentiles beside the throughput.

func benchCluster(b *testing.B) *client.Client {
	_, cl := startCluster(b, dev.Options{})
	mustBucket(b, cl, "bench")
	return cl
}

// runParallel runs op b.N times over conc goroutines and reports latencies.
func runParallel(b *testing.B, conc int, size int64, op func(i int) error) {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	b.SetBytes(size)
	b.ResetTimer()
	cpu0 := cpuTime()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				start := time.Now()
				if err := op(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if err := firstErr.Load(); err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// The whole process: client and cluster, as they share the machine.
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchPut(b *testing.B, size int64, conc int) {
	cl := benchCluster(b)
	data := randBytes(1, int(size))
	runParallel(b, conc, size, func(i int) error {
		_, err := cl.Put(context.Background(), "bench", fmt.Sprintf("o%d", i%64), bytes.NewReader(data), size, client.PutOptions{})
		return err
	})
}

func benchGet(b *testing.B, size int64, conc int) {
	cl := benchCluster(b)
	data := randBytes(1, int(size))
	for i := range 16 {
		put(b, cl, "bench", fmt.Sprintf("o%d", i), data)
	}
	runParallel(b, conc, size, func(i int) error {
		r, err := cl.Get(context.Background(), "bench", fmt.Sprintf("o%d", i%16), 0, -1)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		return err
	})
}

func BenchmarkPut64MiB(b *testing.B) { benchPut(b, 64<<20, 4) }
func BenchmarkGet64MiB(b *testing.B) { benchGet(b, 64<<20, 4) }
func BenchmarkPut1MiB(b *testing.B)  { benchPut(b, 1<<20, 16) }
func BenchmarkGet1MiB(b *testing.B)  { benchGet(b, 1<<20, 16) }
func BenchmarkPut4KiB(b *testing.B)  { benchPut(b, 4<<10, 32) }
func BenchmarkGet4KiB(b *testing.B)  { benchGet(b, 4<<10, 32) }
