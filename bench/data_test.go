package bench

import (
	"bytes"
	"compress/flate"
	"io"
	"testing"
)

func TestBodyDeterministicAcrossReadSizes(t *testing.T) {
	g := NewGenerator(1)
	const size = 3*blockSize + 12345
	whole, err := io.ReadAll(g.Body(7, size))
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) != size {
		t.Fatalf("read %d bytes, want %d", len(whole), size)
	}
	// Odd read sizes cross block boundaries at every phase.
	for _, chunk := range []int{1, 7, 4095, blockSize + 1} {
		b := g.Body(7, size)
		var got []byte
		buf := make([]byte, chunk)
		for {
			n, err := b.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, whole) {
			t.Fatalf("reading %d bytes at a time gives different content", chunk)
		}
	}
	b := g.Body(7, size)
	if _, err := b.Seek(blockSize+5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(b)
	if !bytes.Equal(rest, whole[blockSize+5:]) {
		t.Fatal("content after Seek differs")
	}
	if end, _ := b.Seek(0, io.SeekEnd); end != size {
		t.Fatalf("Seek to end = %d, want %d", end, size)
	}
}

func TestBodiesDifferAndDoNotCompress(t *testing.T) {
	g := NewGenerator(1)
	const size = 4 * blockSize
	x, _ := io.ReadAll(g.Body(1, size))
	y, _ := io.ReadAll(g.Body(2, size))
	if bytes.Equal(x, y) {
		t.Fatal("bodies of different seeds are equal")
	}
	for i := 1; i < 4; i++ {
		if bytes.Equal(x[:blockSize], x[i*blockSize:(i+1)*blockSize]) {
			t.Fatalf("block %d repeats block 0", i)
		}
	}
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(x)
	w.Close()
	if z.Len() < size*99/100 {
		t.Fatalf("%d bytes compress to %d", size, z.Len())
	}
	if x2, _ := io.ReadAll(NewGenerator(1).Body(1, size)); !bytes.Equal(x, x2) {
		t.Fatal("the same seeds give different bodies")
	}
}

// BenchmarkGenerator measures how fast bodies are generated, to compare with
// the throughput of the store under test: the generator must never be what
// limits a run.
//
//	go test -run '^$' -bench Generator ./bench/
func BenchmarkGenerator(b *testing.B) {
	g := NewGenerator(1)
	for _, n := range []int{4 << 10, 1 << 20, 64 << 20} {
		b.Run(FormatSize(int64(n)), func(b *testing.B) {
			buf := make([]byte, 256<<10)
			body := &Body{g: g}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			seed := uint64(0)
			for b.Loop() {
				seed++
				body.Reset(seed, int64(n))
				for {
					if _, err := body.Read(buf); err == io.EOF {
						break
					}
				}
			}
		})
	}
}
