package s3auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/talusfs/talus/gateway/internal/s3checksum"
)

var testCredentials = aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}

// s3Signer returns aws-sdk-go-v2's SigV4 signer configured as its S3
// client configures it: S3 paths are encoded once, by the caller. Each
// call gets a new one because the signer caches derived keys by access key
// alone, which would hide a wrong secret.
func s3Signer() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// awsPath encodes a key the way S3 clients put it in the URL.
func awsPath(p string) string { return string(appendURIEncoded(nil, p, true)) }

// req builds a request for path (decoded) and raw query on srv.
func newReq(t *testing.T, method, base, path, rawQuery string, body []byte) *http.Request {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath, u.RawQuery = path, awsPath(path), rawQuery
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sign signs r with the SDK signer at time at, for payload hash payload,
// which it also puts in x-amz-content-sha256.
func sign(t *testing.T, r *http.Request, creds aws.Credentials, payload string, at time.Time) *http.Request {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payload)
	if err := s3Signer().SignHTTP(context.Background(), creds, r, payload, "s3", "eu-central-1", at); err != nil {
		t.Fatal(err)
	}
	return r
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func send(t *testing.T, r *http.Request) {
	t.Helper()
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
}

func TestSignedRequests(t *testing.T) {
	f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
	body := []byte("the quick brown fox")
	for _, tc := range []struct {
		name, method, path, query string
		body                      []byte
		payload                   string
		headers                   [][2]string
	}{
		{"get", "GET", "/bucket/key", "", nil, emptySHA256, nil},
		{"put", "PUT", "/bucket/key", "", body, hashOf(body), nil},
		{"unsigned payload", "PUT", "/bucket/key", "", body, unsignedPayload, nil},
		{"payload hash in upper case", "PUT", "/bucket/key", "", body, strings.ToUpper(hashOf(body)), nil},
		{"root", "GET", "/", "", nil, emptySHA256, nil},
		{"awkward key", "PUT", "/bucket/a b/ü+!$&=;:@,?#[]*'()~%2F.txt", "", body, hashOf(body), nil},
		{"double slash and dots", "GET", "/bucket//a/./b/../c", "", nil, emptySHA256, nil},
		{"query", "GET", "/bucket", "list-type=2&prefix=a%20b%2Bc%2F&delimiter=%2F&max-keys=10&fetch-owner", nil, emptySHA256, nil},
		{"query order", "GET", "/bucket", "b=2&a=3&a=1&Z=0&%5B=x&a=", nil, emptySHA256, nil},
		{"query unicode", "GET", "/bucket", "prefix=%E2%82%AC%20%7E", nil, emptySHA256, nil},
		{"subresource", "DELETE", "/bucket/key", "uploadId=abc%2Bdef", nil, emptySHA256, nil},
		{"messy headers", "PUT", "/bucket/key", "", body, hashOf(body), [][2]string{
			{"X-Amz-Meta-Spaces", "  a   b \t c  "},
			{"Content-Type", "text/plain;   charset=utf-8"},
			{"X-Amz-Meta-Empty", ""},
		}},
		{"content-md5", "PUT", "/bucket/key", "", body, hashOf(body), [][2]string{
			{"Content-Md5", b64(md5sum(body))},
		}},
		{"tabs in a header", "PUT", "/bucket/key", "", body, hashOf(body), [][2]string{
			{"X-Amz-Meta-Tabs", "a\t\tb  \t c"},
		}},
	} {
		r := newReq(t, tc.method, srv.URL, tc.path, tc.query, tc.body)
		for _, h := range tc.headers {
			r.Header.Set(h[0], h[1])
		}
		sign(t, r, testCredentials, tc.payload, time.Now())
		send(t, r)
		o := f.last(t)
		wantCode(t, tc.name, o.err, "")
		if o.err != nil {
			continue
		}
		if !bytes.Equal(o.body, tc.body) {
			t.Errorf("%s: body %q", tc.name, o.body)
		}
		if o.res.AccessKey != testAccessKey || o.res.Region != "eu-central-1" || o.res.Anonymous || o.res.Presigned {
			t.Errorf("%s: result %+v", tc.name, o.res)
		}
		if tc.body != nil && o.res.DecodedLength != int64(len(tc.body)) {
			t.Errorf("%s: DecodedLength %d", tc.name, o.res.DecodedLength)
		}
	}
}

func TestSignedRequestsRefused(t *testing.T) {
	now := time.Now()
	body := []byte("payload")
	wrongSecret := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret + "x"}
	unknownKey := aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: testSecret}
	put := func(t *testing.T, base string) *http.Request { return newReq(t, "PUT", base, "/b/k", "", body) }
	resign := func(mod func(*http.Request)) func(*testing.T, string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			r := sign(t, put(t, base), testCredentials, hashOf(body), now)
			mod(r)
			return r
		}
	}
	setAuth := func(f func(string) string) func(*testing.T, string) *http.Request {
		return resign(func(r *http.Request) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) })
	}
	for _, tc := range []struct {
		name string
		req  func(*testing.T, string) *http.Request
		code string
	}{
		{"wrong secret", func(t *testing.T, b string) *http.Request { return sign(t, put(t, b), wrongSecret, hashOf(body), now) }, "SignatureDoesNotMatch"},
		{"unknown key", func(t *testing.T, b string) *http.Request { return sign(t, put(t, b), unknownKey, hashOf(body), now) }, "InvalidAccessKeyId"},
		{"clock ahead", func(t *testing.T, b string) *http.Request {
			return sign(t, put(t, b), testCredentials, hashOf(body), now.Add(16*time.Minute))
		}, "RequestTimeTooSkewed"},
		{"clock behind", func(t *testing.T, b string) *http.Request {
			return sign(t, put(t, b), testCredentials, hashOf(body), now.Add(-16*time.Minute))
		}, "RequestTimeTooSkewed"},
		{"wrong payload hash", func(t *testing.T, b string) *http.Request {
			return sign(t, put(t, b), testCredentials, hashOf([]byte("other")), now)
		}, "XAmzContentSHA256Mismatch"},
		{"payload hash of empty body", func(t *testing.T, b string) *http.Request {
			return sign(t, newReq(t, "PUT", b, "/b/k", "", nil), testCredentials, hashOf(body), now)
		}, "XAmzContentSHA256Mismatch"},
		{"payload hash not hex", func(t *testing.T, b string) *http.Request {
			return sign(t, put(t, b), testCredentials, strings.Repeat("z", 64), now)
		}, "InvalidArgument"},
		{"payload hash short", func(t *testing.T, b string) *http.Request { return sign(t, put(t, b), testCredentials, "abc", now) }, "InvalidArgument"},
		{"payload hash swapped", resign(func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", unsignedPayload) }), "SignatureDoesNotMatch"},
		{"sigv4a payload", func(t *testing.T, b string) *http.Request {
			return sign(t, put(t, b), testCredentials, streamingECDSA, now)
		}, "InvalidRequest"},
		{"no payload hash header with body", resign(func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }), "InvalidRequest"},
		{"header added", resign(func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }), "AccessDenied"},
		{"signed header changed", resign(func(r *http.Request) { r.Header.Set("X-Amz-Date", now.Add(time.Second).UTC().Format(iso8601Format)) }), "SignatureDoesNotMatch"},
		{"path changed", resign(func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/b/l", "" }), "SignatureDoesNotMatch"},
		{"query added", resign(func(r *http.Request) { r.URL.RawQuery = "acl" }), "SignatureDoesNotMatch"},
		{"presign params too", resign(func(r *http.Request) { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" }), "InvalidArgument"},
		{"no date", resign(func(r *http.Request) { r.Header.Del("X-Amz-Date") }), "AccessDenied"},

		{"no credential", setAuth(func(a string) string { return strings.Replace(a, "Credential=", "Credentials=", 1) }), "AuthorizationHeaderMalformed"},
		{"no signed headers", setAuth(func(a string) string { return strings.Replace(a, "SignedHeaders=", "Signed=", 1) }), "AuthorizationHeaderMalformed"},
		{"no signature", setAuth(func(a string) string { return a[:strings.Index(a, ", Signature")] }), "AuthorizationHeaderMalformed"},
		{"component without =", setAuth(func(a string) string { return a + ", Extra" }), "AuthorizationHeaderMalformed"},
		{"short credential", setAuth(func(a string) string { return strings.Replace(a, "/aws4_request", "", 1) }), "AuthorizationHeaderMalformed"},
		{"service", setAuth(func(a string) string { return strings.Replace(a, "/s3/", "/ec2/", 1) }), "AuthorizationHeaderMalformed"},
		{"terminator", setAuth(func(a string) string { return strings.Replace(a, "aws4_request", "aws5_request", 1) }), "AuthorizationHeaderMalformed"},
		{"credential date", setAuth(func(a string) string { return strings.Replace(a, now.UTC().Format("/20060102/"), "/2013-5-24/", 1) }), "AuthorizationHeaderMalformed"},
		{"credential date differs", setAuth(func(a string) string {
			return strings.Replace(a, now.UTC().Format("/20060102/"), now.UTC().AddDate(0, 0, -1).Format("/20060102/"), 1)
		}), "AuthorizationHeaderMalformed"},
		{"host not signed", setAuth(func(a string) string { return strings.Replace(a, "host;", "", 1) }), "AccessDenied"},
		{"signature V4a", setAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) }), "InvalidRequest"},
		{"unknown scheme", setAuth(func(string) string { return "Bearer xyz" }), "InvalidArgument"},
		{"empty", setAuth(func(string) string { return "" }), "InvalidArgument"},
		{"scheme only", setAuth(func(string) string { return "AWS4-HMAC-SHA256" }), "AuthorizationHeaderMalformed"},
		{"two authorization headers", resign(func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }), "AuthorizationHeaderMalformed"},
		{"malformed query", resign(func(r *http.Request) { r.URL.RawQuery = "a=%G1" }), "InvalidURI"},
	} {
		f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
		send(t, tc.req(t, srv.URL))
		o := f.last(t)
		wantCode(t, tc.name, o.err, tc.code)
		if len(f.objects) != 0 {
			t.Errorf("%s: stored an object", tc.name)
		}
	}
}

