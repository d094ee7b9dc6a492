package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

func TestMountBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mount"}, "give the bucket and the mount point"},
		{[]string{"mount", "photos"}, "give the bucket and the mount point"},
		{[]string{"mount", "Bad_Bucket", dir}, "invalid name"},
		{[]string{"mount", "photos", filepath.Join(dir, "missing")}, "does not exist"},
		{[]string{"mount", "photos", file}, "is not a directory"},
		{[]string{"mount", "--uid", "-5", "photos", dir}, "--uid and --gid"},
		{[]string{"mount", "--no-such-flag", "photos", dir}, "not defined"},
		{[]string{"umount"}, "give the mount point"},
		{[]string{"umount", dir}, "is not a mount point"},
		{[]string{"umount", filepath.Join(dir, "missing")}, "does not exist"},
	} {
		err := run(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("talus %s: got %v, want one line saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestMountCommand mounts a bucket of a real `talus dev` with the real
// binary, in the background, and unmounts it with `talus umount`.
func TestMountCommand(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	bin := buildTalus(t)
	p := startDev(t, bin)
	cl, err := client.New(client.Config{Meta: []string{p.meta}, Secret: p.secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Meta().CreateBucket(context.Background(), metaapi.Bucket{Name: "mnt"}); err != nil {
		t.Fatal(err)
	}
	talus := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TALUS_SECRET="+string(p.secret), "TALUS_META="+p.meta)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := t.TempDir()
	out, err := talus("mount", "mnt", dir, "--daemon")
	if err != nil {
		t.Fatalf("talus mount --daemon: %v: %s", err, out)
	}
	mounted := true
	defer func() {
		if mounted {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("world"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Get(context.Background(), "mnt", "hello", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(r)
	if got.String() != "world" {
		t.Fatalf("the store holds %q", got.String())
	}
	// A missing bucket is reported by the command, not by the background process.
	if out, err := talus("mount", "nosuchbucket", t.TempDir(), "--daemon"); err == nil || !strings.Contains(out, "does not exist") {
		t.Fatalf("mount of a missing bucket: %v: %s", err, out)
	}
	if out, err := talus("umount", dir); err != nil {
		t.Fatalf("talus umount: %v: %s", err, out)
	}
	mounted = false
	if _, err := os.Stat(filepath.Join(dir, "hello")); !os.IsNotExist(err) {
		t.Fatalf("after umount the mount point still shows files: %v", err)
	}
}
