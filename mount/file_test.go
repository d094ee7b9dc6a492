package mount_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/mount"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// stored reads an object through the native client: what other mounts and
// S3 see.
func stored(t testing.TB, bucket, key string) []byte {
	t.Helper()
	r, err := env.client.Get(context.Background(), bucket, key, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return buf.Bytes()
}

func TestCreateWriteRead(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	for _, size := range []int{0, 10, 64 << 10, 64<<10 + 1, 3<<20 + 5} {
		data := randBytes(size)
		name := filepath.Join(dir, "f")
		if err := os.WriteFile(name, data, 0o640); err != nil {
			t.Fatalf("write %d bytes: %v", size, err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes that differ", size, len(got))
		}
		if got := stored(t, bucket, "f"); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: store holds %d bytes that differ", size, len(got))
		}
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != int64(size) || st.Mode().Perm() != 0o640 {
			t.Fatalf("stat: size %d mode %v, want %d and 0640", st.Size(), st.Mode(), size)
		}
	}
}

// TestCreateReadOnly creates a file with a descriptor that cannot write.
func TestCreateReadOnly(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	f, err := os.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bucket, "f"); len(got) != 0 {
		t.Fatalf("store holds %d bytes", len(got))
	}
	st, err := os.Stat(filepath.Join(dir, "f"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v, %v", st, err)
	}
	// Mode 0000 stays 0000.
	if err := os.WriteFile(filepath.Join(dir, "none"), nil, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "none")); err != nil || st.Mode().Perm() != 0 {
		t.Fatalf("stat of a mode 0000 file: %v, %v", st, err)
	}
}

func TestAppendTruncateRandomWrite(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	for _, size := range []int{100, 3 << 20} { // inline and segmented
		name := filepath.Join(dir, "f")
		want := randBytes(size)
		if err := os.WriteFile(name, want, 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(step string) {
			t.Helper()
			got, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("%d/%s: %v", size, step, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d/%s: mount reads %d bytes, want %d (first difference at %d)", size, step, len(got), len(want), firstDiff(got, want))
			}
			if got := stored(t, bucket, "f"); !bytes.Equal(got, want) {
				t.Fatalf("%d/%s: store holds %d bytes, want %d (first difference at %d)", size, step, len(got), len(want), firstDiff(got, want))
			}
		}

		// Append.
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		more := randBytes(size/2 + 1)
		if _, err := f.Write(more); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, more...)
		check("append")

		// Random writes: in the middle, and past the end (a hole).
		f, err = os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		patch := randBytes(5000)
		if _, err := f.WriteAt(patch, int64(size/3)); err != nil {
			t.Fatal(err)
		}
		want = writeAt(want, patch, size/3)
		end := len(want) + 10000
		if _, err := f.WriteAt(patch[:10], int64(end)); err != nil {
			t.Fatal(err)
		}
		want = writeAt(want, patch[:10], end)
		// The same handle reads its own writes before close.
		buf := make([]byte, len(patch))
		if _, err := f.ReadAt(buf, int64(size/3)); err != nil || !bytes.Equal(buf, patch) {
			t.Fatalf("%d: read back own write before close: %v", size, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		check("fsync after random write")
		// Writes after the fsync land too.
		if _, err := f.WriteAt([]byte("tail"), int64(len(want))); err != nil {
			t.Fatal(err)
		}
		want = append(want, "tail"...)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		check("random write")

		// Truncate down, then up, by path and by descriptor.
		if err := os.Truncate(name, int64(size/2)); err != nil {
			t.Fatal(err)
		}
		want = want[:size/2]
		check("truncate down")
		f, err = os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(int64(size)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, make([]byte, size-size/2)...)
		check("truncate up")
		if err := os.Truncate(name, 0); err != nil {
			t.Fatal(err)
		}
		want = want[:0]
		check("truncate to zero")
	}
}

// writeAt is WriteAt on a byte slice.
func writeAt(b, p []byte, off int) []byte {
	if n := off + len(p); n > len(b) {
		b = append(b, make([]byte, n-len(b))...)
	}
	copy(b[off:], p)
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func stringsReader(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }

func clientPutOptions(meta map[string]string) client.PutOptions {
	return client.PutOptions{Meta: meta}
}

// TestMmapWrite changes a file through a shared writable mapping.
func TestMmapWrite(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	name := filepath.Join(dir, "f")
	want := randBytes(200 << 10)
	if err := os.WriteFile(name, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, len(want), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m, want) {
		t.Fatal("mapping differs from the file")
	}
	copy(m[100_000:], "written through a mapping")
	copy(want[100_000:], "written through a mapping")
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Munmap(m); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bucket, "f"); !bytes.Equal(got, want) {
		t.Fatalf("store holds %d bytes, first difference at %d", len(got), firstDiff(got, want))
	}
}

// TestReadWhileWriting reads a file through a second descriptor while it is
// being written in the same mount, and after the writer closes.
func TestReadWhileWriting(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	name := filepath.Join(dir, "f")
	w, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	first := randBytes(300 << 10)
	if _, err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, len(first))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("read while writing: %v", err)
	}
	second := randBytes(100 << 10)
	if _, err := w.Write(second); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	all := append(first, second...)
	got = make([]byte, len(all))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, all) {
		t.Fatalf("read after the writer closed: %v", err)
	}
	if got := stored(t, bucket, "f"); !bytes.Equal(got, all) {
		t.Fatalf("store holds %d bytes, first difference at %d", len(got), firstDiff(got, all))
	}
}
