package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach an S3 endpoint. Requests are signed with SigV4
// and address buckets path-style.
type S3Config struct {
	// Endpoint is the URL of the service, http:// or https://.
	Endpoint             string
	AccessKey, SecretKey string
	// Region is the region requests are signed for; default us-east-1.
	Region string
	// CABundle is a PEM file of certificate authorities to trust besides
	// the system's, for https endpoints only (AWS_CA_BUNDLE).
	CABundle string
	// Insecure skips verifying the server's certificate.
	Insecure bool
	// Conns is how many connections to keep open; set it to at least the
	// run's concurrency (default 256).
	Conns int
}

// S3 is a Target speaking S3 to any compatible service.
//
// It uses minio-go, which costs about half the CPU per request of
// aws-sdk-go-v2 (see BenchmarkS3Client), with retries off (a benchmark must
// see every failure) and payloads sent UNSIGNED-PAYLOAD with no checksums, so
// that the load generator spends its CPU on requests rather than on hashing
// bodies that the server would otherwise have to verify too.
type S3 struct {
	endpoint string
	region   string
	c        *minio.Client
	core     minio.Core
}

// NewS3 returns a Target for the S3 endpoint cfg describes.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("S3 endpoint %q is not an http:// or https:// URL", cfg.Endpoint)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("S3 endpoint %q has a path; give only scheme, host and port", cfg.Endpoint)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 256
	}
	tr := &http.Transport{
		// A benchmark measures the store, never a proxy: no Proxy.
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.Conns,
		MaxIdleConnsPerHost:   cfg.Conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// Bodies stream through these buffers; the 4 KiB default costs a
		// system call per 4 KiB.
		WriteBufferSize: 64 << 10,
		ReadBufferSize:  64 << 10,
	}
	secure := u.Scheme == "https"
	if secure {
		// A CA bundle matters only to TLS. AWS_CA_BUNDLE is often set
		// machine-wide; reading it for a plain-HTTP endpoint would only add
		// a way for the run to fail.
		tc := &tls.Config{InsecureSkipVerify: cfg.Insecure, MinVersion: tls.VersionTLS12}
		if cfg.CABundle != "" {
			pool, err := certPool(cfg.CABundle)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region, // set, so that no request asks for a bucket's location
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client of %s: %w", cfg.Endpoint, err)
	}
	return &S3{endpoint: u.Scheme + "://" + u.Host, region: cfg.Region, c: c, core: minio.Core{Client: c}}, nil
}

func certPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificates", file)
	}
	return pool, nil
}

func (s *S3) String() string { return "s3 " + s.endpoint }

// BucketExists implements Target.
func (s *S3) BucketExists(ctx context.Context, bucket string) (bool, error) {
	ok, err := s.c.BucketExists(ctx, bucket)
	if err != nil {
		return false, fmt.Errorf("look up bucket %s: %w", bucket, err)
	}
	return ok, nil
}

// CreateBucket implements Target.
func (s *S3) CreateBucket(ctx context.Context, bucket string) error {
	if err := s.c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s.region}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// DeleteBucket implements Target.
func (s *S3) DeleteBucket(ctx context.Context, bucket string) error {
	if err := s.c.RemoveBucket(ctx, bucket); err != nil {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return nil
}

// Put implements Target.
func (s *S3) Put(ctx context.Context, bucket, key string, body io.Reader, size int64) error {
	_, err := s.c.PutObject(ctx, bucket, key, body, size, minio.PutObjectOptions{
		DisableContentSha256: true,
		DisableMultipart:     true,
	})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Get implements Target. It uses minio.Core, whose GetObject is one plain
// request, not the client's seekable object with a goroutine behind it.
func (s *S3) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	rc, _, _, err := s.core.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return rc, nil
}

// Stat implements Target.
func (s *S3) Stat(ctx context.Context, bucket, key string) (int64, error) {
	info, err := s.c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("stat %s/%s: %w", bucket, key, err)
	}
	return info.Size, nil
}

// Delete implements Target.
func (s *S3) Delete(ctx context.Context, bucket, key string) error {
	if err := s.c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// List implements Target with one ListObjectsV2 request: the iterator
// issues the next page only when asked for more than max keys.
func (s *S3) List(ctx context.Context, bucket, prefix, after string, max int) ([]string, bool, error) {
	fetchOwner := false
	keys := make([]string, 0, max)
	for o := range s.c.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{
		Prefix: prefix, StartAfter: after, MaxKeys: max, Recursive: true, FetchOwner: &fetchOwner,
	}) {
		if o.Err != nil {
			return keys, false, fmt.Errorf("list %s/%s: %w", bucket, prefix, o.Err)
		}
		if keys = append(keys, o.Key); len(keys) == max {
			return keys, true, nil
		}
	}
	return keys, false, nil
}
