package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestPutGetSizes(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	plain := newS3HTTP(t, rootKey, rootSecret)
	b := newBucket(t, c)
	// Empty, inline, one segment, several segments.
	for _, size := range []int{0, 1, 100 << 10, 3<<20 + 17} {
		for name, cl := range map[string]*s3.Client{"tls": c, "http": plain} {
			key := fmt.Sprintf("obj-%s-%d", name, size)
			data := randBytes(size)
			out, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
			must(t, err)
			if *out.ETag != `"`+md5hex(data)+`"` {
				t.Errorf("%s: PUT ETag %s, want md5 %s", key, *out.ETag, md5hex(data))
			}
			got := getBytes(t, cl, b, key)
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: read back %d bytes that differ from the %d written", key, len(got), len(data))
			}
			head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
			must(t, err)
			if *head.ContentLength != int64(size) || *head.ETag != `"`+md5hex(data)+`"` {
				t.Errorf("%s: HEAD length %d ETag %s", key, *head.ContentLength, *head.ETag)
			}
			// Sent in a header over HTTP, in an aws-chunked trailer over
			// TLS; either way it must come back, right.
			want := crc32.ChecksumIEEE(data)
			wantB64 := base64.StdEncoding.EncodeToString([]byte{byte(want >> 24), byte(want >> 16), byte(want >> 8), byte(want)})
			if head.ChecksumCRC32 == nil || *head.ChecksumCRC32 != wantB64 {
				t.Errorf("%s: HEAD checksum %v, want %s", key, head.ChecksumCRC32, wantB64)
			}
		}
	}
}

func TestObjectAttributes(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &b, Key: aws.String("dir/attrs.txt"), Body: strings.NewReader("hello"),
		ContentType:        aws.String("text/plain; charset=utf-8"),
		CacheControl:       aws.String("max-age=60"),
		ContentDisposition: aws.String(`attachment; filename="a.txt"`),
		ContentEncoding:    aws.String("identity"),
		ContentLanguage:    aws.String("en"),
		Expires:            &expires,
		StorageClass:       types.StorageClassStandardIa,
		Metadata:           map[string]string{"Mode": "0644", "uid": "1000", "mtime": "1700000000"},
	})
	must(t, err)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("dir/attrs.txt")})
	must(t, err)
	io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if *out.ContentType != "text/plain; charset=utf-8" || *out.CacheControl != "max-age=60" ||
		*out.ContentDisposition != `attachment; filename="a.txt"` || *out.ContentEncoding != "identity" ||
		*out.ContentLanguage != "en" || out.StorageClass != types.StorageClassStandardIa {
		t.Errorf("stored headers came back as %+v", out)
	}
	if out.ExpiresString == nil || *out.ExpiresString != expires.Format(http.TimeFormat) {
		t.Errorf("Expires = %v", out.ExpiresString)
	}
	if out.Metadata["mode"] != "0644" || out.Metadata["uid"] != "1000" || out.Metadata["mtime"] != "1700000000" {
		t.Errorf("user metadata %v", out.Metadata)
	}
	if out.LastModified == nil || time.Since(*out.LastModified) > time.Minute {
		t.Errorf("Last-Modified %v", out.LastModified)
	}

	// The native client sees the same record, under the documented keys.
	o, err := env.client.Head(ctx, b, "dir/attrs.txt")
	must(t, err)
	for k, v := range map[string]string{"x-amz-meta-mode": "0644", "cache-control": "max-age=60", "content-language": "en", "x-amz-storage-class": "STANDARD_IA"} {
		if o.Meta[k] != v {
			t.Errorf("Meta[%s] = %q, want %q (all: %v)", k, o.Meta[k], v, o.Meta)
		}
	}

	// Response overrides.
	out, err = c.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &b, Key: aws.String("dir/attrs.txt"),
		ResponseContentType: aws.String("application/x-test"), ResponseContentDisposition: aws.String("inline"),
		ResponseCacheControl: aws.String("no-cache"), ResponseContentLanguage: aws.String("fr"),
	})
	must(t, err)
	out.Body.Close()
	if *out.ContentType != "application/x-test" || *out.ContentDisposition != "inline" || *out.CacheControl != "no-cache" || *out.ContentLanguage != "fr" {
		t.Errorf("overrides ignored: %+v", out)
	}

	// No Content-Type: S3's default.
	req := rawRequest(t, "PUT", env.httpURL+"/"+b+"/untyped", []byte("x"), nil, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: aws.String("untyped")})
	must(t, err)
	if *h.ContentType != "binary/octet-stream" {
		t.Errorf("default Content-Type %q", *h.ContentType)
	}

	// Header octets beyond ASCII come back as they were sent, whether
	// they are UTF-8 or (as Python sends them) ISO-8859-1.
	hdr := http.Header{"X-Amz-Meta-Latin": {"Hello World\xe9"}, "X-Amz-Meta-Utf8": {"Hello Worldé"}}
	resp, body = do(t, rawRequest(t, "PUT", env.httpURL+"/"+b+"/octets", []byte("x"), hdr, rootKey, rootSecret, time.Now()))
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, rawRequest(t, "GET", env.httpURL+"/"+b+"/octets", nil, nil, rootKey, rootSecret, time.Now()))
	if got := resp.Header.Get("X-Amz-Meta-Latin"); got != "Hello World\xe9" {
		t.Errorf("ISO-8859-1 metadata came back as %q", got)
	}
	if got := resp.Header.Get("X-Amz-Meta-Utf8"); got != "Hello Worldé" {
		t.Errorf("UTF-8 metadata came back as %q", got)
	}
	o, err = env.client.Head(ctx, b, "octets")
	must(t, err)
	if o.Meta["x-amz-meta-latin"] != "Hello Worldé" {
		t.Errorf("ISO-8859-1 metadata stored as %q", o.Meta["x-amz-meta-latin"])
	}

	// Metadata over S3's 2 KiB limit.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("fat"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"big": strings.Repeat("v", 2100)}})
	wantCode(t, err, "MetadataTooLarge")
	wantAbsent(t, c, b, "fat")
}

