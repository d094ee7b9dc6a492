package s3auth

// Real S3 clients against the verifier: aws-sdk-go-v2's S3 client and
// minio-go, with their default settings, over HTTP and HTTPS (which is
// what switches them between body encodings), then with what they put on
// the wire tampered with.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
)

// tamper rewrites request bodies after the client has signed them.
type tamper struct {
	base http.RoundTripper

	mu   sync.Mutex
	edit func(r *http.Request, body []byte) []byte // nil: pass through
}

func (t *tamper) set(edit func(*http.Request, []byte) []byte) {
	t.mu.Lock()
	t.edit = edit
	t.mu.Unlock()
}

func (t *tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	edit := t.edit
	t.mu.Unlock()
	if edit == nil || r.Body == nil || r.Body == http.NoBody {
		return t.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	body = edit(r, body)
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = nil
	if r.ContentLength >= 0 {
		r2.ContentLength = int64(len(body))
	}
	return t.base.RoundTrip(r2)
}

// flipByte changes the byte at the given offset from the end of the data
// part of a request body (for aws-chunked bodies, inside the first chunk).
func flipByte(at int) func(*http.Request, []byte) []byte {
	return func(r *http.Request, b []byte) []byte {
		b[at] ^= 0x20
		return b
	}
}

func randomData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

type clientEnv struct {
	fake *fakeS3
	srv  *httptest.Server
	v    *Verifier
	tamp *tamper
	now  *clock
}

// clock is a settable Verifier.Now.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) skew(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

func newClientEnv(t *testing.T, tls bool) *clientEnv {
	c := &clock{}
	v := &Verifier{Creds: testCreds(), Now: c.now}
	f, srv := startFake(t, v, tls)
	return &clientEnv{fake: f, srv: srv, v: v, tamp: &tamper{base: srv.Client().Transport}, now: c}
}

// sdk returns an aws-sdk-go-v2 S3 client configured as applications do,
// through config.LoadDefaultConfig: that is where its defaults (a CRC32 of
// every upload, among them) come from.
func (e *clientEnv) sdk(t *testing.T, creds aws.Credentials) *s3.Client {
	t.Helper()
	isolateAWSConfig(t)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })),
		config.WithHTTPClient(&http.Client{Transport: e.tamp}),
		config.WithRetryMaxAttempts(1),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(e.srv.URL)
		o.UsePathStyle = true
	})
}

