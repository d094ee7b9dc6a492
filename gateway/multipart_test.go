package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/talusfs/talus/gateway"
)

// uploadParts uploads each of parts and returns the completion list.
func uploadParts(t testing.TB, c *s3.Client, bucket, key, id string, parts ...[]byte) []types.CompletedPart {
	t.Helper()
	var done []types.CompletedPart
	for i, p := range parts {
		n := int32(i + 1)
		out, err := c.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: &id, PartNumber: &n, Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		if *out.ETag != `"`+md5hex(p)+`"` {
			t.Errorf("part %d ETag %s, want md5 %s", n, *out.ETag, md5hex(p))
		}
		done = append(done, types.CompletedPart{PartNumber: &n, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
	}
	return done
}

func TestMultipartUpload(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	key := "big/object.bin"
	parts := [][]byte{randBytes(5 << 20), randBytes(5<<20 + 1)[1:], randBytes(1 << 20)}

	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: &key,
		ContentType: aws.String("application/x-big"), Metadata: map[string]string{"origin": "test"}})
	must(t, err)
	id := *create.UploadId
	done := uploadParts(t, c, b, key, id, parts...)

	// ListParts, paged.
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &b, Key: &key, UploadId: &id, MaxParts: aws.Int32(2)})
	must(t, err)
	if len(lp.Parts) != 2 || !*lp.IsTruncated || *lp.NextPartNumberMarker != "2" || *lp.Parts[0].Size != 5<<20 {
		t.Fatalf("ListParts page 1: %d parts, truncated %v, next %v", len(lp.Parts), *lp.IsTruncated, lp.NextPartNumberMarker)
	}
	if lp.Parts[0].ChecksumCRC32 == nil {
		t.Errorf("part checksum not listed")
	}
	lp, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: &b, Key: &key, UploadId: &id, PartNumberMarker: aws.String("2")})
	must(t, err)
	if len(lp.Parts) != 1 || *lp.IsTruncated || *lp.Parts[0].PartNumber != 3 {
		t.Fatalf("ListParts page 2: %+v", lp.Parts)
	}

	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b})
	must(t, err)
	if len(ups.Uploads) != 1 || *ups.Uploads[0].UploadId != id || *ups.Uploads[0].Key != key {
		t.Fatalf("ListMultipartUploads: %+v", ups.Uploads)
	}
	ups, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b, Delimiter: aws.String("/")})
	must(t, err)
	if len(ups.Uploads) != 0 || len(ups.CommonPrefixes) != 1 || *ups.CommonPrefixes[0].Prefix != "big/" {
		t.Fatalf("ListMultipartUploads with delimiter: %+v %+v", ups.Uploads, ups.CommonPrefixes)
	}

	// The object does not exist before completion.
	wantAbsent(t, c, b, key)

	// Completion errors leave the upload usable.
	bad := append([]types.CompletedPart(nil), done...)
	bad[1] = types.CompletedPart{PartNumber: done[1].PartNumber, ETag: aws.String(`"00000000000000000000000000000000"`)}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id, MultipartUpload: &types.CompletedMultipartUpload{Parts: bad}})
	wantCode(t, err, "InvalidPart")
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{done[1], done[0], done[2]}}})
	wantCode(t, err, "InvalidPartOrder")
	wantAbsent(t, c, b, key)

	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	must(t, err)
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	wantETag := fmt.Sprintf(`"%s-3"`, hex.EncodeToString(h.Sum(nil)))
	if *out.ETag != wantETag {
		t.Errorf("multipart ETag %s, want %s", *out.ETag, wantETag)
	}
	all := bytes.Join(parts, nil)
	if got := getBytes(t, c, b, key); !bytes.Equal(got, all) {
		t.Fatal("multipart object differs from its parts")
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: &key})
	must(t, err)
	if *head.ETag != wantETag || *head.ContentType != "application/x-big" || head.Metadata["origin"] != "test" || *head.ContentLength != int64(len(all)) {
		t.Errorf("HEAD of multipart object: %+v", head)
	}

	// Completing again succeeds while the object is the one it made.
	again, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	must(t, err)
	if *again.ETag != wantETag {
		t.Errorf("repeated completion: ETag %s", *again.ETag)
	}

	// GET by part number.
	off := 0
	for i, p := range parts {
		n := int32(i + 1)
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &key, PartNumber: &n})
		must(t, err)
		got, err := io.ReadAll(g.Body)
		g.Body.Close()
		must(t, err)
		if !bytes.Equal(got, p) || g.PartsCount == nil || *g.PartsCount != 3 {
			t.Errorf("part %d: %d bytes, parts count %v", n, len(got), g.PartsCount)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", off, off+len(p)-1, len(all)); *g.ContentRange != want {
			t.Errorf("part %d: Content-Range %s, want %s", n, *g.ContentRange, want)
		}
		off += len(p)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &key, PartNumber: aws.Int32(4)})
	wantCode(t, err, "InvalidPart")

	// The upload is gone.
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: &b, Key: &key, UploadId: &id})
	wantCode(t, err, "NoSuchUpload")
	ups, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b})
	must(t, err)
	if len(ups.Uploads) != 0 {
		t.Errorf("completed upload still listed")
	}
}

