package s3auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
	"github.com/talusfs/talus/gateway/internal/s3err"
)

// An aws-chunked body (Content-Encoding: aws-chunked) is
//
//	<hex size>[;chunk-signature=<sig>]\r\n <size bytes> \r\n   (repeated)
//	0[;chunk-signature=<sig>]\r\n
//	[<trailer name>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]
//	\r\n
//
// Each chunk signature signs the chunk's SHA-256 and the previous
// signature, starting from the request's (the seed); the trailer signature
// continues the chain over the trailer headers. See
// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html.

const (
	chunkedBufferSize = 4 << 10 // holds any chunk header or trailer line
	maxTrailerBytes   = 16 << 10
)

var (
	errTruncated  = s3err.ErrIncompleteBody
	errTooLong    = s3err.ErrIncompleteBody.WithMessage("The aws-chunked body carries more data than x-amz-decoded-content-length.")
	errFraming    = s3err.ErrIncompleteBody.WithMessage("The aws-chunked body is malformed.")
	errChunkSig   = s3err.ErrSignatureDoesNotMatch.WithMessage("The chunk signature we calculated does not match the signature you provided.")
	errTrailerSig = s3err.ErrSignatureDoesNotMatch.WithMessage("The trailer signature we calculated does not match the signature you provided.")
	errClosed     = errors.New("s3auth: read from closed body")
)

// emptyHash is the SHA-256 of nothing: the final chunk's data hash.
var emptyHash = sha256.Sum256(nil)

// chainSigner computes the chained signatures of a signed aws-chunked body.
type chainSigner struct {
	key     *[32]byte
	amzDate string
	scope   string
	seed    [32]byte // the previous signature in the chain

	chunk hash.Hash               // SHA-256 of the current chunk's data
	sum   [32]byte                // digest scratch
	buf   [hmacScratch + 448]byte // string to sign; longer ones (huge regions) spill to the heap
}

// verify checks got against the next signature in the chain, over the
// data hash h of a chunk, or of the trailer if trailer is set, and advances
// the chain.
func (c *chainSigner) verify(trailer bool, h *[32]byte, got [32]byte) bool {
	b := c.buf[:hmacScratch]
	if trailer {
		b = append(b, "AWS4-HMAC-SHA256-TRAILER\n"...)
	} else {
		b = append(b, "AWS4-HMAC-SHA256-PAYLOAD\n"...)
	}
	b = append(b, c.amzDate...)
	b = append(b, '\n')
	b = append(b, c.scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, c.seed[:])
	b = append(b, '\n')
	if !trailer {
		b = append(b, emptySHA256+"\n"...)
	}
	b = hex.AppendEncode(b, h[:])
	want := hmacSHA256(c.key, b)
	if !hmac.Equal(want[:], got[:]) {
		return false
	}
	c.seed = got
	return true
}

// chunkedReader decodes an aws-chunked body, verifying chunk signatures,
// the trailer signature and the trailing checksum as it goes.
type chunkedReader struct {
	body io.ReadCloser
	br   *bufio.Reader
	pool *sync.Pool // where br goes back on Close

	chain       *chainSigner // nil: chunks are unsigned
	withTrailer bool         // a *-TRAILER mode
	alg         s3checksum.Algorithm
	sum         hash.Hash // alg over the decoded data; nil without a trailer

	declared int64 // x-amz-decoded-content-length, -1 if not given
	decoded  int64
	left     int64 // data bytes left in the current chunk
	sig      [32]byte
	sigOK    bool

	trailerValue string
	err          error // sticky; io.EOF once the body is verified
}

func (v *Verifier) newChunkedReader(body io.ReadCloser, chain *chainSigner, withTrailer bool, alg s3checksum.Algorithm, declared int64) *chunkedReader {
	br, _ := v.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(body, chunkedBufferSize)
	} else {
		br.Reset(body)
	}
	c := &chunkedReader{
		body:        body,
		br:          br,
		pool:        &v.readers,
		chain:       chain,
		withTrailer: withTrailer,
		alg:         alg,
		sum:         alg.New(),
		declared:    declared,
	}
	if chain != nil {
		chain.chunk = sha256.New()
	}
	return c
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.left == 0 {
		if err := c.nextChunk(); err != nil {
			return 0, c.fail(err)
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	data := p[:n]
	if c.chain != nil {
		c.chain.chunk.Write(data)
	}
	if c.sum != nil {
		c.sum.Write(data)
	}
	c.left -= int64(n)
	c.decoded += int64(n)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, c.fail(errTruncated)
	case err != nil:
		return n, c.fail(err)
	case c.declared >= 0 && c.decoded > c.declared:
		return n, c.fail(errTooLong)
	case c.left > 0:
		return n, nil
	}
	if err := c.endChunk(); err != nil {
		return n, c.fail(err)
	}
	if c.decoded == c.declared {
		// All the promised data is in. Verify the rest of the body now,
		// so that a caller reading exactly DecodedLength bytes is covered
		// without another Read.
		err := c.nextChunk()
		if err == nil {
			err = errTooLong // a chunk with data
		}
		return n, c.fail(err)
	}
	return n, nil
}

func (c *chunkedReader) fail(err error) error {
	c.err = err
	return err
}