func TestRanges(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for _, size := range []int{1000, 2<<20 + 5} {
		key := fmt.Sprintf("r%d", size)
		data := randBytes(size)
		putBytes(t, c, b, key, data)
		n := int64(size)
		for _, tc := range []struct {
			rng        string
			start, end int64 // inclusive
		}{
			{"bytes=0-9", 0, 9},
			{"bytes=10-", 10, n - 1},
			{"bytes=-10", n - 10, n - 1},
			{"bytes=-100000000", 0, n - 1},
			{fmt.Sprintf("bytes=%d-%d", n-5, n+100), n - 5, n - 1},
			{fmt.Sprintf("bytes=%d-%d", n-1, n-1), n - 1, n - 1},
		} {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &key, Range: aws.String(tc.rng)})
			if err != nil {
				t.Fatalf("%s %s: %v", key, tc.rng, err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			must(t, err)
			if !bytes.Equal(got, data[tc.start:tc.end+1]) {
				t.Errorf("%s %s: got %d bytes, want [%d,%d]", key, tc.rng, len(got), tc.start, tc.end)
			}
			wantCR := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, n)
			if out.ContentRange == nil || *out.ContentRange != wantCR {
				t.Errorf("%s %s: Content-Range %v, want %s", key, tc.rng, out.ContentRange, wantCR)
			}
			if out.ChecksumCRC32 != nil {
				t.Errorf("%s %s: whole-object checksum sent with a range", key, tc.rng)
			}
		}
		for _, rng := range []string{fmt.Sprintf("bytes=%d-", n), fmt.Sprintf("bytes=%d-%d", n+10, n+20), "bytes=-0"} {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &key, Range: aws.String(rng)})
			wantCode(t, err, "InvalidRange")
			wantStatus(t, err, http.StatusRequestedRangeNotSatisfiable)
		}
		// Not a single byte range: the whole object, as S3 does.
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &key, Range: aws.String("bytes=0-1,5-6")})
		must(t, err)
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if len(got) != size {
			t.Errorf("multi-range: %d bytes", len(got))
		}
	}
	putBytes(t, c, b, "empty", nil)
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("empty"), Range: aws.String("bytes=0-10")})
	wantCode(t, err, "InvalidRange")
}