// isolateAWSConfig keeps the developer's AWS configuration out of the test.
func isolateAWSConfig(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	for _, k := range []string{"AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REQUEST_CHECKSUM_CALCULATION",
		"AWS_RESPONSE_CHECKSUM_VALIDATION", "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_USE_FIPS_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

func (e *clientEnv) minio(t *testing.T, ak, sk string, trailing bool) *minio.Client {
	u, _ := url.Parse(e.srv.URL)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:           miniocreds.NewStaticV4(ak, sk, ""),
		Secure:          u.Scheme == "https",
		Transport:       e.tamp,
		Region:          "us-east-1",
		TrailingHeaders: trailing,
		MaxRetries:      1,
		BucketLookup:    minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdkCode returns the S3 error code of an aws-sdk-go-v2 error.
func sdkCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

// uploads returns the outcomes of the PUT requests.
func (e *clientEnv) uploads(t *testing.T) []outcome {
	t.Helper()
	var out []outcome
	for _, o := range e.fake.outcomes() {
		if o.method == "PUT" {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		t.Fatal("no upload reached the server")
	}
	return out
}

func checkUploads(t *testing.T, name string, got []outcome, mode string, alg s3checksum.Algorithm) {
	t.Helper()
	for _, o := range got {
		if o.err != nil {
			t.Errorf("%s: server error %v", name, o.err)
			continue
		}
		if o.mode != mode {
			t.Errorf("%s: x-amz-content-sha256 %q, want %q", name, o.mode, mode)
		}
		if o.checksumAlg != alg {
			t.Errorf("%s: checksum %v, want %v; headers %v", name, o.checksumAlg, alg, o.headers)
		}
		if alg != s3checksum.None {
			h := alg.New()
			h.Write(o.body)
			if want := b64(h.Sum(nil)); o.checksumValue != want {
				t.Errorf("%s: client's %v %q, data's %q", name, alg, o.checksumValue, want)
			}
		}
	}
}

const awkwardKey = "dir/ü ber+plus=eq&amp;?q#h%25 ~tilde*star(paren)'quote!,semi;colon:at@dollar$.txt"

func TestAWSSDK(t *testing.T) {
	ctx := context.Background()
	data := randomData(3<<20+17, 1) // over 2 MiB: the SDK sends Expect: 100-continue
	for _, tls := range []bool{false, true} {
		e := newClientEnv(t, tls)
		c := e.sdk(t, testCredentials)
		// The SDK's defaults: a CRC32 of every upload, in a header with a
		// signed payload hash over HTTP, in a trailer of an unsigned
		// aws-chunked body over HTTPS.
		mode, wantAlg := "", s3checksum.CRC32
		if tls {
			mode = streamingUnsignedTrailer
		}
		name := fmt.Sprintf("PutObject tls=%v", tls)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(awkwardKey), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := e.uploads(t)
		if mode == "" {
			mode = hashOf(data)
		}
		checkUploads(t, name, got, mode, wantAlg)
		if obj, _ := e.fake.object("/bucket/" + awkwardKey); !bytes.Equal(obj, data) {
			t.Errorf("%s: stored %d bytes under %q", name, len(obj), "/bucket/"+awkwardKey)
		}

		// And back.
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(awkwardKey)})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		back, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(back, data) {
			t.Errorf("GetObject returned %d bytes", len(back))
		}
		e.fake.outcomes()

		// Other checksum algorithms.
		for _, alg := range []s3types.ChecksumAlgorithm{s3types.ChecksumAlgorithmCrc32c, s3types.ChecksumAlgorithmCrc64nvme, s3types.ChecksumAlgorithmSha1, s3types.ChecksumAlgorithmSha256} {
			name := fmt.Sprintf("PutObject %s tls=%v", alg, tls)
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(data[:100_000]), ChecksumAlgorithm: alg}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want, _ := s3checksum.ParseAlgorithm(string(alg))
			m := mode
			if !tls {
				m = hashOf(data[:100_000])
			}
			checkUploads(t, name, e.uploads(t), m, want)
		}

		// A stream the SDK cannot rewind: over HTTPS it goes as an
		// aws-chunked body, with the length declared or, without one, in
		// HTTP chunked transfer encoding.
		if tls {
			for _, length := range []*int64{aws.Int64(int64(len(data))), nil} {
				name := fmt.Sprintf("PutObject unseekable length=%v", length != nil)
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("stream"), Body: io.MultiReader(bytes.NewReader(data)), ContentLength: length})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got := e.uploads(t)
				checkUploads(t, name, got, streamingUnsignedTrailer, s3checksum.CRC32)
				if obj, _ := e.fake.object("/b/stream"); !bytes.Equal(obj, data) {
					t.Errorf("%s: stored %d bytes", name, len(obj))
				}
				if want := int64(-1); length != nil && got[0].res.DecodedLength != *length || length == nil && got[0].res.DecodedLength != want {
					t.Errorf("%s: DecodedLength %d", name, got[0].res.DecodedLength)
				}
			}
		}

		// Multipart.
		name = fmt.Sprintf("UploadPart tls=%v", tls)
		mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bucket"), Key: aws.String("multi")})
		if err != nil {
			t.Fatalf("%s: CreateMultipartUpload: %v", name, err)
		}
		var parts []s3types.CompletedPart
		for i, part := range [][]byte{data[:1<<20-1], data[1<<20-1:]} {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: aws.String("bucket"), Key: aws.String("multi"), UploadId: mp.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part),
			})
			if err != nil {
				t.Fatalf("%s %d: %v", name, i+1, err)
			}
			parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
			m := mode
			if !tls {
				m = hashOf(part)
			}
			checkUploads(t, name, e.uploads(t), m, wantAlg)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String("bucket"), Key: aws.String("multi"), UploadId: mp.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
		}); err != nil {
			t.Fatalf("%s: CompleteMultipartUpload: %v", name, err)
		}
		if obj, _ := e.fake.object("/bucket/multi"); !bytes.Equal(obj, data) {
			t.Errorf("%s: assembled %d bytes", name, len(obj))
		}
	}
}

