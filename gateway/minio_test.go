package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func newMinio(t testing.TB) *minio.Client {
	t.Helper()
	mc, err := minio.New(strings.TrimPrefix(env.httpURL, "http://"), &minio.Options{
		Creds:  credentials.NewStaticV4(rootKey, rootSecret, ""),
		Secure: false,
		Region: region,
	})
	must(t, err)
	return mc
}

func TestMinioClient(t *testing.T) {
	ctx := context.Background()
	mc := newMinio(t)
	b := "minio-bucket"
	must(t, mc.MakeBucket(ctx, b, minio.MakeBucketOptions{}))
	ok, err := mc.BucketExists(ctx, b)
	must(t, err)
	if !ok {
		t.Fatal("bucket does not exist after MakeBucket")
	}

	// Small, streamed with unknown size (multipart), and multipart.
	small := randBytes(1000)
	_, err = mc.PutObject(ctx, b, "small", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{ContentType: "text/x-small", UserMetadata: map[string]string{"k": "v"}})
	must(t, err)
	big := randBytes(12 << 20)
	info, err := mc.PutObject(ctx, b, "dir/big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20})
	must(t, err)
	if !strings.HasSuffix(info.ETag, "-3") {
		t.Errorf("multipart ETag %q", info.ETag)
	}
	_, err = mc.PutObject(ctx, b, "dir/streamed", io.MultiReader(bytes.NewReader(big[:6<<20])), -1, minio.PutObjectOptions{PartSize: 5 << 20})
	must(t, err)

	for key, want := range map[string][]byte{"small": small, "dir/big": big, "dir/streamed": big[:6<<20]} {
		obj, err := mc.GetObject(ctx, b, key, minio.GetObjectOptions{})
		must(t, err)
		got, err := io.ReadAll(obj)
		obj.Close()
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: read back %d bytes, want %d", key, len(got), len(want))
		}
	}
	opts := minio.GetObjectOptions{}
	must(t, opts.SetRange(100, 199))
	obj, err := mc.GetObject(ctx, b, "dir/big", opts)
	must(t, err)
	got, err := io.ReadAll(obj)
	obj.Close()
	must(t, err)
	if !bytes.Equal(got, big[100:200]) {
		t.Errorf("range read differs")
	}

	st, err := mc.StatObject(ctx, b, "small", minio.StatObjectOptions{})
	must(t, err)
	if st.ContentType != "text/x-small" || st.UserMetadata["K"] != "v" || st.Size != 1000 {
		t.Errorf("stat: %+v", st)
	}

	// Copy and compose (UploadPartCopy).
	_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "copied"}, minio.CopySrcOptions{Bucket: b, Object: "small"})
	must(t, err)
	_, err = mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "composed"},
		minio.CopySrcOptions{Bucket: b, Object: "dir/big", MatchRange: true, Start: 0, End: 5<<20 - 1},
		minio.CopySrcOptions{Bucket: b, Object: "small"})
	must(t, err)
	obj, err = mc.GetObject(ctx, b, "composed", minio.GetObjectOptions{})
	must(t, err)
	got, err = io.ReadAll(obj)
	obj.Close()
	must(t, err)
	if !bytes.Equal(got, append(append([]byte(nil), big[:5<<20]...), small...)) {
		t.Errorf("composed object differs")
	}

	var listed []string
	for o := range mc.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true}) {
		must(t, o.Err)
		listed = append(listed, o.Key)
	}
	if want := []string{"composed", "copied", "dir/big", "dir/streamed", "small"}; !slices.Equal(listed, want) {
		t.Errorf("listed %q, want %q", listed, want)
	}

	u, err := mc.PresignedGetObject(ctx, b, "small", time.Minute, nil)
	must(t, err)
	resp, body := do(t, mustRequest(t, "GET", u.String(), nil))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, small) {
		t.Errorf("presigned GET: %d", resp.StatusCode)
	}

	ch := make(chan minio.ObjectInfo, len(listed))
	for _, k := range listed {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	for e := range mc.RemoveObjects(ctx, b, ch, minio.RemoveObjectsOptions{}) {
		t.Errorf("remove %s: %v", e.ObjectName, e.Err)
	}
	must(t, mc.RemoveBucket(ctx, b))
}