// A request dated by Date instead of x-amz-date. No signer under test
// sends one, so it is signed with the verifier's own canonicalisation
// (checked against AWS's examples elsewhere): what is under test is taking
// the time from Date.
func TestDateHeader(t *testing.T) {
	f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
	for _, tc := range []struct {
		age    time.Duration
		layout string
		code   string
	}{
		{0, http.TimeFormat, ""},
		// Python's email.utils.formatdate, which botocore uses.
		{0, "Mon, 02 Jan 2006 15:04:05 -0000", ""},
		{0, time.RFC1123Z, ""},
		{0, time.RFC850, ""},
		{0, time.ANSIC, ""},
		{0, time.RFC3339, "AccessDenied"},
		{20 * time.Minute, http.TimeFormat, "RequestTimeTooSkewed"},
	} {
		at := time.Now().UTC().Truncate(time.Second).Add(-tc.age)
		r := newReq(t, "GET", srv.URL, "/b/k", "", nil)
		r.Header.Set("Date", at.Format(tc.layout))
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		s := &signature{amzDate: at.Format(iso8601Format), signedHeaders: "date;host;x-amz-content-sha256"}
		cred := testAccessKey + "/" + at.Format(yyyymmdd) + "/eu-central-1/s3/aws4_request"
		s.parseCredential(cred)
		server := r.Clone(context.Background())
		server.Host = r.URL.Host
		sig := (&Verifier{}).requestSignature(server, nil, s, emptySHA256, deriveSigningKey(testSecret, at.Format(yyyymmdd), "eu-central-1"), false)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+cred+", SignedHeaders="+s.signedHeaders+", Signature="+hex.EncodeToString(sig[:]))
		send(t, r)
		wantCode(t, fmt.Sprintf("Date %q, %v old", tc.layout, tc.age), f.last(t).err, tc.code)
	}
}