func TestAWSSDKRefused(t *testing.T) {
	ctx := context.Background()
	data := randomData(200_000, 2)
	for _, tls := range []bool{false, true} {
		// Corrupting the data is caught by the payload hash over HTTP and
		// by the trailing CRC32 over HTTPS.
		corrupt := "XAmzContentSHA256Mismatch"
		if tls {
			corrupt = "BadDigest"
		}
		for _, tc := range []struct {
			name  string
			creds aws.Credentials
			skew  time.Duration
			edit  func(*http.Request, []byte) []byte
			code  string
		}{
			{name: "wrong secret", creds: aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: "wrong"}, code: "SignatureDoesNotMatch"},
			{name: "unknown key", creds: aws.Credentials{AccessKeyID: "AKIDWHO", SecretAccessKey: testSecret}, code: "InvalidAccessKeyId"},
			{name: "server clock ahead", creds: testCredentials, skew: time.Hour, code: "RequestTimeTooSkewed"},
			{name: "data corrupted", creds: testCredentials, edit: flipByte(1000), code: corrupt},
			{name: "header added", creds: testCredentials, edit: func(r *http.Request, b []byte) []byte {
				r.Header.Set("X-Amz-Storage-Class", "GLACIER")
				return b
			}, code: "AccessDenied"},
		} {
			e := newClientEnv(t, tls)
			e.now.skew(tc.skew)
			e.tamp.set(tc.edit)
			_, err := e.sdk(t, tc.creds).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(data)})
			if got := sdkCode(err); got != tc.code {
				t.Errorf("tls=%v %s: client got %q, want %s", tls, tc.name, got, tc.code)
			}
			if _, ok := e.fake.object("/b/k"); ok {
				t.Errorf("tls=%v %s: stored", tls, tc.name)
			}
		}
	}

	// The trailer itself, over HTTPS.
	e := newClientEnv(t, true)
	e.tamp.set(func(r *http.Request, b []byte) []byte {
		i := bytes.Index(b, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:")
		b[i] = 'A' + (b[i]-'A'+1)%26
		return b
	})
	_, err := e.sdk(t, testCredentials).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(data)})
	if got := sdkCode(err); got != "BadDigest" {
		t.Errorf("trailer changed: client got %q", got)
	}
}

func TestAWSSDKPresigned(t *testing.T) {
	ctx := context.Background()
	e := newClientEnv(t, true)
	c := e.sdk(t, testCredentials)
	pc := s3.NewPresignClient(c, s3.WithPresignExpires(10*time.Minute))
	data := randomData(70_000, 3)

	put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String(awkwardKey), ContentType: aws.String("application/octet-stream")})
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, u string, hdr http.Header, body []byte) outcome {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		r, _ := http.NewRequest(method, u, rd)
		for k, v := range hdr {
			if !strings.EqualFold(k, "host") {
				r.Header[k] = v
			}
		}
		res, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return e.fake.last(t)
	}
	o := send(put.Method, put.URL, put.SignedHeader, data)
	wantCode(t, "presigned PUT", o.err, "")
	if o.err == nil && (!o.res.Presigned || !bytes.Equal(o.body, data)) {
		t.Errorf("presigned PUT: %+v, %d bytes", o.res, len(o.body))
	}

	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String(awkwardKey), ResponseContentDisposition: aws.String(`attachment; filename="x y.bin"`)})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "presigned GET", send(get.Method, get.URL, get.SignedHeader, nil).err, "")

	// The same URLs, later.
	e.now.skew(11 * time.Minute)
	wantCode(t, "expired presigned GET", send(get.Method, get.URL, get.SignedHeader, nil).err, "AccessDenied")
	e.now.skew(0)

	// Other changes.
	wantCode(t, "presigned PUT used for DELETE", send("DELETE", put.URL, put.SignedHeader, nil).err, "SignatureDoesNotMatch")
	wantCode(t, "presigned GET for another key", send(get.Method, strings.Replace(get.URL, "dir/", "dix/", 1), get.SignedHeader, nil).err, "SignatureDoesNotMatch")
	hdr := put.SignedHeader.Clone()
	hdr.Set("X-Amz-Copy-Source", "/other/secret")
	wantCode(t, "presigned PUT with a header added", send(put.Method, put.URL, hdr, data).err, "AccessDenied")
	broken := strings.Replace(put.URL, "X-Amz-Credential=", "X-Amz-Credentials=", 1)
	wantCode(t, "presigned PUT without credential", send(put.Method, broken, put.SignedHeader, data).err, "AuthorizationQueryParametersError")
}

