package chunkserver

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// The shard file format is described in the package documentation
// (doc.go). The footer is at the end, not a header at the start, because
// the writer does not know the checksums until it has streamed all data.
const (
	footerSize    = 32
	formatVersion = 1
	footerMagic   = "TLSH"

	// defaultBlockSize is the checksum granularity. Smaller blocks read
	// less for small ranges; larger ones make the table smaller. At 64 KiB
	// the table is 0.006% of the data, and a random 4 KiB range read
	// (which reads and checksums one or two whole blocks) took 84µs over
	// loopback HTTP against 75µs with 16 KiB blocks, 127µs with 256 KiB
	// and 402µs with 1 MiB (BenchmarkBlockSize).
	defaultBlockSize = 64 << 10

	// minBlockSize and maxBlockSize bound the block sizes a footer may
	// declare, so that a corrupt footer cannot make us allocate wildly.
	minBlockSize = 4 << 10
	maxBlockSize = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadFooter = errors.New("bad footer")

type footer struct {
	dataLen   int64
	blockSize int64
	blocks    int64
}

func numBlocks(dataLen, blockSize int64) int64 {
	return (dataLen + blockSize - 1) / blockSize
}

// fileSize is the size of the shard file holding dataLen bytes of data.
func fileSize(dataLen, blockSize int64) int64 {
	return dataLen + 4*numBlocks(dataLen, blockSize) + footerSize
}

// dataLenOf inverts fileSize: the data length of a shard file of size n
// written with blockSize, or -1 if no data length gives that size. It lets
// the inventory report sizes from a directory listing without opening
// every file.
func dataLenOf(n, blockSize int64) int64 {
	t := n - footerSize
	if t < 0 {
		return -1
	}
	// With k blocks, t = D + 4k where (k-1)*B < D <= k*B, so
	// k = ceil(t / (B+4)).
	d := t - 4*((t+blockSize+3)/(blockSize+4))
	if d < 0 || fileSize(d, blockSize) != n {
		return -1
	}
	return d
}

func appendFooter(b []byte, f footer) []byte {
	var p [footerSize]byte
	copy(p[0:4], footerMagic)
	binary.LittleEndian.PutUint32(p[4:8], formatVersion)
	binary.LittleEndian.PutUint64(p[8:16], uint64(f.dataLen))
	binary.LittleEndian.PutUint32(p[16:20], uint32(f.blockSize))
	binary.LittleEndian.PutUint32(p[20:24], uint32(f.blocks))
	binary.LittleEndian.PutUint32(p[28:32], crc32.Checksum(p[:28], castagnoli))
	return append(b, p[:]...)
}

// parseFooter decodes and checks the footer p of a file of size size.
func parseFooter(p []byte, size int64) (footer, error) {
	if len(p) != footerSize || string(p[0:4]) != footerMagic ||
		binary.LittleEndian.Uint32(p[28:32]) != crc32.Checksum(p[:28], castagnoli) {
		return footer{}, errBadFooter
	}
	if binary.LittleEndian.Uint32(p[4:8]) != formatVersion {
		return footer{}, errBadFooter
	}
	f := footer{
		dataLen:   int64(binary.LittleEndian.Uint64(p[8:16])),
		blockSize: int64(binary.LittleEndian.Uint32(p[16:20])),
		blocks:    int64(binary.LittleEndian.Uint32(p[20:24])),
	}
	if f.blockSize < minBlockSize || f.blockSize > maxBlockSize || f.dataLen < 0 ||
		f.blocks != numBlocks(f.dataLen, f.blockSize) || fileSize(f.dataLen, f.blockSize) != size {
		return footer{}, errBadFooter
	}
	return f, nil
}

// CRC32C combination, after zlib's crc32_combine: the CRC of A||B is
// derived from crc(A), crc(B) and len(B) by multiplying crc(A) by
// x^(8*len(B)) modulo the polynomial. The server gets the checksum of a
// whole shard body from its per-block checksums this way, instead of
// running the CRC over every byte a second time.

const castagnoliReversed = 0x82f63b78

// x2nTable[k] = x^(2^k) mod P, in reflected bit order.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < 32; k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// multModP returns a*b mod P, reflected.
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// crcShift returns the operator for appending n bytes: x^(8n) mod P.
func crcShift(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; k++ {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
	}
	return p
}

// crcCombine returns the CRC of A||B given crc(A), crc(B) and
// op = crcShift(len(B)).
func crcCombine(crcA, crcB, op uint32) uint32 {
	return multModP(op, crcA) ^ crcB
}