func TestPresigned(t *testing.T) {
	now := time.Now()
	presign := func(t *testing.T, method, base, path, query string, expires time.Duration, creds aws.Credentials, at time.Time, header http.Header) *http.Request {
		t.Helper()
		r := newReq(t, method, base, path, query, nil)
		q := r.URL.Query()
		q.Set("X-Amz-Expires", fmt.Sprint(int(expires.Seconds())))
		r.URL.RawQuery = q.Encode()
		for k, v := range header {
			r.Header[k] = v
		}
		signed, hdr, err := s3Signer().PresignHTTP(context.Background(), creds, r, unsignedPayload, "s3", "us-west-2", at)
		if err != nil {
			t.Fatal(err)
		}
		out, err := http.NewRequest(method, signed, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			if !strings.EqualFold(k, "host") {
				out.Header[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		req  func(t *testing.T, base string) *http.Request
		code string
	}{
		{"get", func(t *testing.T, b string) *http.Request {
			return presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now, nil)
		}, ""},
		{"awkward key and query", func(t *testing.T, b string) *http.Request {
			return presign(t, "GET", b, "/b/ä ö/+=&?.txt", "response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22&versionId=", time.Hour, testCredentials, now, nil)
		}, ""},
		{"signed header sent", func(t *testing.T, b string) *http.Request {
			return presign(t, "PUT", b, "/b/k", "", time.Hour, testCredentials, now, http.Header{"X-Amz-Meta-A": {"1"}, "Content-Type": {"text/plain"}})
		}, ""},
		{"expired", func(t *testing.T, b string) *http.Request {
			return presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now.Add(-61*time.Minute), nil)
		}, "AccessDenied"},
		{"not yet valid", func(t *testing.T, b string) *http.Request {
			return presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now.Add(20*time.Minute), nil)
		}, "AccessDenied"},
		{"wrong secret", func(t *testing.T, b string) *http.Request {
			return presign(t, "GET", b, "/b/k", "", time.Hour, aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: "x"}, now, nil)
		}, "SignatureDoesNotMatch"},
		{"unknown key", func(t *testing.T, b string) *http.Request {
			return presign(t, "GET", b, "/b/k", "", time.Hour, aws.Credentials{AccessKeyID: "AKIDNOPE", SecretAccessKey: "x"}, now, nil)
		}, "InvalidAccessKeyId"},
		{"method changed", func(t *testing.T, b string) *http.Request {
			r := presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now, nil)
			r.Method = "DELETE"
			return r
		}, "SignatureDoesNotMatch"},
		{"header added", func(t *testing.T, b string) *http.Request {
			r := presign(t, "PUT", b, "/b/k", "", time.Hour, testCredentials, now, nil)
			r.Header.Set("X-Amz-Copy-Source", "/secret/object")
			return r
		}, "AccessDenied"},
		{"signed header dropped", func(t *testing.T, b string) *http.Request {
			r := presign(t, "PUT", b, "/b/k", "", time.Hour, testCredentials, now, http.Header{"X-Amz-Meta-A": {"1"}})
			r.Header.Del("X-Amz-Meta-A")
			return r
		}, "SignatureDoesNotMatch"},
		{"query edited", func(t *testing.T, b string) *http.Request {
			r := presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now, nil)
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=3599", 1)
			return r
		}, "SignatureDoesNotMatch"},
		{"signature missing", func(t *testing.T, b string) *http.Request {
			r := presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now, nil)
			q := r.URL.Query()
			q.Del("X-Amz-Signature")
			r.URL.RawQuery = q.Encode()
			return r
		}, "AuthorizationQueryParametersError"},
		{"credential missing", func(t *testing.T, b string) *http.Request {
			r := presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now, nil)
			q := r.URL.Query()
			q.Del("X-Amz-Credential")
			r.URL.RawQuery = q.Encode()
			return r
		}, "AuthorizationQueryParametersError"},
		{"with authorization header", func(t *testing.T, b string) *http.Request {
			r := presign(t, "GET", b, "/b/k", "", time.Hour, testCredentials, now, nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return r
		}, "InvalidArgument"},
	} {
		f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
		send(t, tc.req(t, srv.URL))
		o := f.last(t)
		wantCode(t, tc.name, o.err, tc.code)
		if tc.code == "" && (!o.res.Presigned || o.res.AccessKey != testAccessKey || o.res.Region != "us-west-2") {
			t.Errorf("%s: result %+v", tc.name, o.res)
		}
	}
}

