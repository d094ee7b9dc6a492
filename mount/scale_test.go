package mount_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/talusfs/talus/mount"
)

func TestManySmallFiles(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	sub := filepath.Join(dir, "many")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("file-%05d.txt", i)
	}
	// Several writers at once, as a build or an untar would.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if err := os.WriteFile(filepath.Join(sub, names[i]), []byte(names[i]), 0o644); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := slices.Clone(names)
	slices.Sort(want)

	check := func(root string) {
		t.Helper()
		out, err := exec.Command("ls", filepath.Join(root, "many")).Output()
		if err != nil {
			t.Fatalf("ls: %v", err)
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, want) {
			t.Fatalf("ls lists %d names, want %d", len(got), len(want))
		}
		out, err = exec.Command("ls", "-l", filepath.Join(root, "many")).Output()
		if err != nil {
			t.Fatalf("ls -l: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != n+1 || !strings.HasPrefix(lines[1], "-rw-r--r--") || !strings.Contains(lines[1], " 14 ") {
			t.Fatalf("ls -l: %d lines, first %q", len(lines), lines[1])
		}
		out, err = exec.Command("find", root, "-type", "f").Output()
		if err != nil {
			t.Fatalf("find: %v", err)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		for i, p := range got {
			got[i] = filepath.Base(p)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("find lists %d files, want %d", len(got), len(want))
		}
	}
	check(dir)
	// A second mount knows nothing yet: it lists from the store.
	check(mountAt(t, bucket, mount.Options{}))
	if b, err := os.ReadFile(filepath.Join(sub, names[n/2])); err != nil || string(b) != names[n/2] {
		t.Fatalf("read back: %q, %v", b, err)
	}
}

// TestLargeFile writes a large file with dd (a sequential stream into the
// store) and reads it back with sha256sum (sequential reads with
// read-ahead).
func TestLargeFile(t *testing.T) {
	size := 1 << 30
	if testing.Short() {
		size = 64 << 20
	}
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	src := filepath.Join(t.TempDir(), "src")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(io.MultiWriter(f, h), r, int64(size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))

	dst := filepath.Join(dir, "big")
	if out, err := exec.Command("dd", "if="+src, "of="+dst, "bs=1M").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v: %s", err, out)
	}
	os.Remove(src)
	out, err := exec.Command("sha256sum", dst).Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	if got := strings.Fields(string(out))[0]; got != want {
		t.Fatalf("sha256 %s, want %s", got, want)
	}
	// The store has the same bytes, in segments written while dd ran.
	o, err := env.client.Head(t.Context(), bucket, "big")
	if err != nil {
		t.Fatal(err)
	}
	if o.Size != int64(size) || len(o.Segments) == 0 {
		t.Fatalf("stored %d bytes in %d segments", o.Size, len(o.Segments))
	}
	// Random reads.
	fd, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	rr := rand.NewChaCha8([32]byte{1, 2, 3})
	ref := make([]byte, 8<<20)
	io.ReadFull(rr, ref)
	buf := make([]byte, 4096)
	for i := range 50 {
		off := int64(i) * 160_001 % int64(len(ref)-len(buf))
		if _, err := fd.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, ref[off:off+int64(len(buf))]) {
			t.Fatalf("random read at %d differs", off)
		}
	}
}