func TestMultipartErrors(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	key := "small-parts"
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: &key})
	must(t, err)
	id := *create.UploadId
	done := uploadParts(t, c, b, key, id, randBytes(1<<20), randBytes(1<<20))
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	wantCode(t, err, "EntityTooSmall")
	wantAbsent(t, c, b, key)

	// A single-part upload is still a multipart object.
	one := "one-part"
	up1, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: &one})
	must(t, err)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &one, UploadId: up1.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: uploadParts(t, c, b, one, *up1.UploadId, []byte("tiny"))}})
	must(t, err)
	ho, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: &one, PartNumber: aws.Int32(1)})
	must(t, err)
	if ho.PartsCount == nil || *ho.PartsCount != 1 || !strings.HasSuffix(*ho.ETag, `-1"`) || *ho.ContentLength != 4 {
		t.Errorf("single-part upload: parts count %v, ETag %s", ho.PartsCount, *ho.ETag)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: aws.String("never-started"), UploadId: aws.String("bogus"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	wantCode(t, err, "NoSuchUpload")

	// An empty part list is malformed.
	req := rawRequest(t, "POST", env.httpURL+"/"+b+"/"+key+"?uploadId="+id, []byte("<CompleteMultipartUpload></CompleteMultipartUpload>"), nil, rootKey, rootSecret, time.Now())
	resp, body := do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "MalformedXML")
	req = rawRequest(t, "POST", env.httpURL+"/"+b+"/"+key+"?uploadId="+id, []byte("<CompleteMultipartUpload><Part><PartNumber>x"), nil, rootKey, rootSecret, time.Now())
	resp, body = do(t, req)
	wantRawError(t, resp, body, http.StatusBadRequest, "MalformedXML")

	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(10001), Body: bytes.NewReader([]byte("x"))})
	wantCode(t, err, "InvalidArgument")
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: &key, UploadId: aws.String("bogus"), PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))})
	wantCode(t, err, "NoSuchUpload")
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(3), Body: bytes.NewReader([]byte("x")), ChecksumCRC32: aws.String("AAAAAA==")})
	wantCode(t, err, "BadDigest")
	wrongMD5 := md5.Sum([]byte("not x"))
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(3), Body: bytes.NewReader([]byte("x")), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(wrongMD5[:]))})
	wantCode(t, err, "BadDigest")
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &b, Key: &key, UploadId: &id})
	must(t, err)
	if len(lp.Parts) != 2 {
		t.Errorf("a part that failed verification was recorded: %d parts", len(lp.Parts))
	}

	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id})
	must(t, err)
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id})
	wantCode(t, err, "NoSuchUpload")
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	wantCode(t, err, "NoSuchUpload")
	wantAbsent(t, c, b, key)
}