func TestAnonymous(t *testing.T) {
	f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
	send(t, newReq(t, "GET", srv.URL, "/b/k", "list-type=2", nil))
	o := f.last(t)
	if o.err != nil || !o.res.Anonymous || o.res.AccessKey != "" || o.res.Body != nil {
		t.Fatalf("anonymous GET: %+v, %v", o.res, o.err)
	}

	// An anonymous aws-chunked upload is still decoded.
	r := newReq(t, "PUT", srv.URL, "/b/k", "", []byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"))
	r.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	r.Header.Set("X-Amz-Decoded-Content-Length", "5")
	send(t, r)
	o = f.last(t)
	if o.err != nil || !o.res.Anonymous || string(o.body) != "hello" || o.checksumValue != "NhCmhg==" {
		t.Fatalf("anonymous chunked PUT: %+v, %q, %v", o.res, o.body, o.err)
	}

	// But a signed one cannot be.
	r = newReq(t, "PUT", srv.URL, "/b/k", "", []byte("0;chunk-signature=00\r\n\r\n"))
	r.Header.Set("X-Amz-Content-Sha256", streamingSigned)
	send(t, r)
	wantCode(t, "anonymous signed chunks", f.last(t).err, "AccessDenied")
}

// streamingReq signs an aws-chunked upload with the SDK signer (the seed)
// and frames data with the test encoder chained from it.
func streamingReq(t *testing.T, base string, mode string, data []byte, chunk int, trailerAlg s3checksum.Algorithm, mutate func(*http.Request)) *http.Request {
	t.Helper()
	now := time.Now().UTC()
	r := newReq(t, "PUT", base, "/b/k", "", nil)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)))
	var trailers []string
	if trailerAlg != s3checksum.None {
		r.Header.Set("X-Amz-Trailer", trailerAlg.Header())
		h := trailerAlg.New()
		h.Write(data)
		trailers = append(trailers, trailerAlg.Header()+":"+b64(h.Sum(nil)))
	}
	if mutate != nil {
		mutate(r)
	}
	sign(t, r, testCredentials, mode, now)
	var chain *testChain
	if mode != streamingUnsignedTrailer {
		auth := r.Header.Get("Authorization")
		seed := auth[strings.LastIndex(auth, "=")+1:]
		chain = newTestChain(testSecret, now.Format(iso8601Format), "eu-central-1", seed)
	}
	body := encodeChunked(data, chunk, chain, trailers...)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

