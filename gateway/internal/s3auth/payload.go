package s3auth

import (
	"crypto/sha256"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
)

// x-amz-content-sha256 values other than a hex digest.
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSA           = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSATrailer    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"

	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

var errBadPayloadHash = s3err.ErrInvalidArgument.WithMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.")

// payloadHash returns the payload hash the signature covers: the
// x-amz-content-sha256 header for header signatures, UNSIGNED-PAYLOAD (or
// an X-Amz-Content-Sha256 parameter) for presigned URLs.
func payloadHash(r *http.Request, presigned bool, q params) (string, error) {
	var p string
	if presigned {
		p, _ = q.get("X-Amz-Content-Sha256")
		if p == "" {
			return unsignedPayload, nil
		}
	} else {
		p = r.Header.Get("X-Amz-Content-Sha256")
		if p == "" {
			// S3 requires the header. Signers written for other services
			// omit it and sign the body's hash instead, which is knowable
			// without reading the body only when there is none.
			if r.ContentLength != 0 {
				return "", s3err.ErrInvalidRequest.WithMessage("Missing required header for this request: x-amz-content-sha256")
			}
			return emptySHA256, nil
		}
	}
	return p, checkPayloadHash(p)
}

func checkPayloadHash(p string) error {
	switch p {
	case unsignedPayload, streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer:
		return nil
	case streamingECDSA, streamingECDSATrailer:
		return errUnsupportedMechanism
	}
	if _, ok := decodeHex32(p, true); !ok {
		return errBadPayloadHash
	}
	return nil
}

// signer is what a verified request signature leaves for its body: the
// signing key and the seed of the aws-chunked signature chain.
type signer struct {
	amzDate, scope string
	key            *[32]byte
	seed           [32]byte
}

// attachBody sets res.Body, res.DecodedLength and res.TrailerChecksum for
// the payload mode. s is nil for anonymous requests.
func (v *Verifier) attachBody(r *http.Request, res *Result, payload string, s *signer) error {
	res.DecodedLength = r.ContentLength
	trailer, hasTrailer := r.Header["X-Amz-Trailer"]
	if hasTrailer && payload != streamingSignedTrailer && payload != streamingUnsignedTrailer {
		return s3err.ErrMalformedTrailer.WithMessage("x-amz-trailer requires an aws-chunked body with trailers (x-amz-content-sha256: STREAMING-...-TRAILER).")
	}
	switch payload {
	case unsignedPayload:
		return nil
	case streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer:
	default:
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			// Nothing to read, and net/http guarantees there is nothing.
			if !strings.EqualFold(payload, emptySHA256) {
				return s3err.ErrXAmzContentSHA256Mismatch
			}
			return nil
		}
		want, _ := decodeHex32(payload, true) // checked by checkPayloadHash
		res.Body = &sha256Reader{body: r.Body, h: sha256.New(), want: want, length: r.ContentLength}
		return nil
	}

	// aws-chunked.
	var chain *chainSigner
	if payload != streamingUnsignedTrailer {
		if s == nil {
			return s3err.ErrAccessDenied.WithMessage("A signed aws-chunked body requires a signed request.")
		}
		chain = &chainSigner{key: s.key, amzDate: s.amzDate, scope: s.scope, seed: s.seed}
	}
	declared := int64(-1)
	if dl := r.Header.Get("X-Amz-Decoded-Content-Length"); dl != "" {
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return s3err.ErrMissingContentLength.WithMessage("x-amz-decoded-content-length must be a non-negative integer.")
		}
		declared = n
	}
	alg := s3checksum.None
	if hasTrailer {
		var err error
		if alg, err = trailerAlgorithm(trailer, r.Header); err != nil {
			return err
		}
	}
	if r.Body == nil {
		return s3err.ErrIncompleteBody
	}
	c := v.newChunkedReader(r.Body, chain, payload != streamingSigned, alg, declared)
	res.Body = c
	res.chunked = c
	res.DecodedLength = declared
	res.TrailerChecksum = alg
	return nil
}

// trailerAlgorithm returns the checksum declared by x-amz-trailer. S3
// supports exactly one trailer, a checksum; it cannot be combined with a
// checksum header.
func trailerAlgorithm(trailer []string, h http.Header) (s3checksum.Algorithm, error) {
	var name string
	n := 0
	for _, v := range trailer {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				name = f
				n++
			}
		}
	}
	switch {
	case n == 0:
		return s3checksum.None, nil
	case n > 1:
		return s3checksum.None, errMultipleChecksums
	}
	alg := s3checksum.ForHeader(name)
	if alg == s3checksum.None {
		return s3checksum.None, s3err.ErrInvalidRequest.WithMessage("The value specified in the x-amz-trailer header is not supported")
	}
	for a := s3checksum.CRC32; a <= s3checksum.SHA256; a++ {
		if h.Get(a.Header()) != "" {
			return s3checksum.None, errMultipleChecksums
		}
	}
	if sdk := h.Get("X-Amz-Sdk-Checksum-Algorithm"); sdk != "" && !strings.EqualFold(sdk, alg.String()) {
		return s3checksum.None, s3err.ErrInvalidRequest.WithMessage("Value for x-amz-sdk-checksum-algorithm header is invalid.")
	}
	return alg, nil
}

var errMultipleChecksums = s3err.ErrInvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")

// sha256Reader verifies that a body hashes to its x-amz-content-sha256.
type sha256Reader struct {
	body   io.ReadCloser
	h      hash.Hash
	want   [sha256.Size]byte
	n      int64
	length int64 // Content-Length, -1 if unknown
	done   bool  // verified
	err    error // sticky
}

func (s *sha256Reader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.body.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if s.done && n > 0 {
		// More than Content-Length: not possible from net/http, but the
		// verified hash no longer covers what was read.
		err = s3err.ErrXAmzContentSHA256Mismatch
	}
	// Verify as soon as Content-Length bytes are in, so that a caller
	// reading exactly that much is covered without a further Read.
	if !s.done && (err == io.EOF || s.length >= 0 && s.n == s.length) {
		s.done = true
		var got [sha256.Size]byte
		if s.h.Sum(got[:0]); got != s.want {
			err = s3err.ErrXAmzContentSHA256Mismatch
		}
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

func (s *sha256Reader) Close() error { return s.body.Close() }

// ContentEncoding returns the Content-Encoding to store with an uploaded
// object: the request's, without the aws-chunked coding, which describes
// only how the body travelled. Storing it would make the object unreadable
// to clients that honour it.
func ContentEncoding(h http.Header) string {
	vals := h.Values("Content-Encoding")
	var kept []string
	for _, v := range vals {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "aws-chunked") {
				kept = append(kept, c)
			}
		}
	}
	return strings.Join(kept, ",")
}
