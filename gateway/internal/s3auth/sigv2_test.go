package s3auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// verifyServer runs a server that only authenticates requests, and returns
// a function giving the outcome of the last one.
func verifyServer(t *testing.T, v *Verifier) (*httptest.Server, func() (*Result, error)) {
	t.Helper()
	var mu sync.Mutex
	var res *Result
	var err error
	seen := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, e := v.Verify(r)
		if e == nil && rs.Body != nil {
			_, e = io.Copy(io.Discard, rs.Body)
		}
		mu.Lock()
		res, err, seen = rs, e, true
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() (*Result, error) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if !seen {
			t.Fatal("the server saw no request")
		}
		seen = false
		return res, err
	}
}

// The examples of AWS's "Signing and authenticating REST requests"
// (Signature Version 2), with their documented signatures, sent over a
// real HTTP connection. The DELETE example puts x-amz-date in the Date
// line, the upload example repeats a header and the Unicode example
// percent-encodes in both cases.
func TestDocumentedV2Examples(t *testing.T) {
	for _, tc := range []struct {
		name    string
		domain  string
		now     string
		req     docRequest
		wantKey string
	}{
		{"Object GET", "us-west-1.s3.amazonaws.com", "Tue, 27 Mar 2007 19:36:42 +0000", docRequest{
			method: "GET", target: "/photos/puppy.jpg", host: "awsexamplebucket1.us-west-1.s3.amazonaws.com",
			headers: [][2]string{
				{"Date", "Tue, 27 Mar 2007 19:36:42 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="},
			},
		}, docAccessKey},
		{"Object PUT", "s3.amazonaws.com", "Tue, 27 Mar 2007 21:15:45 +0000", docRequest{
			method: "PUT", target: "/photos/puppy.jpg", host: "johnsmith.s3.amazonaws.com",
			headers: [][2]string{
				{"Content-Type", "image/jpeg"},
				{"Date", "Tue, 27 Mar 2007 21:15:45 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg="},
			},
			body: []byte("a puppy"),
		}, docAccessKey},
		{"List", "s3.amazonaws.com", "Tue, 27 Mar 2007 19:42:41 +0000", docRequest{
			method: "GET", target: "/?prefix=photos&max-keys=50&marker=puppy", host: "johnsmith.s3.amazonaws.com",
			headers: [][2]string{
				{"User-Agent", "Mozilla/5.0"},
				{"Date", "Tue, 27 Mar 2007 19:42:41 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U="},
			},
		}, docAccessKey},
		{"Fetch", "s3.amazonaws.com", "Tue, 27 Mar 2007 19:44:46 +0000", docRequest{
			method: "GET", target: "/?acl", host: "johnsmith.s3.amazonaws.com",
			headers: [][2]string{
				{"Date", "Tue, 27 Mar 2007 19:44:46 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM="},
			},
		}, docAccessKey},
		{"Delete", "s3.amazonaws.com", "Tue, 27 Mar 2007 21:20:26 +0000", docRequest{
			method: "DELETE", target: "/johnsmith/photos/puppy.jpg", host: "s3.us-west-1.amazonaws.com",
			headers: [][2]string{
				{"User-Agent", "dotnet"},
				{"Date", "Tue, 27 Mar 2007 21:20:27 +0000"},
				{"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:lx3byBScXR6KzyMaifNkardMwNk="},
			},
		}, docAccessKey},
		// Sent path style: its resource is the same as that of the
		// documented CNAME-style request.
		{"Upload", "s3.amazonaws.com", "Tue, 27 Mar 2007 21:06:08 +0000", docRequest{
			method: "PUT", target: "/static.johnsmith.net/db-backup.dat.gz", host: "s3.us-west-1.amazonaws.com",
			headers: [][2]string{
				{"User-Agent", "curl/7.15.5"},
				{"Date", "Tue, 27 Mar 2007 21:06:08 +0000"},
				{"x-amz-acl", "public-read"},
				{"content-type", "application/x-download"},
				{"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="},
				{"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"},
				{"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
				{"X-Amz-Meta-FileChecksum", "0x02661779"},
				{"X-Amz-Meta-ChecksumAlgorithm", "crc32"},
				{"Content-Disposition", "attachment; filename=database.dat"},
				{"Content-Encoding", "gzip"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:ilyl83RwaSoYIEdixDQcA4OnAnc="},
			},
			body: []byte("not really a database backup"),
		}, docAccessKey},
		{"List all my buckets", "s3.amazonaws.com", "Wed, 28 Mar 2007 01:29:59 +0000", docRequest{
			method: "GET", target: "/", host: "s3.us-west-1.amazonaws.com",
			headers: [][2]string{
				{"Date", "Wed, 28 Mar 2007 01:29:59 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qGdzdERIC03wnaRNKh6OqZehG9s="},
			},
		}, docAccessKey},
		{"Unicode keys", "s3.amazonaws.com", "Wed, 28 Mar 2007 01:49:49 +0000", docRequest{
			method: "GET", target: "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", host: "s3.us-west-1.amazonaws.com",
			headers: [][2]string{
				{"Date", "Wed, 28 Mar 2007 01:49:49 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:DNEZGsoieTZ92F3bUfSPQcbGmlM="},
			},
		}, docAccessKey},
		{"Query string", "s3.amazonaws.com", "Tue, 27 Mar 2007 19:36:42 +0000", docRequest{
			method: "GET", target: "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
			host: "johnsmith.s3.amazonaws.com",
		}, docAccessKey},
	} {
		now, err := http.ParseTime(strings.Replace(tc.now, "+0000", "GMT", 1))
		if err != nil {
			t.Fatal(err)
		}
		v := docVerifier(now)
		v.Domain = tc.domain
		srv, last := verifyServer(t, v)
		tc.req.send(t, srv.URL)
		res, err := last()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if res.AccessKey != tc.wantKey || res.Anonymous {
			t.Errorf("%s: result %+v", tc.name, res)
		}

		// The same request with its signature or its resource changed.
		tampered := tc.req
		tampered.headers = append([][2]string(nil), tc.req.headers...)
		if i := strings.Index(tampered.target, "Signature="); i >= 0 {
			tampered.target = tampered.target[:i+len("Signature=")] + "A" + tampered.target[i+len("Signature=")+1:]
		} else {
			tampered.target += map[bool]string{true: "&", false: "?"}[strings.Contains(tampered.target, "?")] + "uploads"
		}
		tampered.send(t, srv.URL)
		if _, err := last(); err == nil {
			t.Errorf("%s tampered: accepted", tc.name)
		}
	}
}

// v2Sign signs r with Signature Version 2 the way the specification says,
// independently of the verifier: for the tests of everything around the
// signature.
func v2Sign(r *http.Request, ak, secret, resource string) {
	var amz []string
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			amz = append(amz, lk+":"+strings.Join(r.Header.Values(k), ","))
		}
	}
	slices.Sort(amz)
	sts := r.Method + "\n" + r.Header.Get("Content-Md5") + "\n" + r.Header.Get("Content-Type") + "\n" + r.Header.Get("Date") + "\n"
	for _, h := range amz {
		sts += h + "\n"
	}
	sts += resource
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(sts))
	r.Header.Set("Authorization", "AWS "+ak+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

func TestV2Refused(t *testing.T) {
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	srv, last := verifyServer(t, &Verifier{Creds: testCreds(), Now: fixedNow(now)})
	req := func(method, target string, hdr map[string]string, body string) *http.Request {
		r, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
	signed := func(hdr map[string]string, body string) *http.Request {
		if hdr == nil {
			hdr = map[string]string{}
		}
		if _, ok := hdr["Date"]; !ok {
			hdr["Date"] = date
		}
		r := req("PUT", "/b/k", hdr, body)
		v2Sign(r, testAccessKey, testSecret, "/b/k")
		return r
	}
	try := func(name string, r *http.Request, code string) {
		t.Helper()
		send(t, r)
		res, err := last()
		wantCode(t, name, err, code)
		if code == "" && err == nil && res.AccessKey != testAccessKey {
			t.Errorf("%s: access key %q", name, res.AccessKey)
		}
	}

	try("good", signed(nil, "data"), "")
	try("good, numeric zone", signed(map[string]string{"Date": now.Format(time.RFC1123Z)}, "data"), "")
	try("good, x-amz-date", signed(map[string]string{"Date": "", "X-Amz-Date": date}, "data"), "")
	try("good, body hash", signed(map[string]string{"X-Amz-Content-Sha256": hashOf([]byte("data"))}, "data"), "")
	try("body hash mismatch", signed(map[string]string{"X-Amz-Content-Sha256": hashOf([]byte("other"))}, "data"), "XAmzContentSHA256Mismatch")
	try("signed chunks need V4", signed(map[string]string{"X-Amz-Content-Sha256": streamingSigned, "X-Amz-Decoded-Content-Length": "4"}, "data"), "AccessDenied")

	// botocore signs a path-style bucket request as "/bucket/".
	r := req("PUT", "/b", map[string]string{"Date": date}, "")
	v2Sign(r, testAccessKey, testSecret, "/b/")
	try("bucket, signed with a slash", r, "")
	r = req("PUT", "/b", map[string]string{"Date": date}, "")
	v2Sign(r, testAccessKey, testSecret, "/b")
	try("bucket, signed as sent", r, "")
	r = req("PUT", "/b/k", map[string]string{"Date": date}, "")
	v2Sign(r, testAccessKey, testSecret, "/b/k/")
	try("object, signed with a slash", r, "SignatureDoesNotMatch")

	r = signed(nil, "data")
	r.Header.Set("Authorization", "AWS "+testAccessKey+":"+base64.StdEncoding.EncodeToString(make([]byte, 20)))
	try("wrong signature", r, "SignatureDoesNotMatch")
	r = req("PUT", "/b/k", map[string]string{"Date": date}, "data")
	v2Sign(r, testAccessKey, "wrong", "/b/k")
	try("wrong secret", r, "SignatureDoesNotMatch")
	r = req("PUT", "/b/k", map[string]string{"Date": date}, "data")
	v2Sign(r, "AKIDWHO", testSecret, "/b/k")
	try("unknown key", r, "InvalidAccessKeyId")
	r = signed(nil, "data")
	r.Header.Set("X-Amz-Acl", "public-read")
	try("header added", r, "SignatureDoesNotMatch")
	r = signed(nil, "data")
	r.URL.Path = "/b/l"
	try("other key", r, "SignatureDoesNotMatch")
	r = signed(nil, "data")
	r.URL.RawQuery = "acl"
	try("subresource added", r, "SignatureDoesNotMatch")
	r = signed(nil, "data")
	r.Header.Set("Authorization", "AWS HAHAHA")
	try("malformed", r, "InvalidArgument")
	r = signed(nil, "data")
	r.Header.Set("Authorization", "AWS "+testAccessKey+":short")
	try("short signature", r, "SignatureDoesNotMatch")

	try("no date", signed(map[string]string{"Date": ""}, "data"), "AccessDenied")
	try("bad x-amz-date", signed(map[string]string{"X-Amz-Date": "Bad Date"}, "data"), "AccessDenied")
	try("empty x-amz-date", signed(map[string]string{"X-Amz-Date": ""}, "data"), "AccessDenied")
	try("before the epoch", signed(map[string]string{"X-Amz-Date": "Tue, 07 Jul 1950 21:53:04 GMT"}, "data"), "AccessDenied")
	try("long ago", signed(map[string]string{"X-Amz-Date": "Tue, 07 Jul 2010 21:53:04 GMT"}, "data"), "RequestTimeTooSkewed")
	try("far future", signed(map[string]string{"X-Amz-Date": "Tue, 07 Jul 9999 21:53:04 GMT"}, "data"), "RequestTimeTooSkewed")
	try("skewed Date", signed(map[string]string{"Date": now.Add(20 * time.Minute).Format(http.TimeFormat)}, "data"), "RequestTimeTooSkewed")

	// Presigned.
	presign := func(method, path string, expires time.Time) string {
		exp := strconv.FormatInt(expires.Unix(), 10)
		mac := hmac.New(sha1.New, []byte(testSecret))
		mac.Write([]byte(method + "\n\n\n" + exp + "\n" + path))
		return srv.URL + path + "?AWSAccessKeyId=" + testAccessKey + "&Expires=" + exp +
			"&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	u := presign("GET", "/b/k", now.Add(time.Minute))
	try("presigned", req("GET", u[len(srv.URL):], nil, ""), "")
	try("presigned, other method", req("DELETE", u[len(srv.URL):], nil, ""), "SignatureDoesNotMatch")
	try("presigned, header added", req("GET", u[len(srv.URL):], map[string]string{"X-Amz-Copy-Source": "/x/y"}, ""), "SignatureDoesNotMatch")
	u = presign("GET", "/b/k", now.Add(-time.Second))
	try("presigned, expired", req("GET", u[len(srv.URL):], nil, ""), "AccessDenied")
	try("presigned, no signature", req("GET", "/b/k?AWSAccessKeyId="+testAccessKey+"&Expires=1", nil, ""), "AccessDenied")
	try("presigned, bad expiry", req("GET", "/b/k?AWSAccessKeyId="+testAccessKey+"&Expires=soon&Signature=x", nil, ""), "AccessDenied")
	r = req("GET", presign("GET", "/b/k", now.Add(time.Minute))[len(srv.URL):], nil, "")
	v2Sign(r, testAccessKey, testSecret, "/b/k")
	try("presigned and header", r, "InvalidArgument")
}

// minio-go signs V2 when given V2 credentials: headers for its API calls,
// the query for presigned URLs.
func TestMinioGoV2(t *testing.T) {
	ctx := context.Background()
	e := newClientEnv(t, false)
	e.v.Domain = "talus.test"
	data := randomData(100_000, 8)
	for _, lookup := range []minio.BucketLookupType{minio.BucketLookupPath, minio.BucketLookupDNS} {
		name := map[minio.BucketLookupType]string{minio.BucketLookupPath: "path style", minio.BucketLookupDNS: "virtual host"}[lookup]
		c := e.minioV2(t, testAccessKey, testSecret, lookup)
		if _, err := c.PutObject(ctx, "bkt", awkwardKey, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
			UserMetadata: map[string]string{"Color": "blue"}, ContentType: "text/plain",
		}); err != nil {
			t.Fatalf("%s: put: %v", name, err)
		}
		stored := "/bkt/" + awkwardKey
		if lookup == minio.BucketLookupDNS {
			stored = "/" + awkwardKey // the bucket was in the Host
		}
		if _, ok := e.fake.object(stored); !ok {
			t.Fatalf("%s: nothing stored at %s", name, stored)
		}
		o, err := c.GetObject(ctx, "bkt", awkwardKey, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("%s: get: %v", name, err)
		}
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: get: %d bytes, %v", name, len(got), err)
		}
		for _, o := range e.fake.outcomes() {
			if o.err != nil {
				t.Errorf("%s: %s: %v", name, o.method, o.err)
			}
			if !strings.HasPrefix(o.headers.Get("Authorization"), "AWS "+testAccessKey+":") {
				t.Errorf("%s: %s not signed V2: %q", name, o.method, o.headers.Get("Authorization"))
			}
		}

		u, err := c.PresignedGetObject(ctx, "bkt", awkwardKey, time.Minute, url.Values{"response-content-type": {"text/plain; charset=utf-8"}})
		if err != nil {
			t.Fatal(err)
		}
		if !u.Query().Has("AWSAccessKeyId") {
			t.Fatalf("%s: not a V2 URL: %s", name, u)
		}
		hc := &http.Client{Transport: e.tamp}
		res, err := hc.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		wantCode(t, name+": presigned GET", e.fake.last(t).err, "")

		c = e.minioV2(t, testAccessKey, "wrong", lookup)
		_, err = c.PutObject(ctx, "bkt", "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if got := minio.ToErrorResponse(err).Code; got != "SignatureDoesNotMatch" {
			t.Errorf("%s: wrong secret: %q (%v)", name, got, err)
		}
		e.fake.outcomes()
	}
}

// minioV2 returns a minio-go client signing with Signature Version 2. For
// virtual-host-style requests it names the server test.talus and dials
// it whatever the host.
func (e *clientEnv) minioV2(t *testing.T, ak, sk string, lookup minio.BucketLookupType) *minio.Client {
	u, _ := url.Parse(e.srv.URL)
	endpoint := u.Host
	tr := http.RoundTripper(e.tamp)
	if lookup == minio.BucketLookupDNS {
		_, port, _ := net.SplitHostPort(u.Host)
		endpoint = e.v.Domain + ":" + port
		d := &net.Dialer{}
		tr = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, u.Host)
		}}
		e.tamp.base = tr
		tr = e.tamp
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:        miniocreds.NewStaticV2(ak, sk, ""),
		Transport:    tr,
		Region:       "us-east-1",
		MaxRetries:   1,
		BucketLookup: lookup,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
