package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/talusfs/talus/client"
)

// The benchmarks compare the gateway with the native client it sits on,
// 64 MiB at a time. The gateway requests are what SDKs send over TLS
// (UNSIGNED-PAYLOAD), sent over plain HTTP so that the comparison measures
// the gateway rather than TLS.
//
//	go test -run '^$' -bench 64MiB -benchtime 20x ./gateway/

const benchSize = 64 << 20

func benchBucket(b *testing.B) string {
	c := newS3HTTP(b, rootKey, rootSecret)
	return newBucket(b, c)
}

// unsignedRequest signs a request whose body the signature does not cover.
func unsignedRequest(b *testing.B, method, url string, body io.Reader, size int64) *http.Request {
	req, err := http.NewRequest(method, url, body)
	must(b, err)
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecret}, req, "UNSIGNED-PAYLOAD", "s3", region, time.Now())
	must(b, err)
	return req
}

func BenchmarkNativePut64MiB(b *testing.B) {
	bucket := benchBucket(b)
	data := randBytes(benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := range b.N {
		if _, err := env.client.Put(context.Background(), bucket, fmt.Sprint("k", i%4), bytes.NewReader(data), benchSize, client.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGatewayPut64MiB(b *testing.B) {
	bucket := benchBucket(b)
	data := randBytes(benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := range b.N {
		req := unsignedRequest(b, "PUT", fmt.Sprintf("%s/%s/k%d", env.httpURL, bucket, i%4), bytes.NewReader(data), benchSize)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("PUT: %s", resp.Status)
		}
	}
}

func BenchmarkNativeGet64MiB(b *testing.B) {
	bucket := benchBucket(b)
	if _, err := env.client.Put(context.Background(), bucket, "k", bytes.NewReader(randBytes(benchSize)), benchSize, client.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		r, err := env.client.Get(context.Background(), bucket, "k", 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

func BenchmarkGatewayGet64MiB(b *testing.B) {
	bucket := benchBucket(b)
	if _, err := env.client.Put(context.Background(), bucket, "k", bytes.NewReader(randBytes(benchSize)), benchSize, client.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		req := unsignedRequest(b, "GET", env.httpURL+"/"+bucket+"/k", nil, 0)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		// Large reads, so that the benchmark's own client costs little.
		n, err := io.CopyBuffer(io.Discard, onlyReader{resp.Body}, buf)
		resp.Body.Close()
		if err != nil || n != benchSize || resp.StatusCode != 200 {
			b.Fatalf("GET: %s, %d bytes, %v", resp.Status, n, err)
		}
	}
}

// BenchmarkGatewayHeadSmall measures the per-request cost of the gateway
// itself, with a small object and no body.
func BenchmarkGatewayHeadSmall(b *testing.B) {
	bucket := benchBucket(b)
	if _, err := env.client.Put(context.Background(), bucket, "small", bytes.NewReader([]byte("x")), 1, client.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := unsignedRequest(b, "HEAD", env.httpURL+"/"+bucket+"/small", nil, 0)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("HEAD: %s", resp.Status)
		}
	}
}

// onlyReader hides everything but Read, so that io.CopyBuffer uses its
// buffer.
type onlyReader struct{ io.Reader }
