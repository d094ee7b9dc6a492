package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/mount"
)

// mountReadyFD is set in the environment of the process a --daemon mount
// starts: the file descriptor on which it reports "ok" or why it failed.
const mountReadyFD = "TALUS_MOUNT_READY_FD"

func runMount(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("mount")
	var metas listFlag
	fs.Var(&metas, "meta", "metadata server address; repeatable (default $TALUS_META or 127.0.0.1:7700, where `talus dev` listens)")
	secret := fs.String("secret", "", "cluster secret (default $TALUS_SECRET, else ./talus-data/secret of a local `talus dev`)")
	readOnly := fs.Bool("read-only", false, "mount read-only")
	allowOther := fs.Bool("allow-other", false, "let users other than the mounting one use the mount")
	daemon := fs.Bool("daemon", false, "run in the background once mounted")
	logFile := fs.String("log-file", "", "with --daemon: append logs to this file (default: discard them)")
	uid := fs.Int("uid", -1, "owner of files that carry no uid metadata; -1: the mounting user")
	gid := fs.Int("gid", -1, "group of files that carry no gid metadata; -1: the mounting user's group")
	cacheDir := fs.String("cache-dir", "", "directory for the write-back files of random writes (default: the system temp directory)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long one call to the cluster may take before the filesystem call fails with EIO")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	debug := fs.Bool("debug", false, "log every FUSE request")
	directIO := fs.Bool("direct-io", false, "experimental: files opened read-only bypass the kernel page cache: faster streaming reads, slower small reads, no MAP_SHARED mappings of them")
	var pos []string
	for rest := args; ; {
		// Flags may come before, between or after the two arguments.
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 2 {
		return errors.New("mount: give the bucket and the mount point, e.g. 'talus mount photos /mnt/photos'")
	}
	bucket, prefix, _ := strings.Cut(pos[0], "/")
	if err := metaapi.ValidateBucketName(bucket); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	dir, err := filepath.Abs(pos[1])
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("mount: mount point %s does not exist", dir)
	} else if !st.IsDir() {
		return fmt.Errorf("mount: mount point %s is not a directory", dir)
	}
	if *uid < -1 || *gid < -1 {
		return errors.New("mount: --uid and --gid must be user and group ids")
	}
	if *daemon && os.Getenv(mountReadyFD) == "" {
		return daemonize(dir, *logFile, stdout)
	}

	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	cl, err := client.New(client.Config{Meta: metaAddrs(metas), Secret: clusterSecret(*secret), Logger: log})
	if err != nil {
		return err
	}
	opts := mount.Options{
		Client: cl, Bucket: bucket, Prefix: prefix,
		ReadOnly: *readOnly, AllowOther: *allowOther, CacheDir: *cacheDir,
		Timeout: *timeout, Logger: log, Debug: *debug, DirectIO: *directIO,
	}
	if *uid >= 0 {
		u := uint32(*uid)
		opts.UID = &u
	}
	if *gid >= 0 {
		g := uint32(*gid)
		opts.GID = &g
	}
	m, err := mount.New(ctx, dir, opts)
	ready(err)
	if err != nil {
		return err
	}
	if os.Getenv(mountReadyFD) == "" {
		fmt.Fprintf(stdout, "mounted %s on %s; Ctrl-C or 'talus umount %s' unmounts\n", pos[0], dir, dir)
	}
	served := make(chan struct{})
	go func() {
		m.Wait()
		close(served)
	}()
	select {
	case <-served: // unmounted from outside
		return nil
	case <-ctx.Done():
	}
	return unmountGently(m, log)
}

// unmountGently unmounts, waiting a while for open files to be closed; if
// they are not, the mount is detached and served until the last one closes
// or a further half minute has passed.
func unmountGently(m *mount.Mount, log *slog.Logger) error {
	var err error
	for range 20 {
		if err = m.Unmount(); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	log.Warn("mount point busy; detaching it lazily", "dir", m.Dir(), "err", err)
	if err := syscall.Unmount(m.Dir(), syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", m.Dir(), err)
	}
	done := make(chan struct{})
	go func() { m.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		log.Warn("files still open on the detached mount; exiting anyway", "dir", m.Dir())
	}
	return nil
}

// ready tells the process that started this one with --daemon how the
// mount went.
func ready(err error) {
	v := os.Getenv(mountReadyFD)
	if v == "" {
		return
	}
	fd, perr := strconv.Atoi(v)
	if perr != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	if err != nil {
		fmt.Fprintln(f, err)
	} else {
		fmt.Fprintln(f, "ok")
	}
	f.Close()
}

// daemonize runs this command again in a new session, detached from the
// terminal, and returns once it has mounted (or failed to).
func daemonize(dir, logFile string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("mount: find own executable: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	defer pr.Close()
	out, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if logFile != "" {
		out, err = os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	}
	if err != nil {
		pw.Close()
		return fmt.Errorf("mount: log file: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), mountReadyFD+"=3")
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("mount: start background process: %w", err)
	}
	pw.Close()
	line, _ := bufio.NewReader(pr).ReadString('\n')
	line = strings.TrimSpace(line)
	if line != "ok" {
		cmd.Wait()
		if line == "" {
			line = "the background process exited before mounting"
		}
		return errors.New(strings.TrimPrefix(line, "talus: "))
	}
	fmt.Fprintf(stdout, "mounted on %s (process %d); 'talus umount %s' unmounts\n", dir, cmd.Process.Pid, dir)
	cmd.Process.Release()
	return nil
}

func runUmount(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("umount")
	lazy := fs.Bool("lazy", false, "detach now even if files are open; the mount goes away when they are closed")
	dir, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 0 {
		return errors.New("umount: give the mount point, e.g. 'talus umount /mnt/photos'")
	}
	flags := 0
	if *lazy {
		flags = syscall.MNT_DETACH
	}
	err := syscall.Unmount(dir, flags)
	if errors.Is(err, syscall.EPERM) {
		// Not root: a user mount is undone by the setuid helper.
		args := []string{"-u", dir}
		if *lazy {
			args = []string{"-u", "-z", dir}
		}
		if out, ferr := exec.Command("fusermount3", args...).CombinedOutput(); ferr != nil {
			return fmt.Errorf("umount %s: %s", dir, strings.TrimSpace(string(out)))
		}
		return nil
	}
	switch {
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("umount: %s is not a mount point", dir)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("umount: %s is busy (open files, or a shell inside it); close them or use --lazy", dir)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("umount: %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	return nil
}

// metaAddrs are the metadata servers: as given, else $TALUS_META, else a
// local `talus dev`.
func metaAddrs(given listFlag) []string {
	if len(given) > 0 {
		return given
	}
	if env := os.Getenv("TALUS_META"); env != "" {
		var l listFlag
		l.Set(env)
		return l
	}
	return []string{"127.0.0.1:7700"}
}

// clusterSecret is the cluster secret: as given, else $TALUS_SECRET, else a
// local `talus dev`'s.
func clusterSecret(given string) []byte {
	if s := secretFrom(given); len(s) > 0 {
		return s
	}
	if b, err := os.ReadFile(filepath.Join("talus-data", "secret")); err == nil {
		return []byte(strings.TrimSpace(string(b)))
	}
	return nil
}
