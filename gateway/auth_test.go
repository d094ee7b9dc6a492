package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/meta/metaapi"
)

func TestAuthentication(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	putBytes(t, c, b, "secret.txt", []byte("classified"))

	_, err := newS3(t, rootKey, "wrong-secret").GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("secret.txt")})
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = newS3(t, "nobody", "whatever").ListBuckets(ctx, &s3.ListBucketsInput{})
	wantCode(t, err, "InvalidAccessKeyId")
	_, err = newS3(t, rootKey, "wrong-secret").PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("forged"), Body: strings.NewReader("x")})
	wantCode(t, err, "SignatureDoesNotMatch")
	wantAbsent(t, c, b, "forged")

	// Anonymous.
	resp, body := do(t, mustRequest(t, "GET", env.httpURL+"/"+b+"/secret.txt", nil))
	wantRawError(t, resp, body, http.StatusForbidden, "AccessDenied")
	resp, body = do(t, mustRequest(t, "PUT", env.httpURL+"/"+b+"/anon", strings.NewReader("x")))
	wantRawError(t, resp, body, http.StatusForbidden, "AccessDenied")
	wantAbsent(t, c, b, "anon")

	// A clock an hour off.
	req := rawRequest(t, "GET", env.httpURL+"/"+b+"/secret.txt", nil, nil, rootKey, rootSecret, time.Now().Add(-time.Hour))
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusForbidden, "RequestTimeTooSkewed")
	req = rawRequest(t, "PUT", env.httpURL+"/"+b+"/skewed", []byte("x"), nil, rootKey, rootSecret, time.Now().Add(time.Hour))
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusForbidden, "RequestTimeTooSkewed")
	wantAbsent(t, c, b, "skewed")

	// A body that does not match its signed hash.
	req = rawRequest(t, "PUT", env.httpURL+"/"+b+"/tampered", []byte("original"), nil, rootKey, rootSecret, time.Now())
	req.Body = io.NopCloser(strings.NewReader("tampered"))
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "XAmzContentSHA256Mismatch")
	wantAbsent(t, c, b, "tampered")
}

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	must(t, err)
	return req
}

func TestPresigned(t *testing.T) {
	ctx := context.Background()
	c := newS3HTTP(t, rootKey, rootSecret)
	b := newBucket(t, c)
	pc := s3.NewPresignClient(c)

	put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("pre")}, s3.WithPresignExpires(time.Minute))
	must(t, err)
	req := mustRequest(t, put.Method, put.URL, strings.NewReader("presigned body"))
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d %s", resp.StatusCode, body)
	}
	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("pre")}, s3.WithPresignExpires(time.Minute))
	must(t, err)
	resp, body = do(t, mustRequest(t, "GET", get.URL, nil))
	if resp.StatusCode != 200 || string(body) != "presigned body" {
		t.Fatalf("presigned GET: %d %s", resp.StatusCode, body)
	}
	// Tampering with the signed query breaks it.
	resp, body = do(t, mustRequest(t, "GET", strings.Replace(get.URL, "/pre?", "/pre2?", 1), nil))
	wantRawError(t, resp, body, http.StatusForbidden, "SignatureDoesNotMatch")

	// Signed two hours ago, valid for one.
	old := mustRequest(t, "GET", env.httpURL+"/"+b+"/pre?X-Amz-Expires=3600", nil)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecret}, old, "UNSIGNED-PAYLOAD", "s3", region, time.Now().Add(-2*time.Hour))
	must(t, err)
	resp, body = do(t, mustRequest(t, "GET", signed, nil))
	wantRawError(t, resp, body, http.StatusForbidden, "AccessDenied")
	if !bytes.Contains(body, []byte("expired")) {
		t.Errorf("expired presigned URL: %s", body)
	}
}

// chunkedTrailerRequest builds an aws-chunked PUT with an unsigned payload
// and a trailing CRC32, as SDKs send over TLS.
func chunkedTrailerRequest(t testing.TB, url string, data []byte, crc string) *http.Request {
	var body bytes.Buffer
	for off := 0; off < len(data); off += 64 << 10 {
		chunk := data[off:min(off+64<<10, len(data))]
		fmt.Fprintf(&body, "%x\r\n", len(chunk))
		body.Write(chunk)
		body.WriteString("\r\n")
	}
	fmt.Fprintf(&body, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", crc)
	req := mustRequest(t, "PUT", url, bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecret}, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "s3", region, time.Now())
	must(t, err)
	return req
}

func crc32b64(data []byte) string {
	s := crc32.ChecksumIEEE(data)
	return base64.StdEncoding.EncodeToString([]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)})
}

