package mount_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/mount"
)

// coherence is how soon a change must show in another mount (the issue's
// requirement); the change feed usually delivers in milliseconds.
const coherence = time.Second

// eventually polls cond until it holds or the coherence window has passed,
// and reports how long it took.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			t.Logf("%s: seen after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > coherence {
			t.Fatalf("%s: not seen within %v", what, coherence)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasContent(path string, want []byte) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && bytes.Equal(b, want)
	}
}

func missing(path string) func() bool {
	return func() bool {
		_, err := os.Lstat(path)
		return errors.Is(err, os.ErrNotExist)
	}
}

// TestTwoMounts runs one mount in this process and one in another, on the
// same bucket, and checks that each sees the other's changes, and an S3
// client's, within a second — having looked first, so that the kernel and
// the mount hold the old answer in their caches.
func TestTwoMounts(t *testing.T) {
	bucket := newBucket(t)
	// Kernel caches that outlive the coherence window: only the change
	// feed can make the changes show in time.
	opts := mount.Options{KernelTTL: 30 * time.Second}
	a := mountAt(t, bucket, opts)
	b := t.TempDir()
	h := startHelper(t, bucket, b, opts)
	defer h.stop(t)
	in := func(root string, name string) string { return filepath.Join(root, name) }

	// A new file written and closed on one mount.
	os.Stat(in(b, "f")) // cache the absence
	data := randBytes(200 << 10)
	if err := os.WriteFile(in(a, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new file", hasContent(in(b, "f"), data))

	// Overwritten, larger, on the other: the first mount's cached size and
	// pages must go.
	data = randBytes(300 << 10)
	if err := os.WriteFile(in(b, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "overwrite", hasContent(in(a, "f"), data))
	eventually(t, "new size", func() bool {
		st, err := os.Stat(in(a, "f"))
		return err == nil && st.Size() == int64(len(data))
	})

	// Renamed.
	if err := os.Rename(in(a, "f"), in(a, "g")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rename: old name gone", missing(in(b, "f")))
	eventually(t, "rename: new name", hasContent(in(b, "g"), data))

	// A directory made, filled and renamed on one mount.
	os.ReadDir(b)
	if err := os.MkdirAll(in(b, "d/e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in(b, "d/e/x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "file in new directory", hasContent(in(a, "d/e/x"), []byte("x")))
	if err := os.Rename(in(b, "d"), in(b, "d2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "directory rename: old gone", missing(in(a, "d/e/x")))
	eventually(t, "directory rename: new", hasContent(in(a, "d2/e/x"), []byte("x")))
	eventually(t, "directory rename: listing", func() bool {
		es, err := os.ReadDir(a)
		if err != nil {
			return false
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return len(names) == 2 && names[0] == "d2" && names[1] == "g"
	})

	// Deleted.
	if err := os.Remove(in(a, "g")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unlink", missing(in(b, "g")))

	// An object PUT through the S3 gateway appears in both.
	os.Stat(in(a, "s3/obj"))
	os.Stat(in(b, "s3/obj"))
	body := []byte("from s3")
	if _, err := newS3().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("s3/obj"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "S3 PUT in this mount", hasContent(in(a, "s3/obj"), body))
	eventually(t, "S3 PUT in the other mount", hasContent(in(b, "s3/obj"), body))
	// And an S3 DELETE leaves both.
	if _, err := newS3().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("s3/obj")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "S3 DELETE in this mount", missing(in(a, "s3")))
	eventually(t, "S3 DELETE in the other mount", missing(in(b, "s3")))

	// What the mounts write, S3 reads, attributes included.
	out, err := newS3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("d2/e/x")})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.Metadata["mode"] != "33188" {
		t.Fatalf("S3 sees metadata %v", out.Metadata)
	}
}

// TestKillDuringWrite kills a mount process while it is writing a new file
// and overwriting an old one: neither a half-written file nor a truncated
// old one becomes visible, and the bucket mounts again.
func TestKillDuringWrite(t *testing.T) {
	bucket := newBucket(t)
	old := randBytes(1 << 20)
	put(t, bucket, "old", string(old), nil)
	dir := t.TempDir()
	h := startHelper(t, bucket, dir, mount.Options{})

	fresh, err := os.Create(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	over, err := os.OpenFile(filepath.Join(dir, "old"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := randBytes(1 << 20)
	for range 20 {
		if _, err := fresh.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if _, err := over.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	h.kill(t)
	fresh.Close()
	over.Close()

	if got := keys(t, bucket); len(got) != 1 || got[0] != "old" {
		t.Fatalf("after kill -9 the bucket holds %q", got)
	}
	if got := stored(t, bucket, "old"); !bytes.Equal(got, old) {
		t.Fatalf("after kill -9 the old file holds %d bytes, not its old content", len(got))
	}

	h = startHelper(t, bucket, dir, mount.Options{})
	defer h.stop(t)
	if b, err := os.ReadFile(filepath.Join(dir, "old")); err != nil || !bytes.Equal(b, old) {
		t.Fatalf("after remount: %d bytes, %v", len(b), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("again"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(stored(t, bucket, "new")); got != "again" {
		t.Fatalf("write after remount: %q", got)
	}
}

// TestClusterUnavailable stops more chunk servers than the erasure code
// tolerates: writes and reads fail with EIO in bounded time, nothing
// half-written appears, and the mount works again once the servers are
// back.
func TestClusterUnavailable(t *testing.T) {
	c, err := dev.Start(context.Background(), dev.Options{Dir: t.TempDir(), Secret: []byte(secret), Heartbeat: 200 * time.Millisecond, Logger: env.log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Meta().CreateBucket(context.Background(), metaapi.Bucket{Name: "outage"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := mount.New(context.Background(), dir, mount.Options{Client: cl, Bucket: "outage", Timeout: 5 * time.Second, Logger: env.log})
	if err != nil {
		t.Fatal(err)
	}
	defer unmount(t, m)
	old := randBytes(1 << 20)
	if err := os.WriteFile(filepath.Join(dir, "f"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.StopChunk(i)
	}
	start := time.Now()
	err = os.WriteFile(filepath.Join(dir, "f"), randBytes(1<<20), 0o644)
	wantErrno(t, err, syscall.EIO, "write with half the chunk servers down")
	_, err = os.ReadFile(filepath.Join(dir, "f"))
	wantErrno(t, err, syscall.EIO, "read with half the chunk servers down")
	if d := time.Since(start); d > 2*time.Minute {
		t.Fatalf("failing took %v", d)
	}
	for i := range 3 {
		if err := c.StartChunk(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitRegistered(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || !bytes.Equal(b, old) {
		t.Fatalf("after the outage the file holds %d bytes (%v), not its old content", len(b), err)
	}
	data := randBytes(1 << 20)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatalf("write after the outage: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read after the outage: %v", err)
	}
}
