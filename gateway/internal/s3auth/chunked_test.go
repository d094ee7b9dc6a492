package s3auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
)

// testChain signs aws-chunked bodies for tests. It is written from the
// AWS documentation independently of chainSigner, and checked against the
// documented signatures in TestTestChainMatchesDocs.
type testChain struct {
	key            []byte
	amzDate, scope string
	prev           string // hex
}

func newTestChain(secret, amzDate, region, seed string) *testChain {
	k := deriveSigningKey(secret, amzDate[:8], region)
	return &testChain{key: k[:], amzDate: amzDate, scope: amzDate[:8] + "/" + region + "/s3/aws4_request", prev: seed}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (c *testChain) sign(parts ...string) string {
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(strings.Join(parts, "\n")))
	c.prev = hex.EncodeToString(mac.Sum(nil))
	return c.prev
}

func (c *testChain) chunk(data []byte) string {
	return c.sign("AWS4-HMAC-SHA256-PAYLOAD", c.amzDate, c.scope, c.prev, emptySHA256, hexSHA256(data))
}

func (c *testChain) trailer(canonical string) string {
	return c.sign("AWS4-HMAC-SHA256-TRAILER", c.amzDate, c.scope, c.prev, hexSHA256([]byte(canonical)))
}

// encodeChunked frames data as aws-chunked in chunks of size bytes, signed
// if c is not nil, with trailer lines ("name:value") if given; a signed
// body with trailers gets a trailer signature.
func encodeChunked(data []byte, size int, c *testChain, trailers ...string) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(size, len(data))
		fmt.Fprintf(&b, "%x", n)
		if c != nil {
			b.WriteString(";chunk-signature=" + c.chunk(data[:n]))
		}
		b.WriteString("\r\n")
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	b.WriteString("0")
	if c != nil {
		b.WriteString(";chunk-signature=" + c.chunk(nil))
	}
	b.WriteString("\r\n")
	var canonical string
	for _, t := range trailers {
		b.WriteString(t + "\r\n")
		canonical += t + "\n"
	}
	if c != nil && len(trailers) > 0 {
		b.WriteString("x-amz-trailer-signature:" + c.trailer(canonical) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func TestTestChainMatchesDocs(t *testing.T) {
	c := newTestChain(docSecret, docDate, "us-east-1", "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	got := encodeChunked(bytes.Repeat([]byte("a"), 66560), 65536, c)
	if !bytes.Equal(got, docChunked().body) {
		t.Fatal("the test encoder does not reproduce the documented body")
	}
}

// docChain returns the verifier's chain for the AWS examples, seeded with
// seed.
func docChain(seed string) *chainSigner {
	s, _ := decodeSignature(seed)
	return &chainSigner{
		key:     deriveSigningKey(docSecret, "20130524", "us-east-1"),
		amzDate: docDate,
		scope:   "20130524/us-east-1/s3/aws4_request",
		seed:    s,
	}
}

// The AWS documentation's signed upload with a trailing checksum
// ("Signature Calculation: Including Trailing Headers"), from its seed
// signature on.
func TestDocumentedSignedTrailer(t *testing.T) {
	data := bytes.Repeat([]byte("a"), 66560)
	var body bytes.Buffer
	body.WriteString("10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n")
	body.Write(data[:65536])
	body.WriteString("\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n")
	body.Write(data[65536:])
	body.WriteString("\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n")
	body.WriteString("x-amz-checksum-crc32c:sOO8/Q==\r\n")
	body.WriteString("x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n")
	const seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"

	v := &Verifier{}
	c := v.newChunkedReader(io.NopCloser(bytes.NewReader(body.Bytes())), docChain(seed), true, s3checksum.CRC32C, 66560)
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	if c.trailerValue != "sOO8/Q==" {
		t.Errorf("trailer value %q", c.trailerValue)
	}

	// The same with the trailer changed: the trailer signature no longer
	// matches, whatever the checksum says.
	tampered := bytes.Replace(body.Bytes(), []byte("sOO8/Q=="), []byte("sOO8/Q=A"), 1)
	c = v.newChunkedReader(io.NopCloser(bytes.NewReader(tampered)), docChain(seed), true, s3checksum.CRC32C, 66560)
	_, err = io.ReadAll(c)
	wantCode(t, "tampered trailer", err, "SignatureDoesNotMatch")

	// And the test encoder agrees with the documentation.
	enc := encodeChunked(data, 65536, newTestChain(docSecret, docDate, "us-east-1", seed), "x-amz-checksum-crc32c:sOO8/Q==")
	if !bytes.Equal(enc, body.Bytes()) {
		t.Error("the test encoder does not reproduce the documented trailer body")
	}
}

// decode runs an unsigned-trailer body (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
// through the decoder.
func decode(body string, alg s3checksum.Algorithm, declared int64) ([]byte, *chunkedReader, error) {
	v := &Verifier{}
	c := v.newChunkedReader(io.NopCloser(strings.NewReader(body)), nil, true, alg, declared)
	got, err := io.ReadAll(c)
	return got, c, err
}

// Malformed unsigned-trailer bodies, with the error S3 answers them with.
func TestUnsignedTrailerErrors(t *testing.T) {
	const crc64 = s3checksum.CRC64NVME
	for _, tc := range []struct {
		body     string
		alg      s3checksum.Algorithm
		declared int64
		code     string
	}{
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n", crc64, 5, ""},
		{"5\r\nhello\r\n0\r\nX-Amz-Checksum-CRC64NVME : M3eFcAZSQlc= \r\n\r\n", crc64, 5, ""},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n", crc64, -1, ""},
		{"5\r\nhello\r\n0\r\n\r\n", s3checksum.None, 5, ""},
		{"0\r\n\r\n", s3checksum.None, 0, ""},
		// minio-go ends trailer lines with a bare LF and adds an empty line.
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\n\r\n\r\n", crc64, 5, ""},

		{"5\r\nhello\r\n0\r\n\r\n", crc64, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\n:M3eFcAZSQlc=\r\n\r\n", crc64, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n", s3checksum.None, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\ninvalid_trailer:M3eFcAZSQlc=\r\n\r\n", crc64, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n", crc64, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n", crc64, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\nx-amz-trailer-signature:" + strings.Repeat("0", 64) + "\r\n\r\n", s3checksum.None, 5, "MalformedTrailerError"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:invalid_checksum\r\n\r\n", crc64, 5, "InvalidRequest"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:QFRKMGE3tuw=\r\n\r\n", crc64, 5, "BadDigest"},
		{"5\r\nhellp\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n", crc64, 5, "BadDigest"},

		{"A\ndummy data\r\n0\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\ndummy data0\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\nXYZ\r\ndummy data\r\n0\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"B\r\ndummy data\r\n0\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\ndummy data\r\n0\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\ndummy data\r\n0\r\nx-amz-checksum-crc64nvme:dPVWc2vU1+Q=\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\nA\r\ndummy data\r\n0\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"invalid_chunk_size\r\ndummy data\r\n0\r\nx-amz-checksum-crc64nvme:dPVWc2vU1+Q=\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"A\r\ndummy data\r\nJ\r\nx-amz-checksum-crc64nvme:dPVWc2vU1+Q=\r\n\r\n", crc64, 10, "IncompleteBody"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n", crc64, 6, "IncompleteBody"},
		{"5\r\nhello\r\n5\r\nhello\r\n0\r\n\r\n", s3checksum.None, 5, "IncompleteBody"},
		{"", s3checksum.None, -1, "IncompleteBody"},
		{"10000000000000000\r\n", s3checksum.None, -1, "IncompleteBody"},
		{strings.Repeat("0", chunkedBufferSize) + "5\r\nhello\r\n0\r\n\r\n", s3checksum.None, -1, "IncompleteBody"},
		{"5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:" + strings.Repeat("A", maxTrailerBytes) + "\r\n\r\n", crc64, 5, "MalformedTrailerError"},
	} {
		_, _, err := decode(tc.body, tc.alg, tc.declared)
		wantCode(t, fmt.Sprintf("%.60q", tc.body), err, tc.code)
	}
}

// However the body arrives and however it is read, the data comes out the
// same, and so do the failures.
func TestChunkedReadPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 20_000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	crc := s3checksum.CRC32.New()
	crc.Write(data)
	trailer := "x-amz-checksum-crc32:" + b64(crc.Sum(nil))
	const seed = "0000000000000000000000000000000000000000000000000000000000000000"
	v := &Verifier{}

	type source func(io.Reader) io.Reader
	sources := map[string]source{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"halves":   iotest.HalfReader,
	}
	for _, chunk := range []int{1000, 8 << 10, 64 << 10} {
		for _, signed := range []bool{false, true} {
			var chain *testChain
			if signed {
				chain = newTestChain(docSecret, docDate, "us-east-1", seed)
			}
			body := encodeChunked(data, chunk, chain, trailer)
			for name, src := range sources {
				for _, readSize := range []int{1, 7, 4096, 64 << 10} {
					var vc *chainSigner
					if signed {
						vc = docChain(seed)
					}
					c := v.newChunkedReader(io.NopCloser(src(bytes.NewReader(body))), vc, true, s3checksum.CRC32, int64(len(data)))
					got, err := readAllSized(c, readSize)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("chunk %d signed %v source %s reads of %d: %d bytes, %v", chunk, signed, name, readSize, len(got), err)
					}
					c.Close()
				}
			}
		}
	}
}

// readAllSized reads r to the end in reads of at most n bytes.
func readAllSized(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// A caller that reads exactly DecodedLength bytes, and looks at the error
// each Read returns, has had the whole body verified, chunk signatures and
// trailer included, without another Read. The error is sticky, so callers
// that drop it with the last bytes (io.ReadFull and io.CopyN do) get it
// from the next Read.
func TestChunkedVerifiedAtDecodedLength(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 5000)
	crc := s3checksum.CRC32C.New()
	crc.Write(data)
	good := b64(crc.Sum(nil))
	const seed = "1111111111111111111111111111111111111111111111111111111111111111"
	v := &Verifier{}
	for _, tc := range []struct {
		name    string
		trailer string
		code    string
	}{
		{"good", good, ""},
		// Signed, so that only the checksum can catch it.
		{"wrong checksum", "AAAAAA==", "BadDigest"},
	} {
		body := encodeChunked(data, 8192, newTestChain(docSecret, docDate, "us-east-1", seed), "x-amz-checksum-crc32c:"+tc.trailer)
		c := v.newChunkedReader(io.NopCloser(bytes.NewReader(body)), docChain(seed), true, s3checksum.CRC32C, int64(len(data)))
		buf := make([]byte, 3000)
		var err error
		for n := 0; n < len(data) && err == nil; {
			var k int
			k, err = c.Read(buf[:min(len(buf), len(data)-n)])
			n += k
		}
		if err == io.EOF {
			err = nil
		}
		wantCode(t, tc.name, err, tc.code)
		if tc.code == "" && c.trailerValue != good {
			t.Errorf("%s: trailer not verified after DecodedLength bytes", tc.name)
		}

		c = v.newChunkedReader(io.NopCloser(bytes.NewReader(body)), docChain(seed), true, s3checksum.CRC32C, int64(len(data)))
		if _, err := io.ReadFull(c, make([]byte, len(data))); err != nil {
			t.Fatalf("%s: ReadFull: %v", tc.name, err)
		}
		_, err = c.Read(buf)
		if err == io.EOF {
			err = nil
		}
		wantCode(t, tc.name+": read after io.ReadFull", err, tc.code)
	}
}

func TestChunkedClose(t *testing.T) {
	v := &Verifier{}
	body := &closeRecorder{Reader: strings.NewReader("5\r\nhello\r\n0\r\n\r\n")}
	c := v.newChunkedReader(body, nil, true, s3checksum.None, 5)
	if err := c.Close(); err != nil || !body.closed {
		t.Fatalf("Close: %v, closed %v", err, body.closed)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("read after Close: %v", err)
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// FuzzUnsignedChunked checks that no body makes the decoder panic, yield
// more than it was told to, or fail with anything but an S3 error.
func FuzzUnsignedChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc64nvme:M3eFcAZSQlc=\r\n\r\n"), int64(5))
	f.Add([]byte("A\r\ndummy data\r\nJ\r\n"), int64(10))
	f.Add([]byte("0\r\n\r\n"), int64(-1))
	f.Add([]byte("ffffffffffffffff\r\n"), int64(-1))
	f.Fuzz(func(t *testing.T, body []byte, declared int64) {
		if declared < -1 {
			declared = -1
		}
		got, _, err := decode(string(body), s3checksum.CRC64NVME, declared)
		if declared >= 0 && int64(len(got)) > declared {
			t.Fatalf("yielded %d bytes of %d", len(got), declared)
		}
		var e *s3err.Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error %v is not an S3 error", err)
		}
	})
}