func TestMinioGo(t *testing.T) {
	ctx := context.Background()
	data := randomData(1<<20+3, 4)
	big := randomData(6<<20+5, 5)
	for _, tc := range []struct {
		name     string
		tls      bool
		trailing bool
		opts     minio.PutObjectOptions
		size     int64 // -1: unknown
		body     []byte
		mode     string
		alg      s3checksum.Algorithm
	}{
		// Over HTTP minio-go signs every chunk.
		{"http", false, false, minio.PutObjectOptions{}, 0, data, streamingSigned, s3checksum.None},
		{"http trailing headers", false, true, minio.PutObjectOptions{}, 0, data, streamingSigned, s3checksum.None},
		{"http signed trailer crc32c", false, true, minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, 0, data, streamingSignedTrailer, s3checksum.CRC32C},
		{"http signed trailer crc64nvme", false, true, minio.PutObjectOptions{Checksum: minio.ChecksumCRC64NVME}, 0, data, streamingSignedTrailer, s3checksum.CRC64NVME},
		{"http signed trailer sha256", false, true, minio.PutObjectOptions{Checksum: minio.ChecksumSHA256}, 0, data, streamingSignedTrailer, s3checksum.SHA256},
		{"http unknown size, multipart", false, false, minio.PutObjectOptions{PartSize: 5 << 20}, -1, big, streamingSigned, s3checksum.None},
		// Over HTTPS it does not sign the payload.
		{"https", true, false, minio.PutObjectOptions{}, 0, data, unsignedPayload, s3checksum.None},
		// minio-go v7.4.1 sends its automatic CRC32C of a single PUT
		// nowhere: the X-Amz-Checksum-Algorithm header it adds for it
		// makes it think the caller supplied a checksum.
		{"https trailing headers", true, true, minio.PutObjectOptions{}, 0, data, unsignedPayload, s3checksum.None},
		{"https trailing headers crc32", true, true, minio.PutObjectOptions{Checksum: minio.ChecksumCRC32}, 0, data, streamingUnsignedTrailer, s3checksum.CRC32},
		{"https trailing headers sha1", true, true, minio.PutObjectOptions{Checksum: minio.ChecksumSHA1}, 0, data, streamingUnsignedTrailer, s3checksum.SHA1},
		// Parts carry their CRC32C in a header.
		{"https unknown size, multipart", true, true, minio.PutObjectOptions{PartSize: 5 << 20}, -1, big, unsignedPayload, s3checksum.CRC32C},
	} {
		e := newClientEnv(t, tc.tls)
		c := e.minio(t, testAccessKey, testSecret, tc.trailing)
		size := tc.size
		if size == 0 {
			size = int64(len(tc.body))
		}
		if _, err := c.PutObject(ctx, "bucket", awkwardKey, bytes.NewReader(tc.body), size, tc.opts); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkUploads(t, tc.name, e.uploads(t), tc.mode, tc.alg)
		if obj, _ := e.fake.object("/bucket/" + awkwardKey); !bytes.Equal(obj, tc.body) {
			t.Errorf("%s: stored %d bytes", tc.name, len(obj))
		}
	}
}

func TestMinioGoRefused(t *testing.T) {
	ctx := context.Background()
	data := randomData(300_000, 6)
	for _, tc := range []struct {
		name     string
		tls      bool
		trailing bool
		opts     minio.PutObjectOptions
		ak, sk   string
		skew     time.Duration
		edit     func(*http.Request, []byte) []byte
		code     string
	}{
		{name: "wrong secret", ak: testAccessKey, sk: "wrong", code: "SignatureDoesNotMatch"},
		{name: "unknown key", ak: "AKIDWHO", sk: testSecret, code: "InvalidAccessKeyId"},
		{name: "server clock behind", ak: testAccessKey, sk: testSecret, skew: -time.Hour, code: "RequestTimeTooSkewed"},
		{name: "chunk data", ak: testAccessKey, sk: testSecret, edit: flipByte(100_000), code: "SignatureDoesNotMatch"},
		{name: "chunk signature", ak: testAccessKey, sk: testSecret, edit: func(r *http.Request, b []byte) []byte {
			i := bytes.Index(b, []byte("chunk-signature=")) + len("chunk-signature=")
			b[i] = otherHex(b[i])
			return b
		}, code: "SignatureDoesNotMatch"},
		{name: "final chunk signature", ak: testAccessKey, sk: testSecret, edit: func(r *http.Request, b []byte) []byte {
			i := bytes.LastIndex(b, []byte("chunk-signature=")) + len("chunk-signature=") + 63
			b[i] = otherHex(b[i])
			return b
		}, code: "SignatureDoesNotMatch"},
		{name: "signed trailer value", trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, ak: testAccessKey, sk: testSecret,
			edit: func(r *http.Request, b []byte) []byte {
				i := bytes.Index(b, []byte("x-amz-checksum-crc32c:")) + len("x-amz-checksum-crc32c:")
				b[i] = 'A' + (b[i]-'A'+1)%26
				return b
			}, code: "SignatureDoesNotMatch"},
		{name: "unsigned trailer data", tls: true, trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, ak: testAccessKey, sk: testSecret, edit: flipByte(100_000), code: "BadDigest"},
		{name: "unsigned trailer value", tls: true, trailing: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, ak: testAccessKey, sk: testSecret,
			edit: func(r *http.Request, b []byte) []byte {
				i := bytes.Index(b, []byte("x-amz-checksum-crc32c:")) + len("x-amz-checksum-crc32c:")
				b[i] = 'A' + (b[i]-'A'+1)%26
				return b
			}, code: "BadDigest"},
	} {
		e := newClientEnv(t, tc.tls)
		e.now.skew(tc.skew)
		e.tamp.set(tc.edit)
		c := e.minio(t, tc.ak, tc.sk, tc.trailing)
		_, err := c.PutObject(ctx, "bkt", "k", bytes.NewReader(data), int64(len(data)), tc.opts)
		if got := minio.ToErrorResponse(err).Code; got != tc.code {
			t.Errorf("%s: client got %q (%v), want %s", tc.name, got, err, tc.code)
		}
		if _, ok := e.fake.object("/bkt/k"); ok {
			t.Errorf("%s: stored", tc.name)
		}
	}
}