func TestConditionalRequests(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	key := aws.String("cond")
	etag := *putBytes(t, c, b, *key, []byte("version 1")).ETag
	past := time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)

	get := func(in s3.GetObjectInput) error {
		in.Bucket, in.Key = &b, key
		out, err := c.GetObject(ctx, &in)
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	head := func(in s3.HeadObjectInput) error {
		in.Bucket, in.Key = &b, key
		_, err := c.HeadObject(ctx, &in)
		return err
	}
	must(t, get(s3.GetObjectInput{IfMatch: &etag}))
	must(t, get(s3.GetObjectInput{IfMatch: aws.String("*")}))
	wantCode(t, get(s3.GetObjectInput{IfMatch: aws.String(`"0123"`)}), "PreconditionFailed")
	wantStatus(t, head(s3.HeadObjectInput{IfMatch: aws.String(`"0123"`)}), http.StatusPreconditionFailed)
	wantStatus(t, get(s3.GetObjectInput{IfNoneMatch: &etag}), http.StatusNotModified)
	wantStatus(t, head(s3.HeadObjectInput{IfNoneMatch: &etag}), http.StatusNotModified)
	must(t, get(s3.GetObjectInput{IfNoneMatch: aws.String(`"0123"`)}))
	must(t, get(s3.GetObjectInput{IfModifiedSince: &past}))
	wantStatus(t, get(s3.GetObjectInput{IfModifiedSince: &future}), http.StatusNotModified)
	must(t, get(s3.GetObjectInput{IfUnmodifiedSince: &future}))
	wantCode(t, get(s3.GetObjectInput{IfUnmodifiedSince: &past}), "PreconditionFailed")
	wantStatus(t, head(s3.HeadObjectInput{IfUnmodifiedSince: &past}), http.StatusPreconditionFailed)
	// RFC 7232 precedence: a matching If-Match overrides If-Unmodified-Since;
	// a failing If-None-Match overrides If-Modified-Since.
	must(t, get(s3.GetObjectInput{IfMatch: &etag, IfUnmodifiedSince: &past}))
	must(t, get(s3.GetObjectInput{IfNoneMatch: aws.String(`"0123"`), IfModifiedSince: &future}))
	wantStatus(t, get(s3.GetObjectInput{IfNoneMatch: &etag, IfModifiedSince: &past}), http.StatusNotModified)

	// Conditional writes.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: key, Body: strings.NewReader("version 2"), IfNoneMatch: aws.String("*")})
	wantCode(t, err, "PreconditionFailed")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: key, Body: strings.NewReader("version 2"), IfMatch: aws.String(`"0123"`)})
	wantCode(t, err, "PreconditionFailed")
	if got := getBytes(t, c, b, *key); string(got) != "version 1" {
		t.Fatalf("failed conditional PUT changed the object to %q", got)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("absent"), Body: strings.NewReader("x"), IfMatch: aws.String("*")})
	wantCode(t, err, "NoSuchKey")
	wantAbsent(t, c, b, "absent")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: key, Body: strings.NewReader("version 2"), IfMatch: &etag})
	must(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("new"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
	must(t, err)
	if got := getBytes(t, c, b, *key); string(got) != "version 2" {
		t.Fatalf("object is %q after conditional PUT", got)
	}
}

func TestPutVerification(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	plain := newS3HTTP(t, rootKey, rootSecret)
	b := newBucket(t, c)
	for _, size := range []int{10, 1<<20 + 3} {
		data := randBytes(size)
		wrong := md5.Sum([]byte("something else"))
		key := fmt.Sprintf("md5-%d", size)
		_, err := plain.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: bytes.NewReader(data),
			ContentMD5: aws.String(base64.StdEncoding.EncodeToString(wrong[:]))})
		wantCode(t, err, "BadDigest")
		wantAbsent(t, c, b, key)

		_, err = plain.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: bytes.NewReader(data), ContentMD5: aws.String("not-base64!")})
		wantCode(t, err, "InvalidDigest")
		wantAbsent(t, c, b, key)

		right := md5.Sum(data)
		_, err = plain.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: bytes.NewReader(data),
			ContentMD5: aws.String(base64.StdEncoding.EncodeToString(right[:]))})
		must(t, err)

		key = fmt.Sprintf("crc-%d", size)
		for _, cl := range []*s3.Client{c, plain} {
			_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: bytes.NewReader(data), ChecksumCRC32: aws.String("AAAAAA==")})
			wantCode(t, err, "BadDigest")
			wantAbsent(t, c, b, key)
		}
		_, err = plain.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: bytes.NewReader(data), ChecksumSHA256: aws.String("AAAAAA==")})
		wantCode(t, err, "InvalidRequest")
		wantAbsent(t, c, b, key)
	}

	// An empty Content-MD5 is not a digest. A body of unknown length
	// (Transfer-Encoding: chunked) is streamed like any other.
	req := rawRequest(t, "PUT", env.httpURL+"/"+b+"/empty-md5", []byte("x"), http.Header{"Content-Md5": {""}}, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "InvalidDigest")
	req = mustRequest(t, "PUT", env.httpURL+"/"+b+"/no-length", io.NopCloser(strings.NewReader("x")))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	must(t, v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecret}, req, "UNSIGNED-PAYLOAD", "s3", region, time.Now()))
	resp, body = do(t, req)
	if resp.StatusCode != 200 {
		t.Errorf("PUT without Content-Length: %d %s", resp.StatusCode, body)
	}
	if got := getBytes(t, c, b, "no-length"); string(got) != "x" {
		t.Errorf("PUT without Content-Length stored %q", got)
	}
	wantAbsent(t, c, b, "empty-md5")

	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("owned"), Body: strings.NewReader("x"), ExpectedBucketOwner: aws.String("someone-else")})
	wantCode(t, err, "AccessDenied")
	wantAbsent(t, c, b, "owned")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("owned"), Body: strings.NewReader("x"), ExpectedBucketOwner: aws.String(rootKey)})
	must(t, err)

	long := strings.Repeat("k", 1025)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &long, Body: strings.NewReader("x")})
	wantCode(t, err, "KeyTooLongError")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &long})
	wantCode(t, err, "KeyTooLongError")
	ok := strings.Repeat("k", 1024)
	putBytes(t, c, b, ok, []byte("x"))

	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("no-such-bucket-here"), Key: aws.String("k"), Body: strings.NewReader("x")})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("missing")})
	wantCode(t, err, "NoSuchKey")

	got := keys(t, c, b)
	if len(got) != 5 {
		t.Errorf("keys after failed PUTs: %d (%q...)", len(got), got[0][:min(20, len(got[0]))])
	}
}

