package s3checksum

import (
	"bytes"
	"encoding/base64"
	"hash"
	"io"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

// Reader computes a checksum of everything read through it. Given an
// expected value, it verifies the data at the end: the Read that reaches the
// end of the stream returns BadDigest instead of io.EOF on a mismatch, so a
// caller that commits only after io.EOF never stores corrupt data.
//
// Readers nest: wrap one in another to compute several algorithms (say MD5
// for the ETag and the client's CRC32) in a single pass.
type Reader struct {
	r    io.Reader
	alg  Algorithm
	h    hash.Hash
	want []byte // nil: compute only
	sum  []byte // set at EOF
	err  error  // sticky
}

// NewReader returns a Reader computing alg over r. want is the expected
// base64 value, or "" to compute without verifying. A want that is not a
// valid digest of alg is rejected up front: InvalidDigest for Content-MD5,
// InvalidRequest for the x-amz-checksum algorithms, as S3 does.
func NewReader(r io.Reader, alg Algorithm, want string) (*Reader, error) {
	h := alg.New()
	if h == nil {
		return nil, s3err.ErrInvalidArgument.WithMessage("no checksum algorithm")
	}
	cr := &Reader{r: r, alg: alg, h: h}
	if want != "" {
		sum, ok := alg.Decode(want)
		if !ok {
			if alg == MD5 {
				return nil, s3err.ErrInvalidDigest
			}
			return nil, s3err.ErrInvalidRequest.WithMessage("Value for " + alg.Header() + " header is invalid.")
		}
		cr.want = sum
	}
	return cr, nil
}

// Read reads from the underlying reader, hashing what it returns. When that
// reader reports io.EOF, Read finishes the checksum and, if it does not
// match the expected value, returns alg.Mismatch() in place of io.EOF.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.h.Write(p[:n])
	}
	if err == io.EOF {
		r.sum = r.h.Sum(nil)
		if r.want != nil && !bytes.Equal(r.sum, r.want) {
			err = r.alg.Mismatch()
		}
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

// Algorithm returns the algorithm r computes.
func (r *Reader) Algorithm() Algorithm { return r.alg }

// Sum returns the digest of the whole stream once Read has reached its end,
// and nil before.
func (r *Reader) Sum() []byte { return r.sum }

// Value returns Sum base64-encoded, the form S3 headers carry, or "" before
// the end of the stream.
func (r *Reader) Value() string {
	if r.sum == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(r.sum)
}