func TestTrailingChecksum(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for _, size := range []int{100, 300 << 10} {
		data := randBytes(size)
		key := fmt.Sprintf("trailer-%d", size)
		resp, body := do(t, chunkedTrailerRequest(t, env.httpURL+"/"+b+"/"+key, data, crc32b64([]byte("other"))))
		wantRawError(t, resp, body, http.StatusBadRequest, "BadDigest")
		wantAbsent(t, c, b, key)

		resp, body = do(t, chunkedTrailerRequest(t, env.httpURL+"/"+b+"/"+key, data, crc32b64(data)))
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Checksum-Crc32") != crc32b64(data) {
			t.Fatalf("good trailer: %d %s %v", resp.StatusCode, body, resp.Header)
		}
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: &key, ChecksumMode: "ENABLED"})
		must(t, err)
		if h.ChecksumCRC32 == nil || *h.ChecksumCRC32 != crc32b64(data) || h.ContentEncoding != nil {
			t.Errorf("stored trailer checksum %v, content-encoding %v", h.ChecksumCRC32, h.ContentEncoding)
		}
		if got := getBytes(t, c, b, key); !bytes.Equal(got, data) {
			t.Errorf("aws-chunked body stored wrongly")
		}
	}
}

func TestHeaderLimits(t *testing.T) {
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	req := rawRequest(t, "PUT", env.httpURL+"/"+b+"/big-header", []byte("x"),
		http.Header{"X-Amz-Meta-Big": {strings.Repeat("a", 10<<10)}}, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "RequestHeaderSectionTooLarge")
	wantAbsent(t, c, b, "big-header")

	// Beyond the server's own limit net/http refuses before the gateway sees it.
	req = rawRequest(t, "PUT", env.httpURL+"/"+b+"/huge-header", []byte("x"),
		http.Header{"X-Amz-Meta-Big": {strings.Repeat("a", 100<<10)}}, rootKey, rootSecret, time.Now())
	resp, _ = do2(t, req)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge header: %d", resp.StatusCode)
	}
	wantAbsent(t, c, b, "huge-header")
}

// do2 is do without the request-id check, for answers net/http gives.
func do2(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestUserAccess(t *testing.T) {
	ctx := context.Background()
	meta := env.client.Meta()
	must(t, meta.PutUser(ctx, metaapi.User{AccessKey: "alice", SecretKey: "alice-secret", Created: time.Now()}))
	must(t, meta.PutUser(ctx, metaapi.User{AccessKey: "bob", SecretKey: "bob-secret", Created: time.Now()}))
	root := newS3(t, rootKey, rootSecret)
	alice := newS3(t, "alice", "alice-secret")
	bob := newS3(t, "bob", "bob-secret")

	_, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-bucket")})
	must(t, err)
	putBytes(t, alice, "alice-bucket", "diary", []byte("dear diary"))
	shared := newBucket(t, root)

	_, err = bob.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("diary")})
	wantCode(t, err, "AccessDenied")
	_, err = bob.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("graffiti"), Body: strings.NewReader("x")})
	wantCode(t, err, "AccessDenied")
	_, err = bob.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("alice-bucket")})
	wantCode(t, err, "AccessDenied")
	_, err = bob.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("diary")})
	wantCode(t, err, "AccessDenied")
	_, err = bob.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alice-bucket")})
	wantCode(t, err, "AccessDenied")
	_, err = bob.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alice-bucket")})
	wantStatus(t, err, http.StatusForbidden)
	_, err = bob.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("alice-bucket"), Key: aws.String("stolen"), CopySource: aws.String("alice-bucket/diary")})
	wantCode(t, err, "AccessDenied")
	_, err = bob.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alice-bucket")})
	wantCode(t, err, "BucketAlreadyExists")
	_, err = alice.GetObject(ctx, &s3.GetObjectInput{Bucket: &shared, Key: aws.String("x")})
	wantCode(t, err, "AccessDenied")
	if got := keys(t, alice, "alice-bucket"); !slices.Equal(got, []string{"diary"}) {
		t.Errorf("alice's bucket holds %q", got)
	}

	lb, err := alice.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	if len(lb.Buckets) != 1 || *lb.Buckets[0].Name != "alice-bucket" || *lb.Owner.ID != "alice" {
		t.Errorf("alice's bucket list: %+v", lb.Buckets)
	}
	lb, err = root.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	for _, bk := range lb.Buckets {
		if *bk.Name == "alice-bucket" {
			t.Errorf("root lists alice's bucket")
		}
	}
	// Root may still use it.
	if got := getBytes(t, root, "alice-bucket", "diary"); string(got) != "dear diary" {
		t.Errorf("root read %q", got)
	}

	// A user granted a bucket may use it.
	must(t, meta.PutUser(ctx, metaapi.User{AccessKey: "carol", SecretKey: "carol-secret", Buckets: []string{shared}, Created: time.Now()}))
	carol := newS3(t, "carol", "carol-secret")
	putBytes(t, carol, shared, "from-carol", []byte("hi"))
	lb, err = carol.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	if len(lb.Buckets) != 1 || *lb.Buckets[0].Name != shared {
		t.Errorf("carol's bucket list: %+v", lb.Buckets)
	}
}

