package mount_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/mount"
)

// keys lists every key of a bucket.
func keys(t testing.TB, bucket string) []string {
	t.Helper()
	var out []string
	req := metaapi.ListRequest{Bucket: bucket}
	for {
		res, err := env.client.List(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			out = append(out, o.Key)
		}
		if !res.Truncated {
			return out
		}
		req.After = res.Next
	}
}

func wantErrno(t testing.TB, err error, want syscall.Errno, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func readDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestMkdirRmdir(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	if err := os.MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o750); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(t, bucket), []string{"a/", "a/b/", "a/b/c/"}; !slices.Equal(got, want) {
		t.Fatalf("keys %q, want markers %q", got, want)
	}
	st, err := os.Stat(filepath.Join(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() || st.Mode().Perm() != 0o750 {
		t.Fatalf("a/b: mode %v, want a directory with 0750", st.Mode())
	}
	wantErrno(t, os.Mkdir(filepath.Join(dir, "a"), 0o755), syscall.EEXIST, "mkdir over a directory")
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, os.Remove(filepath.Join(dir, "a", "b")), syscall.ENOTEMPTY, "rmdir of a directory with a file")
	wantErrno(t, syscall.Rmdir(filepath.Join(dir, "a", "b", "f")), syscall.ENOTDIR, "rmdir of a file")
	if got := readDir(t, filepath.Join(dir, "a", "b")); !slices.Equal(got, []string{"c", "f"}) {
		t.Fatalf("a/b lists %q", got)
	}
	if err := os.Remove(filepath.Join(dir, "a", "b", "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(t, bucket), []string{"a/"}; !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
	if got := readDir(t, filepath.Join(dir, "a")); len(got) != 0 {
		t.Fatalf("empty directory lists %q", got)
	}

	// A process working in a new directory keeps a working directory when
	// the change feed reports the mkdir, and when the directory is renamed.
	if err := os.Mkdir(filepath.Join(dir, "cwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", "cd cwd && sleep 0.3 && /bin/pwd -P && sleep 0.5 && /bin/pwd -P")
	sh.Dir = dir
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.Rename(filepath.Join(dir, "cwd"), filepath.Join(dir, "cwd2")); err != nil {
		t.Fatal(err)
	}
	if err := sh.Wait(); err != nil {
		t.Fatalf("getcwd in a directory of the mount: %v: %s", err, out.String())
	}
	if want := filepath.Join(dir, "cwd") + "\n" + filepath.Join(dir, "cwd2") + "\n"; out.String() != want {
		t.Fatalf("pwd printed %q, want %q", out.String(), want)
	}
	if err := os.Remove(filepath.Join(dir, "cwd2")); err != nil {
		t.Fatal(err)
	}

	// Directories that exist only as key prefixes (written through S3).
	put(t, bucket, "x/y/z.txt", "hello", nil)
	eventually(t, "directory made by S3", func() bool { return slices.Equal(readDir(t, dir), []string{"a", "x"}) })
	b, err := os.ReadFile(filepath.Join(dir, "x", "y", "z.txt"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("read through implicit directories: %q, %v", b, err)
	}
}

// put stores an object as an S3 client would.
func put(t testing.TB, bucket, key, body string, meta map[string]string) {
	t.Helper()
	if _, err := env.client.Put(context.Background(), bucket, key, stringsReader(body), int64(len(body)), clientPutOptions(meta)); err != nil {
		t.Fatal(err)
	}
}

func TestRename(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	p := func(s string) string { return filepath.Join(dir, s) }
	big := randBytes(3 << 20)
	if err := os.WriteFile(p("big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := env.client.Head(context.Background(), bucket, "big")
	if err != nil {
		t.Fatal(err)
	}

	// A file, to a new name: the same segments under the new key.
	if err := os.Rename(p("big"), p("moved")); err != nil {
		t.Fatal(err)
	}
	after, err := env.client.Head(context.Background(), bucket, "moved")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Segments) == 0 || after.Segments[0].ID != before.Segments[0].ID {
		t.Fatalf("rename rewrote the data: segments %v became %v", before.Segments, after.Segments)
	}
	if _, err := os.Stat(p("big")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old name after rename: %v", err)
	}

	// Over an existing file.
	if err := os.WriteFile(p("small"), []byte("small"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("small"), p("moved")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p("moved")); err != nil || string(b) != "small" {
		t.Fatalf("after rename over a file: %q, %v", b, err)
	}

	// A directory with contents, into another directory.
	if err := os.MkdirAll(p("d1/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := os.WriteFile(p("d1/sub/f"+strconv.Itoa(i)), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(p("d2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("d1"), p("d2/d1")); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, p("d2/d1/sub")); len(got) != 5 {
		t.Fatalf("moved directory lists %q", got)
	}
	if b, err := os.ReadFile(p("d2/d1/sub/f3")); err != nil || !slices.Equal(b, []byte{3}) {
		t.Fatalf("file in moved directory: %v, %v", b, err)
	}
	if _, err := os.Stat(p("d1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old directory after rename: %v", err)
	}
	if got := keys(t, bucket); !slices.Contains(got, "d2/d1/sub/f4") || slices.Contains(got, "d1/sub/f4") || !slices.Contains(got, "d2/d1/") {
		t.Fatalf("keys after directory rename: %q", got)
	}

	// A directory over an empty one, and not over a full one.
	if err := os.Mkdir(p("empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// (os.Rename refuses to replace a directory by itself; rename(2) does.)
	if err := syscall.Rename(p("d2/d1"), p("empty")); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, p("empty")); !slices.Equal(got, []string{"sub"}) {
		t.Fatalf("directory renamed over an empty one lists %q", got)
	}
	if err := os.Mkdir(p("other"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, syscall.Rename(p("other"), p("empty")), syscall.ENOTEMPTY, "rename over a full directory")
	wantErrno(t, syscall.Rename(p("other"), p("moved")), syscall.ENOTDIR, "rename a directory over a file")
	wantErrno(t, syscall.Rename(p("moved"), p("other")), syscall.EISDIR, "rename a file over a directory")

	// A file renamed while it is being written is stored under its new name.
	f, err := os.Create(p("inflight"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("before"))
	if err := os.Rename(p("inflight"), p("landed")); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(" after"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(stored(t, bucket, "landed")); got != "before after" {
		t.Fatalf("file renamed while open holds %q", got)
	}
	if got := keys(t, bucket); slices.Contains(got, "inflight") {
		t.Fatalf("old name of a file renamed while open survives: %q", got)
	}
}

func TestUnlinkOpenFile(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	for _, size := range []int{1000, 2 << 20} {
		name := filepath.Join(dir, "f")
		data := randBytes(size)
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat after unlink: %v", err)
		}
		got := make([]byte, size)
		if _, err := r.ReadAt(got, 0); err != nil || !slices.Equal(got, data) {
			t.Fatalf("%d: read of an unlinked open file: %v", size, err)
		}
		if st, err := r.Stat(); err != nil || st.Sys().(*syscall.Stat_t).Nlink != 0 {
			t.Fatalf("fstat of an unlinked open file: %v, %v", st, err)
		}
		if _, err := w.Write([]byte("late")); err != nil {
			t.Fatalf("write to an unlinked open file: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("close of an unlinked file: %v", err)
		}
		r.Close()
		if got := keys(t, bucket); len(got) != 0 {
			t.Fatalf("an unlinked file came back: %q", got)
		}
	}
}

func TestAttributes(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(name, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o751 || sys.Uid != 1234 || sys.Gid != 5678 || !st.ModTime().Equal(mtime) {
		t.Fatalf("stat: mode %v uid %d gid %d mtime %v", st.Mode(), sys.Uid, sys.Gid, st.ModTime())
	}
	// Stored under the names s3fs uses, with the type bits, in decimal.
	o, err := env.client.Head(context.Background(), bucket, "f")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"x-amz-meta-mode": strconv.Itoa(syscall.S_IFREG | 0o751), "x-amz-meta-uid": "1234", "x-amz-meta-gid": "5678",
		"x-amz-meta-mtime": "981173106.000007000",
	}
	for k, v := range want {
		if o.Meta[k] != v {
			t.Errorf("%s = %q, want %q (meta %v)", k, o.Meta[k], v, o.Meta)
		}
	}
	if string(stored(t, bucket, "f")) != "data" {
		t.Fatal("a metadata change altered the data")
	}
	// Directories keep attributes in their markers.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "d"), 0o705); err != nil {
		t.Fatal(err)
	}
	o, err = env.client.Head(context.Background(), bucket, "d/")
	if err != nil {
		t.Fatal(err)
	}
	if o.Meta["x-amz-meta-mode"] != strconv.Itoa(syscall.S_IFDIR|0o705) {
		t.Fatalf("directory marker mode %q", o.Meta["x-amz-meta-mode"])
	}
	// Objects written by S3 clients with s3fs/rclone attributes.
	put(t, bucket, "s3fs", "x", map[string]string{"x-amz-meta-mode": strconv.Itoa(syscall.S_IFREG | 0o604), "x-amz-meta-uid": "42", "x-amz-meta-mtime": "1700000000"})
	put(t, bucket, "rclone", "x", map[string]string{"x-amz-meta-mode": "0100606", "x-amz-meta-mtime": "1700000000.5"})
	put(t, bucket, "plain", "x", nil)
	for name, want := range map[string]struct {
		mode  os.FileMode
		uid   uint32
		mtime time.Time
	}{
		"s3fs":   {0o604, 42, time.Unix(1700000000, 0)},
		"rclone": {0o606, 0, time.Unix(1700000000, 5e8)},
		"plain":  {0o644, 0, time.Time{}},
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want.mode || st.Sys().(*syscall.Stat_t).Uid != want.uid || !want.mtime.IsZero() && !st.ModTime().Equal(want.mtime) {
			t.Errorf("%s: mode %v uid %d mtime %v, want %v %d %v", name, st.Mode(), st.Sys().(*syscall.Stat_t).Uid, st.ModTime(), want.mode, want.uid, want.mtime)
		}
	}
}

func TestSymlinkAndSpecialFiles(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(dir, "link")); err != nil || got != "target" {
		t.Fatalf("readlink: %q, %v", got, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "link")); err != nil || string(b) != "content" {
		t.Fatalf("read through symlink: %q, %v", b, err)
	}
	st, err := os.Lstat(filepath.Join(dir, "link"))
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("lstat: %v, %v", st, err)
	}
	// As s3fs stores it: the target is the body, the mode says S_IFLNK.
	if got := string(stored(t, bucket, "link")); got != "target" {
		t.Fatalf("symlink body %q", got)
	}
	o, err := env.client.Head(context.Background(), bucket, "link")
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := strconv.Atoi(o.Meta["x-amz-meta-mode"]); m&syscall.S_IFMT != syscall.S_IFLNK {
		t.Fatalf("symlink mode %q", o.Meta["x-amz-meta-mode"])
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, err = os.Lstat(filepath.Join(dir, "fifo"))
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 || st.Mode().Perm() != 0o640 {
		t.Fatalf("fifo: %v, %v", st, err)
	}
	wantErrno(t, os.Link(filepath.Join(dir, "target"), filepath.Join(dir, "hard")), syscall.EPERM, "hard link")
}

func TestNames(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	long := string(slices.Repeat([]byte("n"), 256))
	wantErrno(t, os.WriteFile(filepath.Join(dir, long), nil, 0o644), syscall.ENAMETOOLONG, "create with a 256-byte name")
	wantErrno(t, os.Mkdir(filepath.Join(dir, long), 0o755), syscall.ENAMETOOLONG, "mkdir with a 256-byte name")
	name := "ünïcödé and spaces & ?#%"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, dir); !slices.Equal(got, []string{name}) {
		t.Fatalf("lists %q", got)
	}
	// Keys no path can name are left out of listings.
	put(t, bucket, "a//b", "x", nil)
	put(t, bucket, "./c", "x", nil)
	eventually(t, "keys with empty and dot segments", func() bool { return slices.Contains(readDir(t, dir), "a") })
	if got := readDir(t, dir); slices.Contains(got, ".") || len(got) != 2 {
		t.Fatalf("lists %q", got)
	}
}

func TestReadOnly(t *testing.T) {
	bucket := newBucket(t)
	put(t, bucket, "f", "data", nil)
	dir := mountAt(t, bucket, mount.Options{ReadOnly: true})
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "data" {
		t.Fatalf("read: %q, %v", b, err)
	}
	wantErrno(t, os.WriteFile(filepath.Join(dir, "g"), nil, 0o644), syscall.EROFS, "create")
	wantErrno(t, os.Remove(filepath.Join(dir, "f")), syscall.EROFS, "unlink")
	wantErrno(t, os.Mkdir(filepath.Join(dir, "d"), 0o755), syscall.EROFS, "mkdir")
}

func TestPrefixMount(t *testing.T) {
	bucket := newBucket(t)
	put(t, bucket, "outside", "x", nil)
	put(t, bucket, "team/inside", "y", nil)
	dir := mountAt(t, bucket, mount.Options{Prefix: "team"})
	if got := readDir(t, dir); !slices.Equal(got, []string{"inside"}) {
		t.Fatalf("prefix mount lists %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("z"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(stored(t, bucket, "team/new")); got != "z" {
		t.Fatalf("team/new holds %q", got)
	}
}

func TestStatfs(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	nodes, err := env.client.Meta().Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var raw uint64
	for _, n := range nodes {
		c, _ := n.Capacity()
		raw += c
	}
	got := st.Blocks * uint64(st.Bsize)
	if want := raw / 6 * 4; got == 0 || got > want || got < want-want/100 {
		t.Fatalf("statfs reports %d bytes, want about %d (4/6 of %d raw)", got, want, raw)
	}
	if st.Namelen != 255 {
		t.Fatalf("name length %d", st.Namelen)
	}
}

// TestInodeStable checks that a file keeps its inode number through this
// mount's own changes, once their echoes from the change feed are back.
func TestInodeStable(t *testing.T) {
	bucket := newBucket(t)
	dir := mountAt(t, bucket, mount.Options{})
	ino := func(name string) uint64 {
		t.Helper()
		st, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := ino("f")
	step := func(what string, change func() error, name string) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // let the echo come back
		if got := ino(name); got != want {
			t.Fatalf("after %s the inode is %d, was %d", what, got, want)
		}
	}
	step("create", func() error { return nil }, "f")
	step("rewrite", func() error { return os.WriteFile(filepath.Join(dir, "f"), []byte("two"), 0o644) }, "f")
	step("chmod", func() error { return os.Chmod(filepath.Join(dir, "f"), 0o600) }, "f")
	step("rename", func() error { return os.Rename(filepath.Join(dir, "f"), filepath.Join(dir, "g")) }, "g")
}
