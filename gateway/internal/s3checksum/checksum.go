// Package s3checksum implements the S3 object checksums (x-amz-checksum-*
// and Content-MD5): parsing them from requests, computing them while a body
// streams through, and verifying them when it ends.
//
// S3 carries a checksum as the base64 of the big-endian digest, in a request
// header or, for aws-chunked bodies, in a trailer after the data.
package s3checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net/http"
	"strings"

	"github.com/minio/crc64nvme"

	"github.com/talusfs/talus/gateway/internal/s3err"
)

// Algorithm is a checksum algorithm S3 clients can ask for.
type Algorithm uint8

// The algorithms. MD5 is the Content-MD5 header's digest; it is not an
// x-amz-checksum algorithm and ParseAlgorithm does not accept it.
const (
	None Algorithm = iota
	CRC32
	CRC32C
	CRC64NVME
	SHA1
	SHA256
	MD5
)

// castagnoli is read-only after initialisation; crc32 hands out one shared,
// hardware-accelerated table for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var algorithms = [...]struct {
	name   string // as in x-amz-checksum-algorithm
	header string // lower-case header or trailer name
	canon  string // header name as http.Header stores it
	size   int    // digest bytes
}{
	None:      {},
	CRC32:     {"CRC32", "x-amz-checksum-crc32", "X-Amz-Checksum-Crc32", crc32.Size},
	CRC32C:    {"CRC32C", "x-amz-checksum-crc32c", "X-Amz-Checksum-Crc32c", crc32.Size},
	CRC64NVME: {"CRC64NVME", "x-amz-checksum-crc64nvme", "X-Amz-Checksum-Crc64nvme", crc64nvme.Size},
	SHA1:      {"SHA1", "x-amz-checksum-sha1", "X-Amz-Checksum-Sha1", sha1.Size},
	SHA256:    {"SHA256", "x-amz-checksum-sha256", "X-Amz-Checksum-Sha256", sha256.Size},
	MD5:       {"MD5", "content-md5", "Content-Md5", md5.Size},
}

// String returns the algorithm's name as S3 spells it ("CRC32C"), or "" for None.
func (a Algorithm) String() string {
	if int(a) >= len(algorithms) {
		return ""
	}
	return algorithms[a].name
}

// Header returns the lower-case name of the header or trailer that carries
// the checksum ("x-amz-checksum-crc32c", or "content-md5" for MD5).
func (a Algorithm) Header() string {
	if int(a) >= len(algorithms) {
		return ""
	}
	return algorithms[a].header
}

// Size returns the length of the digest in bytes, 0 for None.
func (a Algorithm) Size() int {
	if int(a) >= len(algorithms) {
		return 0
	}
	return algorithms[a].size
}

// New returns a hash computing the algorithm; its Sum is the big-endian
// digest S3 encodes. It returns nil for None.
func (a Algorithm) New() hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case MD5:
		return md5.New()
	}
	return nil
}

// Decode decodes an encoded checksum value, reporting false if it is not
// valid base64 of a digest of the algorithm's size.
func (a Algorithm) Decode(v string) ([]byte, bool) {
	size := a.Size()
	if size == 0 || len(v) != base64.StdEncoding.EncodedLen(size) {
		return nil, false
	}
	sum, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(sum) != size {
		return nil, false
	}
	return sum, true
}

// ParseAlgorithm parses an x-amz-checksum-algorithm or
// x-amz-sdk-checksum-algorithm value, ignoring case.
func ParseAlgorithm(s string) (Algorithm, error) {
	for a := CRC32; a <= SHA256; a++ {
		if strings.EqualFold(s, algorithms[a].name) {
			return a, nil
		}
	}
	return None, s3err.ErrInvalidArgument.WithMessage("Invalid checksum algorithm: " + s)
}

// ForHeader returns the algorithm whose checksum travels in the header or
// trailer called name (any case), or None if name is not one of the
// x-amz-checksum-<algorithm> names. Names such as x-amz-checksum-type or
// x-amz-checksum-mode share the prefix but are not checksums.
func ForHeader(name string) Algorithm {
	for a := CRC32; a <= SHA256; a++ {
		if strings.EqualFold(name, algorithms[a].header) {
			return a
		}
	}
	return None
}

// FromHeader returns the checksum a request declares in an
// x-amz-checksum-<algorithm> header: its algorithm and base64 value, or None
// if it declares none. Use it for requests whose body the header describes
// (PutObject, UploadPart, DeleteObjects...), not for CompleteMultipartUpload,
// where the header describes the whole object.
//
// It rejects, with InvalidRequest as S3 does, more than one checksum header,
// a value that is not a digest of the algorithm, and an
// x-amz-sdk-checksum-algorithm naming a different algorithm.
func FromHeader(h http.Header) (Algorithm, string, error) {
	alg, value := None, ""
	for a := CRC32; a <= SHA256; a++ {
		vs, ok := h[algorithms[a].canon]
		if !ok {
			continue
		}
		if alg != None || len(vs) != 1 {
			return None, "", errMultipleChecksums
		}
		alg, value = a, vs[0]
	}
	if sdk := h.Get("X-Amz-Sdk-Checksum-Algorithm"); sdk != "" && alg != None && !strings.EqualFold(sdk, alg.String()) {
		return None, "", s3err.ErrInvalidRequest.WithMessage("Value for x-amz-sdk-checksum-algorithm header is invalid.")
	}
	if alg == None {
		return None, "", nil
	}
	if _, ok := alg.Decode(value); !ok {
		return None, "", s3err.ErrInvalidRequest.WithMessage("Value for " + alg.Header() + " header is invalid.")
	}
	return alg, value, nil
}

var errMultipleChecksums = s3err.ErrInvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")

// Mismatch returns the BadDigest error S3 sends when a checksum of the
// algorithm does not match the data.
func (a Algorithm) Mismatch() *s3err.Error {
	if a == MD5 {
		return s3err.ErrBadDigest
	}
	return s3err.ErrBadDigest.WithMessage("The " + a.String() + " you specified did not match the calculated checksum.")
}