func TestCopyObject(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	b2 := newBucket(t, c)
	src := "source dir/ü+file?.bin"
	data := randBytes(300 << 10)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &src, Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		ContentType: aws.String("application/x-src"), Metadata: map[string]string{"color": "blue"}})
	must(t, err)
	copySrc := aws.String(url.PathEscape(b) + "/" + strings.ReplaceAll(url.PathEscape(src), "%2F", "/"))

	out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b2, Key: aws.String("copy"), CopySource: copySrc})
	must(t, err)
	if *out.CopyObjectResult.ETag != `"`+md5hex(data)+`"` {
		t.Errorf("copy ETag %s", *out.CopyObjectResult.ETag)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b2, Key: aws.String("copy")})
	must(t, err)
	if *h.ContentType != "application/x-src" || h.Metadata["color"] != "blue" {
		t.Errorf("COPY lost metadata: %s %v", *h.ContentType, h.Metadata)
	}
	if got := getBytes(t, c, b2, "copy"); !bytes.Equal(got, data) {
		t.Fatal("copy content differs")
	}

	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b2, Key: aws.String("replaced"), CopySource: copySrc,
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/x-new"), Metadata: map[string]string{"shape": "round"}})
	must(t, err)
	h, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b2, Key: aws.String("replaced"), ChecksumMode: types.ChecksumModeEnabled})
	must(t, err)
	if *h.ContentType != "text/x-new" || h.Metadata["shape"] != "round" || h.Metadata["color"] != "" {
		t.Errorf("REPLACE: %s %v", *h.ContentType, h.Metadata)
	}
	if h.ChecksumCRC32 == nil {
		t.Errorf("REPLACE dropped the data's checksum")
	}

	// To itself: only with REPLACE.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b, Key: &src, CopySource: copySrc})
	wantCode(t, err, "InvalidRequest")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b, Key: &src, CopySource: copySrc,
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"color": "red"}})
	must(t, err)
	h, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: &src})
	must(t, err)
	if h.Metadata["color"] != "red" {
		t.Errorf("self-copy with REPLACE: %v", h.Metadata)
	}
	etag := h.ETag

	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name string
		in   s3.CopyObjectInput
		ok   bool
	}{
		{"if-match", s3.CopyObjectInput{CopySourceIfMatch: etag}, true},
		{"if-match wrong", s3.CopyObjectInput{CopySourceIfMatch: aws.String(`"00"`)}, false},
		{"if-none-match", s3.CopyObjectInput{CopySourceIfNoneMatch: etag}, false},
		{"if-modified-since future", s3.CopyObjectInput{CopySourceIfModifiedSince: &future}, false},
		{"if-modified-since past", s3.CopyObjectInput{CopySourceIfModifiedSince: &past}, true},
		{"if-unmodified-since past", s3.CopyObjectInput{CopySourceIfUnmodifiedSince: &past}, false},
		{"if-match wins over unmodified-since", s3.CopyObjectInput{CopySourceIfMatch: etag, CopySourceIfUnmodifiedSince: &past}, true},
	} {
		in := tc.in
		dst := "cond-" + strings.ReplaceAll(tc.name, " ", "-")
		in.Bucket, in.Key, in.CopySource = &b2, &dst, copySrc
		_, err := c.CopyObject(ctx, &in)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		wantCode(t, err, "PreconditionFailed")
		wantAbsent(t, c, b2, dst)
	}

	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b2, Key: aws.String("x"), CopySource: aws.String(b + "/missing")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b2, Key: aws.String("x"), CopySource: aws.String("nobucket")})
	wantCode(t, err, "InvalidArgument")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b2, Key: aws.String("x"), CopySource: copySrc, MetadataDirective: "MERGE"})
	wantCode(t, err, "InvalidArgument")
	wantAbsent(t, c, b2, "x")
}