func TestMinioGoPresigned(t *testing.T) {
	ctx := context.Background()
	e := newClientEnv(t, false)
	c := e.minio(t, testAccessKey, testSecret, false)
	data := randomData(50_000, 7)

	put, err := c.PresignedPutObject(ctx, "bkt", awkwardKey, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, u string, body []byte) outcome {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		r, _ := http.NewRequest(method, u, rd)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return e.fake.last(t)
	}
	o := send("PUT", put.String(), data)
	wantCode(t, "presigned PUT", o.err, "")
	if o.err == nil && !bytes.Equal(o.body, data) {
		t.Errorf("presigned PUT stored %d bytes", len(o.body))
	}
	get, err := c.PresignedGetObject(ctx, "bkt", awkwardKey, 5*time.Minute, url.Values{"response-content-type": {"text/plain; charset=utf-8"}})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "presigned GET", send("GET", get.String(), nil).err, "")

	e.now.skew(6 * time.Minute)
	wantCode(t, "expired", send("GET", get.String(), nil).err, "AccessDenied")
	e.now.skew(-20 * time.Minute)
	wantCode(t, "not yet valid", send("GET", get.String(), nil).err, "AccessDenied")
	e.now.skew(0)

	bad := strings.Replace(get.String(), "X-Amz-Expires=300", "X-Amz-Expires=999999", 1)
	wantCode(t, "expiry over a week", send("GET", bad, nil).err, "AuthorizationQueryParametersError")
	bad = strings.Replace(get.String(), "X-Amz-Date=", "X-Amz-Date=x", 1)
	wantCode(t, "bad date", send("GET", bad, nil).err, "AuthorizationQueryParametersError")
	bad = strings.Replace(get.String(), "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	wantCode(t, "long signature", send("GET", bad, nil).err, "SignatureDoesNotMatch")
}

// Over HTTP/2 the Host header is :authority and net/http keeps fewer
// headers in the map; the signatures must not notice.
func TestAWSSDKHTTP2(t *testing.T) {
	ctx := context.Background()
	c := &clock{}
	f := newFakeS3(&Verifier{Creds: testCreds(), Now: c.now})
	srv := httptest.NewUnstartedServer(f)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e := &clientEnv{fake: f, srv: srv, tamp: &tamper{base: srv.Client().Transport}, now: c}
	sdk := e.sdk(t, testCredentials)
	for _, body := range [][]byte{nil, randomData(300_000, 10)} {
		if _, err := sdk.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String(awkwardKey), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject of %d bytes: %v", len(body), err)
		}
		o := f.last(t)
		if o.err != nil || o.proto != 2 || !bytes.Equal(o.body, body) {
			t.Fatalf("PutObject of %d bytes: HTTP/%d, %v, %d bytes stored", len(body), o.proto, o.err, len(o.body))
		}
	}
	if _, err := sdk.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String(awkwardKey)}); err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	mc := e.minio(t, testAccessKey, testSecret, true)
	data := randomData(200_000, 11)
	if _, err := mc.PutObject(ctx, "bkt", "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{Checksum: minio.ChecksumCRC64NVME}); err != nil {
		t.Fatalf("minio-go PutObject: %v", err)
	}
	o := f.last(t)
	if o.err != nil || o.proto != 2 || o.mode != streamingUnsignedTrailer || !bytes.Equal(o.body, data) {
		t.Fatalf("minio-go PutObject: HTTP/%d %s, %v", o.proto, o.mode, o.err)
	}
}

// otherHex returns a hex digit different from c, so that an edit to a
// signature always changes it.
func otherHex(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}