func TestStreaming(t *testing.T) {
	data := bytes.Repeat([]byte("talus streaming upload "), 20000)
	f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
	for _, tc := range []struct {
		mode string
		alg  s3checksum.Algorithm
	}{
		{streamingSigned, s3checksum.None},
		{streamingSignedTrailer, s3checksum.CRC32C},
		{streamingSignedTrailer, s3checksum.SHA256},
		{streamingSignedTrailer, s3checksum.None},
		{streamingUnsignedTrailer, s3checksum.CRC64NVME},
		{streamingUnsignedTrailer, s3checksum.SHA1},
		{streamingUnsignedTrailer, s3checksum.None},
	} {
		send(t, streamingReq(t, srv.URL, tc.mode, data, 64<<10, tc.alg, nil))
		o := f.last(t)
		name := tc.mode + " " + tc.alg.String()
		wantCode(t, name, o.err, "")
		if !bytes.Equal(o.body, data) {
			t.Errorf("%s: %d bytes decoded", name, len(o.body))
		}
		if o.res != nil && (o.res.TrailerChecksum != tc.alg || o.res.DecodedLength != int64(len(data))) {
			t.Errorf("%s: result %+v", name, o.res)
		}
		if tc.alg != s3checksum.None && o.checksumValue == "" {
			t.Errorf("%s: no trailer value", name)
		}
	}
}

