package s3auth

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
)

// serverRequest returns r as a server would see it.
func serverRequest(r *http.Request) *http.Request {
	r.Host = r.URL.Host
	r.RequestURI = r.URL.RequestURI()
	return r
}

func BenchmarkVerifyGET(b *testing.B) {
	now := time.Now()
	r, _ := http.NewRequest("GET", "http://127.0.0.1:9000/bucket/some/object/key.bin?versionId=3", nil)
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	r.Header.Set("Range", "bytes=0-1048575")
	s3Signer().SignHTTP(context.Background(), testCredentials, r, emptySHA256, "s3", "us-east-1", now)
	r = serverRequest(r)
	v := &Verifier{Creds: testCreds(), Now: fixedNow(now)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPresignedGET(b *testing.B) {
	now := time.Now()
	r, _ := http.NewRequest("GET", "http://127.0.0.1:9000/bucket/some/object/key.bin?X-Amz-Expires=3600", nil)
	u, _, err := s3Signer().PresignHTTP(context.Background(), testCredentials, r, unsignedPayload, "s3", "us-east-1", now)
	if err != nil {
		b.Fatal(err)
	}
	r, _ = http.NewRequest("GET", u, nil)
	r = serverRequest(r)
	v := &Verifier{Creds: testCreds(), Now: fixedNow(now)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyV2GET(b *testing.B) {
	now := time.Now()
	r, _ := http.NewRequest("GET", "http://127.0.0.1:9000/bucket/some/object/key.bin?versionId=3", nil)
	r.Header.Set("Date", now.UTC().Format(http.TimeFormat))
	r.Header.Set("Range", "bytes=0-1048575")
	r.Header.Set("X-Amz-Meta-Color", "blue")
	v2Sign(r, testAccessKey, testSecret, "/bucket/some/object/key.bin?versionId=3")
	r = serverRequest(r)
	v := &Verifier{Creds: testCreds(), Now: fixedNow(now)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// readBody verifies r and reads its body to the end, into buf-sized reads.
func readBody(b *testing.B, v *Verifier, r *http.Request, buf []byte) {
	res, err := v.Verify(r)
	if err != nil {
		b.Fatal(err)
	}
	body := r.Body
	if res.Body != nil {
		body = res.Body
	}
	for {
		_, err := body.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	body.Close()
}

const benchSize = 8 << 20

func benchBody(b *testing.B, mode string, alg s3checksum.Algorithm, chunk int) {
	now := time.Now()
	data := randomData(benchSize, 9)
	payload := mode
	if mode == "" {
		payload = hashOf(data)
	}
	r, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/bucket/key", nil)
	var trailers []string
	if alg != s3checksum.None {
		r.Header.Set("X-Amz-Trailer", alg.Header())
		h := alg.New()
		h.Write(data)
		trailers = append(trailers, alg.Header()+":"+b64(h.Sum(nil)))
	}
	if mode != "" && mode != unsignedPayload {
		r.Header.Set("X-Amz-Decoded-Content-Length", "8388608")
	}
	r.Header.Set("X-Amz-Content-Sha256", payload)
	s3Signer().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}, r, payload, "s3", "us-east-1", now)
	body := data
	if mode != "" && mode != unsignedPayload {
		var chain *testChain
		if mode != streamingUnsignedTrailer {
			auth := r.Header.Get("Authorization")
			chain = newTestChain(testSecret, now.UTC().Format(iso8601Format), "us-east-1", auth[len(auth)-64:])
		}
		body = encodeChunked(data, chunk, chain, trailers...)
	}
	r = serverRequest(r)
	r.ContentLength = int64(len(body))
	v := &Verifier{Creds: testCreds(), Now: fixedNow(now)}
	rd := bytes.NewReader(body)
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		readBody(b, v, r, buf)
	}
}

func BenchmarkBodyUnsigned(b *testing.B)     { benchBody(b, unsignedPayload, s3checksum.None, 0) }
func BenchmarkBodySHA256(b *testing.B)       { benchBody(b, "", s3checksum.None, 0) }
func BenchmarkBodySignedChunks(b *testing.B) { benchBody(b, streamingSigned, s3checksum.None, 64<<10) }
func BenchmarkBodySignedChunksCRC32C(b *testing.B) {
	benchBody(b, streamingSignedTrailer, s3checksum.CRC32C, 64<<10)
}
func BenchmarkBodyUnsignedTrailerCRC32(b *testing.B) {
	benchBody(b, streamingUnsignedTrailer, s3checksum.CRC32, benchSize)
}
func BenchmarkBodyUnsignedTrailerCRC64NVME(b *testing.B) {
	benchBody(b, streamingUnsignedTrailer, s3checksum.CRC64NVME, benchSize)
}
func BenchmarkBodyUnsignedTrailer64KChunks(b *testing.B) {
	benchBody(b, streamingUnsignedTrailer, s3checksum.CRC32, 64<<10)
}