// nextChunk reads a chunk header. For the final, empty chunk it reads and
// verifies the rest of the body and returns io.EOF if all is well.
func (c *chunkedReader) nextChunk() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	sizeHex, ext, _ := bytes.Cut(line, []byte(";"))
	size, ok := parseHexSize(sizeHex)
	if !ok {
		return errFraming
	}
	if c.chain != nil {
		sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
		if !ok {
			return errChunkSig
		}
		c.sig, c.sigOK = decodeSignature(sig)
		c.chain.chunk.Reset()
	}
	if size == 0 {
		return c.finish()
	}
	c.left = size
	return nil
}

// readLine reads a CRLF-terminated line and returns it without the CRLF.
// The line is only valid until the next read.
func (c *chunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errFraming
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return nil, errTruncated
	case err != nil:
		return nil, err
	case len(line) < 2 || line[len(line)-2] != '\r':
		return nil, errFraming
	}
	return line[:len(line)-2], nil
}

// endChunk consumes the CRLF after a chunk's data and verifies its
// signature.
func (c *chunkedReader) endChunk() error {
	crlf, err := c.br.Peek(2)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return errTruncated
	case err != nil:
		return err
	case crlf[0] != '\r' || crlf[1] != '\n':
		return errFraming
	}
	c.br.Discard(2)
	if c.chain != nil {
		c.chain.chunk.Sum(c.chain.sum[:0])
		if !c.sigOK || !c.chain.verify(false, &c.chain.sum, c.sig) {
			return errChunkSig
		}
	}
	return nil
}

// finish verifies the final chunk's signature, reads the trailer section —
// everything up to the end of the body — and verifies the trailer
// signature and checksum. It returns io.EOF if the body is good.
//
// Reading to the end rather than to the first empty line tolerates
// encoders that end trailer lines with a bare LF and add empty lines
// (minio-go writes "name:value\n\r\n\r\n").
func (c *chunkedReader) finish() error {
	if c.chain != nil && (!c.sigOK || !c.chain.verify(false, &emptyHash, c.sig)) {
		return errChunkSig
	}
	if c.declared >= 0 && c.decoded != c.declared {
		return errTruncated
	}
	signedTrailer := c.chain != nil && c.withTrailer
	var value string
	var haveValue, haveSig bool
	var trailerSig [32]byte
	var trailerSigOK bool
	ended := false // the last complete line was empty
	for total := 0; ; {
		line, err := c.br.ReadSlice('\n')
		total += len(line)
		switch {
		case err == bufio.ErrBufferFull || total > maxTrailerBytes:
			return s3err.ErrMalformedTrailer
		case err == io.ErrUnexpectedEOF:
			return errTruncated
		case err != nil && err != io.EOF:
			return err
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			ended = false
			name, val, ok := bytes.Cut(line, []byte(":"))
			name, val = bytes.TrimSpace(name), bytes.TrimSpace(val)
			switch {
			case !ok || haveSig:
				// Nothing may follow the trailer signature: it would be unsigned.
				return s3err.ErrMalformedTrailer
			case signedTrailer && bytes.EqualFold(name, []byte("x-amz-trailer-signature")):
				trailerSig, trailerSigOK = decodeSignature(val)
				haveSig = true
			case c.alg != s3checksum.None && !haveValue && bytes.EqualFold(name, []byte(c.alg.Header())):
				value, haveValue = string(val), true
			default:
				return s3err.ErrMalformedTrailer
			}
		} else if err == nil {
			ended = true
		}
		if err == io.EOF {
			break
		}
	}
	if c.withTrailer && !ended {
		// A trailer section ends with an empty line; without it the body
		// was cut short. (Plain signed bodies are let off: there is
		// nothing to cut.)
		return errTruncated
	}
	if signedTrailer && (haveSig || haveValue) {
		// Without trailer headers there is nothing for a signature to
		// cover; with one, its signature is required.
		if !haveSig {
			return s3err.ErrMalformedTrailer.WithMessage("The trailer signature is missing.")
		}
		// The trailer signs its headers as "name:value\n" lines.
		h := sha256.New()
		if haveValue {
			h.Write([]byte(c.alg.Header()))
			h.Write([]byte{':'})
			h.Write([]byte(value))
			h.Write([]byte{'\n'})
		}
		h.Sum(c.chain.sum[:0])
		if !trailerSigOK || !c.chain.verify(true, &c.chain.sum, trailerSig) {
			return errTrailerSig
		}
	}
	if c.alg != s3checksum.None {
		if !haveValue {
			return s3err.ErrMalformedTrailer.WithMessage("The " + c.alg.Header() + " trailer declared in x-amz-trailer is missing.")
		}
		want, ok := c.alg.Decode(value)
		if !ok {
			return s3err.ErrInvalidRequest.WithMessage("Value for " + c.alg.Header() + " trailing header is invalid.")
		}
		if !bytes.Equal(c.sum.Sum(nil), want) {
			return c.alg.Mismatch()
		}
		c.trailerValue = value
	}
	return io.EOF
}

// parseHexSize parses a chunk size: 1 to 16 hex digits, at most MaxInt64.
func parseHexSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// Close closes the underlying body. Reads after Close fail.
func (c *chunkedReader) Close() error {
	err := c.body.Close()
	if c.br != nil {
		c.br.Reset(nil)
		c.pool.Put(c.br)
		c.br = nil
	}
	if c.err == nil {
		c.err = errClosed
	}
	return err
}
