package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/meta/metaapi"
)

// Target is the store a benchmark runs against: an S3 endpoint (NewS3) or a
// talus cluster through the native client (NewNative). Implementations must
// be safe for concurrent use.
type Target interface {
	// String describes the target in reports ("s3 http://127.0.0.1:9000").
	String() string
	// BucketExists reports whether a bucket exists. (Creating one is no
	// test: S3 in us-east-1 answers success for a bucket its caller owns.)
	BucketExists(ctx context.Context, bucket string) (bool, error)
	CreateBucket(ctx context.Context, bucket string) error
	DeleteBucket(ctx context.Context, bucket string) error
	// Put stores size bytes read from body.
	Put(ctx context.Context, bucket, key string, body io.Reader, size int64) error
	// Get opens an object; reading the body is part of the operation.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, error)
	// Stat returns an object's size.
	Stat(ctx context.Context, bucket, key string) (int64, error)
	Delete(ctx context.Context, bucket, key string) error
	// List returns, in lexical order, up to max keys that start with prefix
	// and sort after the key after, and whether more may follow.
	List(ctx context.Context, bucket, prefix, after string, max int) (keys []string, more bool, err error)
}

// ErrWrongSize is an object read or stat'ed back with another size than it
// was written with.
var ErrWrongSize = errors.New("object has the wrong size")

// ErrorKind names the kind of a failed operation's error for the error
// counts of a Result: the S3 error code or metadata service code when the
// store sent one, else the transport failure ("ConnRefused", "Timeout", ...),
// else "Other".
func ErrorKind(err error) string {
	var s3err minio.ErrorResponse
	if errors.As(err, &s3err) && s3err.Code != "" {
		return s3err.Code
	}
	if code, _ := metaapi.CodeOf(err); code != "Internal" {
		return code
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrWrongSize):
		return "WrongSize"
	case errors.Is(err, erasure.ErrTooFewShards):
		return "TooFewShards"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "Timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ConnRefused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "ConnReset"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "UnexpectedEOF"
	}
	return "Other"
}