func TestStreamingRefused(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	edit := func(mode string, alg s3checksum.Algorithm, f func([]byte) []byte) func(*testing.T, string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			r := streamingReq(t, base, mode, data, 16<<10, alg, nil)
			b, _ := io.ReadAll(r.Body)
			b = f(bytes.Clone(b))
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			return r
		}
	}
	header := func(mode string, alg s3checksum.Algorithm, k, v string) func(*testing.T, string) *http.Request {
		return func(t *testing.T, base string) *http.Request {
			return streamingReq(t, base, mode, data, 16<<10, alg, func(r *http.Request) { r.Header.Set(k, v) })
		}
	}
	flip := func(at func([]byte) int) func([]byte) []byte {
		return func(b []byte) []byte { b[at(b)] ^= 1; return b }
	}
	sigAt := func(n int) func([]byte) int {
		return func(b []byte) int {
			i := 0
			for range n {
				i += bytes.Index(b[i:], []byte("chunk-signature=")) + 1
			}
			return i - 1 + len("chunk-signature=") + 5
		}
	}
	for _, tc := range []struct {
		name string
		req  func(*testing.T, string) *http.Request
		code string
	}{
		{"chunk data", edit(streamingSigned, s3checksum.None, flip(func(b []byte) int { return 100_000 })), "SignatureDoesNotMatch"},
		{"first chunk signature", edit(streamingSigned, s3checksum.None, flip(sigAt(1))), "SignatureDoesNotMatch"},
		{"fifth chunk signature", edit(streamingSigned, s3checksum.None, flip(sigAt(5))), "SignatureDoesNotMatch"},
		{"final chunk signature", edit(streamingSignedTrailer, s3checksum.CRC32, flip(sigAt(11))), "SignatureDoesNotMatch"},
		{"chunks swapped", edit(streamingSigned, s3checksum.None, func(b []byte) []byte {
			// Two whole chunks (header, data, CRLF) exchanged: each is
			// validly signed, but not at that place in the chain.
			n := len(fmt.Sprintf("%x;chunk-signature=", 16<<10)) + 64 + 2 + 16<<10 + 2
			c1, c2 := bytes.Clone(b[:n]), bytes.Clone(b[n:2*n])
			copy(b, c2)
			copy(b[n:], c1)
			return b
		}), "SignatureDoesNotMatch"},
		{"chunk dropped", edit(streamingSigned, s3checksum.None, func(b []byte) []byte {
			n := len(fmt.Sprintf("%x;chunk-signature=", 16<<10)) + 64 + 2 + 16<<10 + 2
			return append(b[:n], b[2*n:]...)
		}), "SignatureDoesNotMatch"},
		{"signed trailer value", edit(streamingSignedTrailer, s3checksum.CRC32, func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:")
			b[i] = 'A' + (b[i]-'A'+1)%26
			return b
		}), "SignatureDoesNotMatch"},
		{"trailer signature", edit(streamingSignedTrailer, s3checksum.CRC32, flip(func(b []byte) int {
			return bytes.Index(b, []byte("x-amz-trailer-signature:")) + 30
		})), "SignatureDoesNotMatch"},
		{"trailer signature removed", edit(streamingSignedTrailer, s3checksum.CRC32, func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
			return append(b[:i], "\r\n"...)
		}), "MalformedTrailerError"},
		{"unsigned data", edit(streamingUnsignedTrailer, s3checksum.CRC32, flip(func(b []byte) int { return 50_000 })), "BadDigest"},
		{"unsigned trailer value", edit(streamingUnsignedTrailer, s3checksum.CRC32, func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:")
			b[i] = 'A' + (b[i]-'A'+1)%26
			return b
		}), "BadDigest"},
		{"unsigned trailer missing", edit(streamingUnsignedTrailer, s3checksum.CRC32, func(b []byte) []byte {
			return append(b[:bytes.Index(b, []byte("x-amz-checksum"))], "\r\n"...)
		}), "MalformedTrailerError"},
		{"decoded length too small", header(streamingSigned, s3checksum.None, "X-Amz-Decoded-Content-Length", "1000"), "IncompleteBody"},
		{"decoded length too large", header(streamingUnsignedTrailer, s3checksum.None, "X-Amz-Decoded-Content-Length", "1000000"), "IncompleteBody"},
		{"decoded length garbage", header(streamingUnsignedTrailer, s3checksum.None, "X-Amz-Decoded-Content-Length", "12x"), "MissingContentLength"},
		{"two trailers", header(streamingUnsignedTrailer, s3checksum.CRC32, "X-Amz-Trailer", "x-amz-checksum-crc32, x-amz-checksum-sha1"), "InvalidRequest"},
		{"unsupported trailer", header(streamingUnsignedTrailer, s3checksum.None, "X-Amz-Trailer", "x-amz-meta-foo"), "InvalidRequest"},
		{"trailer and checksum header", header(streamingUnsignedTrailer, s3checksum.CRC32, "X-Amz-Checksum-Sha1", "L7XhNBn8iSRoZeejJPR27GJOh0A="), "InvalidRequest"},
		{"sdk algorithm disagrees", header(streamingUnsignedTrailer, s3checksum.CRC32, "X-Amz-Sdk-Checksum-Algorithm", "CRC32C"), "InvalidRequest"},
		{"trailer with chunks but no trailer mode", header(streamingSigned, s3checksum.None, "X-Amz-Trailer", "x-amz-checksum-crc32"), "MalformedTrailerError"},
		{"trailer without aws-chunked", func(t *testing.T, base string) *http.Request {
			r := newReq(t, "PUT", base, "/b/k", "", []byte("x"))
			r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			return sign(t, r, testCredentials, unsignedPayload, time.Now())
		}, "MalformedTrailerError"},
	} {
		f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
		send(t, tc.req(t, srv.URL))
		o := f.last(t)
		wantCode(t, tc.name, o.err, tc.code)
		if len(f.objects) != 0 {
			t.Errorf("%s: stored an object", tc.name)
		}
	}
}

