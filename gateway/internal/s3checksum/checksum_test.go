package s3checksum

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// The CRC "check" values: the checksum of the ASCII digits "123456789".
// CRC-64/NVME's is the one AWS documents for its crc64nvme.
func TestCheckValues(t *testing.T) {
	for _, tc := range []struct {
		alg  Algorithm
		want []byte
	}{
		{CRC32, be32(0xcbf43926)},
		{CRC32C, be32(0xe3069283)},
		{CRC64NVME, be64(0xae8b14860a799888)},
		{SHA1, mustHex("f7c3bc1d808e04732adf679965ccc34ca7ae3441")},
		{SHA256, mustHex("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225")},
		{MD5, mustHex("25f9e794323b453885f5181f1b624d0b")},
	} {
		h := tc.alg.New()
		io.WriteString(h, "123456789")
		if got := h.Sum(nil); !bytes.Equal(got, tc.want) || len(got) != tc.alg.Size() {
			t.Errorf("%v(123456789) = %x, want %x", tc.alg, got, tc.want)
		}
	}
}

// CRC-64/NVME is the reflected CRC-64 with polynomial 0xad93d23594c93659;
// the package's (vectorised) implementation must agree with the textbook
// one on arbitrary data.
func TestCRC64NVMEMatchesReference(t *testing.T) {
	const reversedPoly = 0x9a6c9329ac4bc9b5 // 0xad93d23594c93659 bit-reversed
	table := crc64.MakeTable(reversedPoly)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 8, 63, 64, 65, 255, 4096, 100003} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		h := CRC64NVME.New()
		h.Write(data[:n/3])
		h.Write(data[n/3:])
		if got, want := h.Sum(nil), be64(crc64.Checksum(data, table)); !bytes.Equal(got, want) {
			t.Errorf("len %d: %x, reference %x", n, got, want)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestNames(t *testing.T) {
	for a := CRC32; a <= SHA256; a++ {
		got, err := ParseAlgorithm(strings.ToLower(a.String()))
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", strings.ToLower(a.String()), got, err)
		}
		if ForHeader(strings.ToUpper(a.Header())) != a {
			t.Errorf("ForHeader(%q) != %v", a.Header(), a)
		}
		if a.Header() != "x-amz-checksum-"+strings.ToLower(a.String()) {
			t.Errorf("%v.Header() = %q", a, a.Header())
		}
		if http.CanonicalHeaderKey(a.Header()) != algorithms[a].canon {
			t.Errorf("%v: canonical header key %q", a, algorithms[a].canon)
		}
	}
	for _, bad := range []string{"", "MD5", "CRC16", "x"} {
		if _, err := ParseAlgorithm(bad); !errors.Is(err, s3err.ErrInvalidArgument) {
			t.Errorf("ParseAlgorithm(%q) error = %v", bad, err)
		}
	}
	for _, notChecksum := range []string{"x-amz-checksum-type", "x-amz-checksum-mode", "x-amz-checksum-algorithm", "content-md5"} {
		if ForHeader(notChecksum) != None {
			t.Errorf("ForHeader(%q) is a checksum", notChecksum)
		}
	}
}

func sumOf(a Algorithm, data []byte) string {
	h := a.New()
	h.Write(data)
	return b64(h.Sum(nil))
}

