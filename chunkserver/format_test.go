package chunkserver

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, bs := range []int{1, 7, 4096, 65536, 100000} {
		for _, n := range []int{0, 1, bs - 1, bs, bs + 1, 3*bs + 5, len(data)} {
			if n < 0 || n > len(data) {
				continue
			}
			var whole uint32
			for off := 0; off < n; off += bs {
				blk := data[off:min(off+bs, n)]
				whole = crcCombine(whole, crc32.Checksum(blk, castagnoli), crcShift(int64(len(blk))))
			}
			if want := crc32.Checksum(data[:n], castagnoli); whole != want {
				t.Errorf("block %d, len %d: combined %08x, want %08x", bs, n, whole, want)
			}
		}
	}
}

func TestDataLenOf(t *testing.T) {
	for _, bs := range []int64{4096, 65536} {
		for _, d := range []int64{0, 1, bs - 1, bs, bs + 1, 2*bs - 1, 2 * bs, 1000*bs + 17} {
			if got := dataLenOf(fileSize(d, bs), bs); got != d {
				t.Errorf("block %d: dataLenOf(fileSize(%d)) = %d", bs, d, got)
			}
		}
		// Sizes no data length produces.
		for _, n := range []int64{0, 31, fileSize(bs, bs) + 1} {
			if got := dataLenOf(n, bs); got != -1 {
				t.Errorf("block %d: dataLenOf(%d) = %d, want -1", bs, n, got)
			}
		}
	}
}

func TestFooter(t *testing.T) {
	f := footer{dataLen: 100000, blockSize: 65536, blocks: 2}
	size := fileSize(f.dataLen, f.blockSize)
	p := appendFooter(nil, f)
	got, err := parseFooter(p, size)
	if err != nil || got != f {
		t.Fatalf("parseFooter = %+v, %v; want %+v", got, err, f)
	}
	if _, err := parseFooter(p, size+1); err == nil {
		t.Error("footer accepted for a file of the wrong size")
	}
	for i := range p {
		q := append([]byte(nil), p...)
		q[i] ^= 0x10
		if _, err := parseFooter(q, size); err == nil {
			t.Errorf("footer with byte %d flipped accepted", i)
		}
	}
}

func TestValidShardID(t *testing.T) {
	seg := "0123456789abcdef0123456789abcdef"
	good := []string{seg + ".0", seg + ".9", seg + ".10", seg + ".255", ShardID(seg, 17)}
	bad := []string{"", seg, seg + ".", seg + ".256", seg + ".01", seg + ".-1", seg + ".1a",
		"0123456789ABCDEF0123456789abcdef.1", seg[1:] + ".1", seg + "0.1", "../x", "a/b",
		seg[:30] + "/..1", seg + ".1/", "0123456789abcdef0123456789abcdeg.1", seg + ".1000"}
	for _, id := range good {
		if !ValidShardID(id) {
			t.Errorf("ValidShardID(%q) = false", id)
		}
	}
	for _, id := range bad {
		if ValidShardID(id) {
			t.Errorf("ValidShardID(%q) = true", id)
		}
	}
}
