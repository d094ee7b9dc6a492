package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/internal/dev"
)

const (
	rootKey    = "talusroot"
	rootSecret = "talus-root-secret-key"
	region     = "us-east-1"
)

var verbose = flag.Bool("gateway.log", false, "log gateway errors to stderr")

// env is the cluster and gateways every test shares: starting a cluster
// per test would dominate the run time. Tests use their own buckets.
var env struct {
	cluster *dev.Cluster
	client  *client.Client
	log     *slog.Logger
	gw      *gateway.Gateway
	// The same gateway over plain HTTP and over TLS: SDKs use trailing
	// checksums (aws-chunked) only over TLS.
	httpURL, tlsURL string
	tlsClient       *http.Client
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "gateway-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	level := slog.Level(100)
	if *verbose {
		level = slog.LevelDebug
	}
	env.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	env.cluster, err = dev.Start(ctx, dev.Options{Dir: dir, Secret: []byte("s"), Heartbeat: 200 * time.Millisecond, Logger: env.log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start cluster:", err)
		return 1
	}
	defer env.cluster.Stop()
	if env.client, err = env.cluster.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.gw, err = gateway.New(gateway.Config{Client: env.client, RootAccessKey: rootKey, RootSecretKey: rootSecret, Logger: env.log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	plain := httptest.NewUnstartedServer(env.gw.Handler())
	plain.Config.MaxHeaderBytes = 64 << 10
	plain.Start()
	defer plain.Close()
	secure := httptest.NewTLSServer(env.gw.Handler())
	defer secure.Close()
	env.httpURL, env.tlsURL = plain.URL, secure.URL
	env.tlsClient = secure.Client()
	return m.Run()
}

// newS3 returns an SDK client with default settings (checksums included)
// talking to the TLS endpoint.
func newS3(t testing.TB, key, secret string) *s3.Client {
	return newS3At(t, env.tlsURL, env.tlsClient, key, secret, true)
}

// newS3HTTP returns an SDK client of the plain HTTP endpoint.
func newS3HTTP(t testing.TB, key, secret string) *s3.Client {
	return newS3At(t, env.httpURL, http.DefaultClient, key, secret, true)
}

func newS3At(t testing.TB, endpoint string, hc *http.Client, key, secret string, pathStyle bool) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: pathStyle,
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:   hc,
	})
}

var bucketSeq atomic.Int64

// newBucket creates a bucket for one test.
func newBucket(t testing.TB, c *s3.Client) string {
	t.Helper()
	name := fmt.Sprintf("t-%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), bucketSeq.Add(1))
	if len(name) > 63 {
		name = fmt.Sprintf("t-%d-%d", rand.Uint32(), bucketSeq.Add(1))
	}
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// wantCode fails unless err is an S3 error with the given code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want S3 error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got error code %s (%v), want %s", ae.ErrorCode(), err, code)
	}
}

// wantStatus fails unless err is an HTTP error with the given status.
func wantStatus(t testing.TB, err error, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want HTTP %d", status)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want HTTP %d", err, status)
	}
	if re.HTTPStatusCode() != status {
		t.Fatalf("got HTTP %d (%v), want %d", re.HTTPStatusCode(), err, status)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// putBytes stores data under key.
func putBytes(t testing.TB, c *s3.Client, bucket, key string, data []byte) *s3.PutObjectOutput {
	t.Helper()
	out, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return out
}

// getBytes reads a whole object.
func getBytes(t testing.TB, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}

// wantAbsent fails if key exists.
func wantAbsent(t testing.TB, c *s3.Client, bucket, key string) {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	wantStatus(t, err, http.StatusNotFound)
}

// keys lists every key of a bucket.
func keys(t testing.TB, c *s3.Client, bucket string) []string {
	t.Helper()
	var ks []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			ks = append(ks, *o.Key)
		}
	}
	return ks
}

// rawRequest builds a request signed with SigV4 at the given time, its
// body covered by x-amz-content-sha256.
func rawRequest(t testing.TB, method, url string, body []byte, hdr http.Header, key, secret string, when time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	must(t, err)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, req, hash, "s3", region, when)
	must(t, err)
	return req
}

// s3Error is the error document of a failed raw request.
type s3Error struct {
	Status    int
	Code      string
	RequestID string
	Body      string
}

// do sends a raw request and returns its status, body and, for failures,
// the parsed error.
func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.Header.Get("X-Amz-Request-Id") == "" {
		t.Errorf("%s %s: response has no x-amz-request-id", req.Method, req.URL)
	}
	return resp, b
}

// wantRawError fails unless the response is an S3 error with code and status.
func wantRawError(t testing.TB, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || !bytes.Contains(body, []byte("<Code>"+code+"</Code>")) {
		t.Fatalf("got HTTP %d %s, want %d with code %s", resp.StatusCode, body, status, code)
	}
	if !bytes.Contains(body, []byte("<RequestId>"+resp.Header.Get("X-Amz-Request-Id")+"</RequestId>")) {
		t.Errorf("error document lacks the request id: %s", body)
	}
}

// loopbackClient is an HTTP client that dials addr whatever the host, for
// virtual-host-style requests to names that do not resolve.
func loopbackClient(addr string) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}