func TestVirtualHostStyle(t *testing.T) {
	ctx := context.Background()
	gw, err := gateway.New(gateway.Config{Client: env.client, RootAccessKey: rootKey, RootSecretKey: rootSecret, Logger: env.log, Domain: "s3.talus.test"})
	must(t, err)
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")
	vc := newS3At(t, "http://s3.talus.test:"+port, loopbackClient(addr), rootKey, rootSecret, false)

	_, err = vc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost-bucket")})
	must(t, err)
	putBytes(t, vc, "vhost-bucket", "dir/key", []byte("virtual"))
	if got := getBytes(t, vc, "vhost-bucket", "dir/key"); string(got) != "virtual" {
		t.Fatalf("got %q", got)
	}
	if got := keys(t, vc, "vhost-bucket"); !slices.Equal(got, []string{"dir/key"}) {
		t.Errorf("keys %q", got)
	}
	// Path style still works on the same gateway.
	pc := newS3At(t, "http://s3.talus.test:"+port, loopbackClient(addr), rootKey, rootSecret, true)
	if got := getBytes(t, pc, "vhost-bucket", "dir/key"); string(got) != "virtual" {
		t.Fatalf("path style: got %q", got)
	}
}

func TestErrorDocuments(t *testing.T) {
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	req := rawRequest(t, "GET", env.httpURL+"/"+b+"/missing", nil, nil, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	wantRawError(t, resp, body, http.StatusNotFound, "NoSuchKey")
	if !bytes.Contains(body, []byte("<Resource>/"+b+"/missing</Resource>")) || resp.Header.Get("Content-Type") != "application/xml" {
		t.Errorf("error document: %s", body)
	}
	// Unknown operations are refused, not misrouted.
	req = rawRequest(t, "POST", env.httpURL+"/"+b+"/k?restore", nil, nil, rootKey, rootSecret, time.Now())
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusNotImplemented, "NotImplemented")
	req = rawRequest(t, "DELETE", env.httpURL+"/", nil, nil, rootKey, rootSecret, time.Now())
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusMethodNotAllowed, "MethodNotAllowed")
	if bytes.Contains(body, []byte("127.0.0.1")) {
		t.Errorf("error leaks an address: %s", body)
	}
}

// TestExpectContinueRefused checks that a refused upload is answered without
// asking for its body: clients that wait for "100 Continue" never send it.
func TestExpectContinueRefused(t *testing.T) {
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.httpURL, "http://"))
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "PUT /%s/obj HTTP/1.1\r\nHost: x\r\nContent-Length: 123\r\nExpect: 100-continue\r\n\r\n", b)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous PUT with Expect: 100-continue answered %d, want 403", resp.StatusCode)
	}
	wantAbsent(t, c, b, "obj")
}

// CORS preflight requests come unauthenticated; with no CORS configuration
// in talus, S3's answers for a bucket without one.
func TestPreflight(t *testing.T) {
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for _, tc := range []struct {
		path   string
		header http.Header
		status int
		code   string
	}{
		{"/" + b + "/k", nil, http.StatusBadRequest, "BadRequest"},
		{"/" + b + "/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00", nil, http.StatusBadRequest, "BadRequest"},
		{"/" + b + "/k", http.Header{"Origin": {"https://example.com"}}, http.StatusBadRequest, "BadRequest"},
		{"/" + b + "/k", http.Header{"Origin": {"https://example.com"}, "Access-Control-Request-Method": {"GET"}}, http.StatusForbidden, "AccessForbidden"},
		{"/no-such-bucket-here/k", http.Header{"Origin": {"https://example.com"}, "Access-Control-Request-Method": {"GET"}}, http.StatusNotFound, "NoSuchBucket"},
	} {
		req := mustRequest(t, "OPTIONS", env.httpURL+tc.path, nil)
		for k, v := range tc.header {
			req.Header[k] = v
		}
		resp, body := do(t, req)
		wantRawError(t, resp, body, tc.status, tc.code)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: allowed an origin", tc.path)
		}
	}
}

// A body longer than its Content-Length fails its digest; the rest of it
// must not be taken for the next request on the connection.
func TestBodyMismatchClosesConnection(t *testing.T) {
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	req := mustRequest(t, "PUT", env.httpURL+"/"+b+"/obj", nil)
	sum := md5.Sum([]byte("bar"))
	req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	must(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecret}, req, "UNSIGNED-PAYLOAD", "s3", region, time.Now()))
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.httpURL, "http://"))
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT /%s/obj HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\n", b, req.Host)
	req.Header.Write(&head)
	head.WriteString("\r\nbar")
	_, err = conn.Write(head.Bytes())
	must(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("BadDigest")) || !resp.Close {
		t.Fatalf("got %d (close %v) %s, want 400 BadDigest and the connection closed", resp.StatusCode, resp.Close, body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open: %v", err)
	}
	wantAbsent(t, c, b, "obj")
}