func TestUploadPartCopy(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	src := randBytes(7 << 20)
	putBytes(t, c, b, "src", src)
	key := "assembled"
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: &key})
	must(t, err)
	id := *create.UploadId

	p1, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(1),
		CopySource: aws.String(b + "/src"), CopySourceRange: aws.String("bytes=0-5242879")})
	must(t, err)
	p2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(2),
		CopySource: aws.String(b + "/src")})
	must(t, err)
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(3),
		CopySource: aws.String(b + "/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=0-%d", len(src)))})
	wantCode(t, err, "InvalidRange")
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &b, Key: &key, UploadId: &id, PartNumber: aws.Int32(3),
		CopySource: aws.String(b + "/src"), CopySourceIfMatch: aws.String(`"00"`)})
	wantCode(t, err, "PreconditionFailed")

	if *p1.CopyPartResult.ETag != `"`+md5hex(src[:5<<20])+`"` {
		t.Errorf("part copy ETag %s", *p1.CopyPartResult.ETag)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: p1.CopyPartResult.ETag},
			{PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag},
		}}})
	must(t, err)
	want := append(append([]byte(nil), src[:5<<20]...), src...)
	if got := getBytes(t, c, b, key); !bytes.Equal(got, want) {
		t.Fatal("object assembled from copied parts differs")
	}
}

// TestAbandonedUploadSweep runs a second gateway whose sweep treats every
// upload as abandoned.
func TestAbandonedUploadSweep(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	key := "abandoned"
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: &key})
	must(t, err)
	uploadParts(t, c, b, key, *create.UploadId, randBytes(100<<10))
	time.Sleep(20 * time.Millisecond)

	gw, err := gateway.New(gateway.Config{Client: env.client, RootAccessKey: rootKey, RootSecretKey: rootSecret, Logger: env.log, MultipartExpiry: 10 * time.Millisecond})
	must(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		gw.Run(runCtx)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b})
		must(t, err)
		if len(ups.Uploads) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload still listed after the sweep had 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: &b, Key: &key, UploadId: create.UploadId})
	wantCode(t, err, "NoSuchUpload")
}

func TestListMultipartUploadsPaging(t *testing.T) {
	ctx := context.Background()
	c := newS3(t, rootKey, rootSecret)
	b := newBucket(t, c)
	want := map[string]bool{}
	for _, k := range []string{"a", "b", "b", "dir/c", "dir/d", "e"} {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: aws.String(k)})
		must(t, err)
		want[k+" "+*up.UploadId] = true
	}
	got := map[string]bool{}
	in := &s3.ListMultipartUploadsInput{Bucket: &b, MaxUploads: aws.Int32(1)}
	for pages := 0; ; pages++ {
		out, err := c.ListMultipartUploads(ctx, in)
		must(t, err)
		if len(out.Uploads) > 1 {
			t.Fatalf("page of %d uploads", len(out.Uploads))
		}
		for _, u := range out.Uploads {
			if got[*u.Key+" "+*u.UploadId] {
				t.Fatalf("upload %s %s listed twice", *u.Key, *u.UploadId)
			}
			got[*u.Key+" "+*u.UploadId] = true
		}
		if !*out.IsTruncated {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		if pages > 10 {
			t.Fatal("upload listing does not end")
		}
	}
	if len(got) != len(want) {
		t.Errorf("paged through %d uploads, want %d", len(got), len(want))
	}
	out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b, Prefix: aws.String("dir/")})
	must(t, err)
	if len(out.Uploads) != 2 || *out.Prefix != "dir/" {
		t.Errorf("prefix dir/: %+v", out.Uploads)
	}
	out, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b, Delimiter: aws.String("/"), KeyMarker: aws.String("b")})
	must(t, err)
	if len(out.Uploads) != 1 || *out.Uploads[0].Key != "e" || len(out.CommonPrefixes) != 1 || *out.CommonPrefixes[0].Prefix != "dir/" {
		t.Errorf("after b with delimiter: uploads %+v prefixes %+v", out.Uploads, out.CommonPrefixes)
	}
}