func TestReader(t *testing.T) {
	data := bytes.Repeat([]byte("talus checksum "), 10000)
	for a := CRC32; a <= MD5; a++ {
		good := sumOf(a, data)

		// Verified, read in awkward pieces.
		r, err := NewReader(iotest.HalfReader(bytes.NewReader(data)), a, good)
		if err != nil {
			t.Fatal(err)
		}
		if r.Value() != "" {
			t.Errorf("%v: value before EOF", a)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%v: read %d bytes, %v", a, len(got), err)
		}
		if r.Value() != good || r.Algorithm() != a {
			t.Errorf("%v: Value() = %q, want %q", a, r.Value(), good)
		}

		// Compute only.
		r, _ = NewReader(bytes.NewReader(data), a, "")
		io.Copy(io.Discard, r)
		if r.Value() != good {
			t.Errorf("%v: computed %q, want %q", a, r.Value(), good)
		}

		// One flipped bit: BadDigest at EOF, not before.
		bad := bytes.Clone(data)
		bad[len(bad)/2] ^= 1
		r, _ = NewReader(bytes.NewReader(bad), a, good)
		got, err = io.ReadAll(r)
		if !errors.Is(err, s3err.ErrBadDigest) || len(got) != len(bad) {
			t.Fatalf("%v: tampered data: %d bytes, %v", a, len(got), err)
		}
		var e *s3err.Error
		errors.As(err, &e)
		if a != MD5 && !strings.Contains(e.Message, a.String()) {
			t.Errorf("%v: message %q does not name the algorithm", a, e.Message)
		}
		if _, err := r.Read(make([]byte, 1)); !errors.Is(err, s3err.ErrBadDigest) {
			t.Errorf("%v: error not sticky: %v", a, err)
		}
	}
}

func TestReaderRejectsMalformedValues(t *testing.T) {
	for _, tc := range []struct {
		alg  Algorithm
		val  string
		want *s3err.Error
	}{
		{MD5, "not base64!", s3err.ErrInvalidDigest},
		{MD5, b64([]byte("short")), s3err.ErrInvalidDigest},
		{CRC32, b64(be64(1)), s3err.ErrInvalidRequest},
		{CRC64NVME, "AAAA", s3err.ErrInvalidRequest},
		{SHA256, "%%%%", s3err.ErrInvalidRequest},
	} {
		if _, err := NewReader(strings.NewReader(""), tc.alg, tc.val); !errors.Is(err, tc.want) {
			t.Errorf("%v %q: %v, want %v", tc.alg, tc.val, err, tc.want.Code)
		}
	}
	if _, err := NewReader(strings.NewReader(""), None, ""); err == nil {
		t.Error("NewReader accepted None")
	}
}

func TestFromHeader(t *testing.T) {
	data := []byte("abc")
	crc := sumOf(CRC32, data)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		alg     Algorithm
		value   string
		err     *s3err.Error
	}{
		{"none", map[string]string{"X-Amz-Checksum-Mode": "ENABLED", "X-Amz-Checksum-Type": "FULL_OBJECT"}, None, "", nil},
		{"crc32", map[string]string{"x-amz-checksum-crc32": crc}, CRC32, crc, nil},
		{"with sdk header", map[string]string{"x-amz-checksum-crc32": crc, "x-amz-sdk-checksum-algorithm": "crc32"}, CRC32, crc, nil},
		{"sdk header disagrees", map[string]string{"x-amz-checksum-crc32": crc, "x-amz-sdk-checksum-algorithm": "SHA256"}, None, "", s3err.ErrInvalidRequest},
		{"two algorithms", map[string]string{"x-amz-checksum-crc32": crc, "x-amz-checksum-sha1": sumOf(SHA1, data)}, None, "", s3err.ErrInvalidRequest},
		{"malformed", map[string]string{"x-amz-checksum-crc64nvme": crc}, None, "", s3err.ErrInvalidRequest},
	} {
		h := http.Header{}
		for k, v := range tc.headers {
			h.Set(k, v)
		}
		alg, value, err := FromHeader(h)
		if alg != tc.alg || value != tc.value || (tc.err == nil) != (err == nil) || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v %q %v", tc.name, alg, value, err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	data := bytes.Repeat([]byte{0xa5}, 8<<20)
	buf := make([]byte, 1<<20)
	for a := CRC32; a <= MD5; a++ {
		b.Run(a.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			src := bytes.NewReader(data)
			for b.Loop() {
				src.Reset(data)
				r, _ := NewReader(src, a, "")
				io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
			}
		})
	}
}
