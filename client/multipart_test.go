package client_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

func TestMultipartAndCopy(t *testing.T) {
	c, cl := startCluster(t, dev.Options{Meta: meta.Config{GCDelay: time.Millisecond}})
	mustBucket(t, cl, "mpu")
	ctx := context.Background()
	id, err := cl.CreateMultipart(ctx, "mpu", "assembled", client.PutOptions{ContentType: "application/x-test"})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{5 << 20, 5<<20 + 3, 1000}
	var whole []byte
	var parts []metaapi.CompletePart
	md5s := md5.New()
	for i, size := range sizes {
		data := randBytes(uint64(300+i), size)
		whole = append(whole, data...)
		p, err := cl.PutPart(ctx, "mpu", "assembled", id, i+1, bytes.NewReader(data), int64(size), client.PartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(data)
		if p.ETag != hex.EncodeToString(sum[:]) {
			t.Fatalf("part %d ETag %s, want its md5", i+1, p.ETag)
		}
		md5s.Write(sum[:])
		parts = append(parts, metaapi.CompletePart{Number: i + 1, ETag: p.ETag})
	}
	// An extra part that is uploaded but left out of the completion.
	if _, err := cl.PutPart(ctx, "mpu", "assembled", id, 9, bytes.NewReader(make([]byte, 70<<10)), 70<<10, client.PartOptions{}); err != nil {
		t.Fatal(err)
	}
	pl, err := cl.Meta().Parts(ctx, "mpu", "assembled", id, 0, 2)
	if err != nil || len(pl.Parts) != 2 || !pl.Truncated || pl.Next != 2 {
		t.Fatalf("list parts: %+v %v", pl, err)
	}
	ups, err := cl.Meta().Uploads(ctx, metaapi.UploadListRequest{Bucket: "mpu"})
	if err != nil || len(ups.Uploads) != 1 || ups.Uploads[0].ID != id {
		t.Fatalf("list uploads: %+v %v", ups, err)
	}

	// Completion is validated.
	for _, bad := range []struct {
		parts []metaapi.CompletePart
		want  error
	}{
		{[]metaapi.CompletePart{parts[1], parts[0]}, metaapi.ErrInvalidPartOrder},
		{[]metaapi.CompletePart{parts[0], {Number: 2, ETag: "0123"}}, metaapi.ErrInvalidPart},
		{[]metaapi.CompletePart{parts[2], {Number: 9, ETag: "x"}}, metaapi.ErrInvalidPart},
		{[]metaapi.CompletePart{{Number: 3, ETag: parts[2].ETag}, {Number: 9}}, metaapi.ErrInvalidPart},
	} {
		if _, err := cl.CompleteMultipart(ctx, "mpu", "assembled", id, bad.parts, metaapi.Preconditions{}); !errors.Is(err, bad.want) {
			t.Errorf("complete with %v: got %v, want %v", bad.parts, err, bad.want)
		}
	}
	o, err := cl.CompleteMultipart(ctx, "mpu", "assembled", id, parts, metaapi.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s-3", hex.EncodeToString(md5s.Sum(nil))); o.ETag != want {
		t.Fatalf("multipart ETag %s, want %s", o.ETag, want)
	}
	mustGet(t, cl, "mpu", "assembled", whole)
	if _, err := cl.CompleteMultipart(ctx, "mpu", "assembled", id, parts, metaapi.Preconditions{}); !errors.Is(err, metaapi.ErrNoSuchUpload) {
		t.Fatalf("second completion: %v", err)
	}

	// Small parts other than the last are refused.
	id2, _ := cl.CreateMultipart(ctx, "mpu", "small", client.PutOptions{})
	p1, _ := cl.PutPart(ctx, "mpu", "small", id2, 1, bytes.NewReader(make([]byte, 100<<10)), 100<<10, client.PartOptions{})
	p2, _ := cl.PutPart(ctx, "mpu", "small", id2, 2, bytes.NewReader(make([]byte, 100<<10)), 100<<10, client.PartOptions{})
	_, err = cl.CompleteMultipart(ctx, "mpu", "small", id2, []metaapi.CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: p2.ETag}}, metaapi.Preconditions{})
	if !errors.Is(err, metaapi.ErrEntityTooSmall) {
		t.Fatalf("small parts: %v", err)
	}
	if err := cl.AbortMultipart(ctx, "mpu", "small", id2); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutPart(ctx, "mpu", "small", id2, 3, bytes.NewReader([]byte("x")), 1, client.PartOptions{}); !errors.Is(err, metaapi.ErrNoSuchUpload) {
		t.Fatalf("part for an aborted upload: %v", err)
	}

	// A copy shares the data; deleting the source leaves the copy whole.
	cp, err := cl.Copy(ctx, metaapi.CopyRequest{SrcBucket: "mpu", SrcKey: "assembled", DstBucket: "mpu", DstKey: "copy",
		ReplaceMeta: true, ContentType: "text/plain", Meta: map[string]string{"x-amz-meta-a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if cp.ETag != o.ETag || cp.ContentType != "text/plain" || cp.Meta["x-amz-meta-a"] != "b" {
		t.Fatalf("copy record: %+v", cp)
	}
	if _, err := cl.Copy(ctx, metaapi.CopyRequest{SrcBucket: "mpu", SrcKey: "assembled", SrcCond: metaapi.Preconditions{IfMatch: "nope"}, DstBucket: "mpu", DstKey: "c2"}); !errors.Is(err, metaapi.ErrPrecondition) {
		t.Fatalf("copy with a failing source condition: %v", err)
	}
	if err := cl.Delete(ctx, "mpu", "assembled"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the collector run
	mustGet(t, cl, "mpu", "copy", whole)
	if n := len(shardFiles(t, c)); n == 0 {
		t.Fatal("no shard files: the copy's data was collected")
	}
}