type failingCreds struct{}

var errStoreDown = errors.New("credential store unavailable")

func (failingCreds) Secret(context.Context, string) (string, error) { return "", errStoreDown }

func TestCredentialStoreFailure(t *testing.T) {
	f, srv := startFake(t, &Verifier{Creds: failingCreds{}}, false)
	send(t, sign(t, newReq(t, "GET", srv.URL, "/b/k", "", nil), testCredentials, emptySHA256, time.Now()))
	err := f.last(t).err
	wantCode(t, "store down", err, "InternalError")
	if !errors.Is(err, errStoreDown) {
		t.Errorf("cause lost: %v", err)
	}
}

func TestKeyCacheBounded(t *testing.T) {
	var c keyCache
	for i := range maxCachedKeys + 100 {
		k := c.get(fmt.Sprint("secret", i), "20260101", "r")
		if *k != *deriveSigningKey(fmt.Sprint("secret", i), "20260101", "r") {
			t.Fatal("cached key differs from derived")
		}
	}
	if len(c.keys) > maxCachedKeys {
		t.Errorf("cache holds %d keys", len(c.keys))
	}
	a, b := c.get("s", "20260101", "r"), c.get("s", "20260101", "r")
	if a != b {
		t.Error("second lookup was not cached")
	}
	if *c.get("s", "20260102", "r") == *a || *c.get("s", "20260101", "q") == *a || *c.get("t", "20260101", "r") == *a {
		t.Error("key does not depend on secret, date and region")
	}
}

func md5sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

func TestHMACMatchesCryptoHMAC(t *testing.T) {
	key := deriveSigningKey("secret", "20260101", "us-east-1")
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 200, 1000} {
		msg := randomData(n, uint64(n))
		buf := append(make([]byte, hmacScratch), msg...)
		mac := hmac.New(sha256.New, key[:])
		mac.Write(msg)
		if got := hmacSHA256(key, buf); !bytes.Equal(got[:], mac.Sum(nil)) {
			t.Errorf("len %d: %x, crypto/hmac %x", n, got, mac.Sum(nil))
		}
	}
}

// Many requests at once through one Verifier: the key cache and the
// buffer pools under the race detector.
func TestConcurrentVerify(t *testing.T) {
	v := &Verifier{Creds: memCreds{testAccessKey: testSecret, "AKIDOTHER": "other-secret"}}
	data := randomData(100_000, 8)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			creds := testCredentials
			if g%2 == 1 {
				creds = aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: "other-secret"}
			}
			for i := range 20 {
				r := newReq(t, "PUT", "http://127.0.0.1:9000", fmt.Sprintf("/b/k%d", i), "", data)
				sign(t, r, creds, hashOf(data), time.Now())
				r.Host = r.URL.Host
				res, err := v.Verify(r)
				if err == nil {
					var got []byte
					got, err = io.ReadAll(res.Body)
					if err == nil && !bytes.Equal(got, data) {
						err = errors.New("body changed")
					}
				}
				if err == nil && res.AccessKey != creds.AccessKeyID {
					err = fmt.Errorf("authenticated as %q", res.AccessKey)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The canonical query is sorted by name and then value, whatever order
// the parameters arrive in (the SDK signer rewrites the URL in sorted order,
// so put the client's order back before sending).
func TestQueryOrderOnTheWire(t *testing.T) {
	f, srv := startFake(t, &Verifier{Creds: testCreds()}, false)
	const raw = "b=2&a=3&a=1&Z=0&%5B=x&a=&c"
	r := newReq(t, "GET", srv.URL, "/b/k", raw, nil)
	sign(t, r, testCredentials, emptySHA256, time.Now())
	if r.URL.RawQuery == raw {
		t.Fatal("the signer kept the order; this test needs another signer")
	}
	r.URL.RawQuery = raw
	send(t, r)
	wantCode(t, "unsorted query", f.last(t).err, "")
}

func TestContentEncoding(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"aws-chunked"}, ""},
		{[]string{"aws-chunked,gzip"}, "gzip"},
		{[]string{"gzip, AWS-Chunked ,br"}, "gzip,br"},
		{[]string{"aws-chunked", "gzip"}, "gzip"},
		{[]string{"identity"}, "identity"},
	} {
		h := http.Header{"Content-Encoding": tc.in}
		if got := ContentEncoding(h); got != tc.want {
			t.Errorf("ContentEncoding(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
