package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// BenchmarkS3Client measures the CPU that one request costs the two S3 SDKs
// in go.mod, both set up as a load generator wants them (no retries, no
// payload hashing, no checksums), against a server that does next to
// nothing; "raw" is a bare net/http request, the floor under both. Its
// cpu-µs/op (user+system time of the whole process, server included) is
// why S3 uses minio-go:
//
//	go test -run '^$' -bench S3Client -benchtime 20000x ./bench/
func BenchmarkS3Client(b *testing.B) {
	const size = 4 << 10
	body := bytes.Repeat([]byte("x"), size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if r.Method == http.MethodGet {
			w.Write(body)
		} else if r.Method == http.MethodPut {
			w.Header().Set("Content-Length", "0")
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
	buf := make([]byte, readBufSize)

	sdk := s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:                 hc,
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	})
	mc, err := NewS3(S3Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "s"})
	if err != nil {
		b.Fatal(err)
	}

	for _, bc := range []struct {
		name string
		op   func() error
	}{
		{"raw/head", func() error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodHead, srv.URL+"/bkt/k", nil)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}},
		{"aws/put", func() error {
			_, err := sdk.PutObject(ctx, &s3.PutObjectInput{Bucket: ptr("bkt"), Key: ptr("k"), Body: bytes.NewReader(body), ContentLength: ptr[int64](size)})
			return err
		}},
		{"minio/put", func() error { return mc.Put(ctx, "bkt", "k", bytes.NewReader(body), size) }},
		{"aws/get", func() error {
			out, err := sdk.GetObject(ctx, &s3.GetObjectInput{Bucket: ptr("bkt"), Key: ptr("k")})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, _, err = drain(out.Body, buf, time.Time{})
			return err
		}},
		{"minio/get", func() error {
			rc, err := mc.Get(ctx, "bkt", "k")
			if err != nil {
				return err
			}
			defer rc.Close()
			_, _, err = drain(rc, buf, time.Time{})
			return err
		}},
		{"aws/head", func() error {
			_, err := sdk.HeadObject(ctx, &s3.HeadObjectInput{Bucket: ptr("bkt"), Key: ptr("k")})
			return err
		}},
		{"minio/head", func() error {
			_, err := mc.Stat(ctx, "bkt", "k")
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if err := bc.op(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

func ptr[T any](v T) *T { return &v }

// cpuTime is the CPU time the process has used, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
