// Package mount serves a talus bucket (or a prefix of one) as a FUSE
// filesystem that many machines can mount at once.
//
// Files are objects and directories come from the "/" delimiter, with marker
// objects ("dir/") so that empty directories exist; POSIX attributes are
// object metadata under the names s3fs and rclone use, so S3 clients and
// those tools see the same tree. Data moves through the native client
// straight to and from the chunk servers. Renames are single metadata
// operations. A change feed from the metadata service invalidates the
// caches of every mount (and the kernel's) when anything changes, so one
// mount sees another's writes, renames and deletes within a second.
//
// docs/MOUNT.md describes what is and is not POSIX.
package mount

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// Options configure a mount.
type Options struct {
	// Client reaches the cluster.
	Client *client.Client
	// Bucket is the bucket to serve; Prefix, if set, the "directory" within
	// it that becomes the root of the mount.
	Bucket string
	Prefix string
	// ReadOnly refuses every change with EROFS.
	ReadOnly bool
	// AllowOther lets users other than the one who mounted use the mount.
	AllowOther bool
	// UID and GID own objects that carry no uid/gid metadata (those written
	// through S3); the default is the mounting process's.
	UID, GID *uint32
	// CacheDir holds the write-back files of random writes; default
	// os.TempDir(). The files are unlinked as soon as they are created.
	CacheDir string
	// Timeout bounds each call to the cluster; a filesystem call that
	// exceeds it fails with EIO. Default 30 s.
	Timeout time.Duration
	// KernelTTL is how long the kernel may trust names and attributes it was
	// given before asking again. The change feed invalidates them earlier;
	// this only bounds staleness when the feed is unreachable. Default 1 s.
	KernelTTL time.Duration
	// CacheTTL is how long this process trusts a directory listing or
	// attributes while the change feed is healthy. Default 1 min.
	CacheTTL time.Duration
	// DirectIO opens files that are opened read-only with FOPEN_DIRECT_IO:
	// their reads bypass the kernel's page cache, so each read(2) is one
	// request to the mount, answered from its read-ahead. Streaming reads
	// are faster (the kernel copies straight into the reader's buffer
	// instead of into and out of the page cache); small reads are slower
	// (each is a round trip to this process), and MAP_SHARED mappings of
	// files opened read-only fail with ENODEV (private mappings work).
	DirectIO bool
	Logger   *slog.Logger
	// Debug logs every FUSE request and answer.
	Debug bool
}

// Mount is a mounted filesystem.
type Mount struct {
	dir    string
	fsys   *fsys
	server *fuse.Server
	cancel context.CancelFunc
	feed   chan struct{} // closed when the change-feed watcher has stopped
}

// New mounts the bucket at dir and serves it until Unmount (or an external
// umount). It returns once the kernel has the filesystem.
func New(ctx context.Context, dir string, opts Options) (*Mount, error) {
	if opts.Client == nil {
		return nil, errors.New("mount: no client")
	}
	if err := metaapi.ValidateBucketName(opts.Bucket); err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	opts.Prefix = strings.Trim(opts.Prefix, "/")
	if opts.Prefix != "" {
		if err := metaapi.ValidateKey(opts.Prefix); err != nil {
			return nil, fmt.Errorf("mount: prefix: %w", err)
		}
		opts.Prefix += "/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.KernelTTL <= 0 {
		opts.KernelTTL = time.Second
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.CacheDir == "" {
		opts.CacheDir = os.TempDir()
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("mount: mount point: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("mount: mount point %s is not a directory", dir)
	}
	if st, err := os.Stat(opts.CacheDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("mount: cache directory %s is not a directory", opts.CacheDir)
	}

	f := &fsys{
		cl:     opts.Client,
		meta:   opts.Client.Meta(),
		bucket: opts.Bucket,
		prefix: opts.Prefix,
		opts:   opts,
		log:    opts.Logger.With("bucket", opts.Bucket),
		def:    defaults{uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), fileMode: 0o644, dirMode: 0o755},
	}
	if opts.UID != nil {
		f.def.uid = *opts.UID
	}
	if opts.GID != nil {
		f.def.gid = *opts.GID
	}

	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if _, err := f.meta.Bucket(cctx, opts.Bucket); errors.Is(err, metaapi.ErrNoSuchBucket) {
		return nil, fmt.Errorf("mount: bucket %s does not exist", opts.Bucket)
	} else if err != nil {
		return nil, fmt.Errorf("mount: bucket %s: %w", opts.Bucket, err)
	}
	ring, err := f.meta.Ring(cctx)
	if err != nil {
		return nil, fmt.Errorf("mount: fetch cluster layout: %w", err)
	}
	f.inlineMax = ring.InlineMax
	// Take the feed's position before anything is cached, so that no change
	// made after a cache fill can be missed.
	pos, err := f.meta.Changes(cctx, opts.Bucket, 0)
	if err != nil {
		return nil, fmt.Errorf("mount: open change feed: %w", err)
	}
	f.feedOK.Store(true)

	f.root = &node{fsys: f, kind: kindDir, a: attrsOf(metaapi.Object{Modified: time.Now()}, kindDir, f.def)}
	ttl := opts.KernelTTL
	mo := fuse.MountOptions{
		AllowOther:    opts.AllowOther,
		FsName:        "talus:" + opts.Bucket + "/" + opts.Prefix,
		Name:          "talus",
		DirectMount:   true,
		MaxWrite:      1 << 20,
		MaxReadAhead:  1 << 20,
		MaxBackground: 64,
		// Permissions are the kernel's to check, from the modes and owners
		// we report, as on a local filesystem.
		Options:       []string{"default_permissions"},
		DisableXAttrs: true,
		Debug:         opts.Debug,
	}
	if opts.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	if opts.Debug {
		mo.Logger = log.New(os.Stderr, "fuse: ", log.Lmicroseconds)
	}
	server, err := fs.Mount(dir, f.root, &fs.Options{
		MountOptions:    mo,
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		// Mode 0000 is a mode like any other (open(2) may create it).
		NullPermissions: true,
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s on %s: %w", opts.Bucket, dir, err)
	}
	f.server = server
	f.setReadAhead(dir)

	wctx, wcancel := context.WithCancel(context.Background())
	m := &Mount{dir: dir, fsys: f, server: server, cancel: wcancel, feed: make(chan struct{})}
	go func() {
		defer close(m.feed)
		f.watch(wctx, pos.Next)
	}()
	return m, nil
}

// Dir is the mount point.
func (m *Mount) Dir() string { return m.dir }

// Unmount detaches the filesystem; it fails with EBUSY while files are open
// or a process has its working directory inside.
func (m *Mount) Unmount() error {
	if err := m.server.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", m.dir, err)
	}
	m.Wait()
	return nil
}

// Wait returns when the filesystem is no longer mounted, by Unmount or by an
// external umount.
func (m *Mount) Wait() {
	m.server.Wait()
	m.cancel()
	<-m.feed
}

// fsys is the state one mount shares among its nodes.
type fsys struct {
	cl        *client.Client
	meta      *metaapi.Client
	bucket    string
	prefix    string // "" or ends with "/"
	opts      Options
	log       *slog.Logger
	def       defaults
	inlineMax int64
	root      *node
	server    *fuse.Server

	// epoch is bumped when every cache must be dropped at once (the feed
	// reset); cached state from an older epoch is not trusted.
	epoch atomic.Uint64
	// feedOK is whether the change feed is being followed. Without it,
	// cached state is trusted only for the kernel's TTL.
	feedOK atomic.Bool

	// uploads counts streaming uploads in flight, for tests and logs.
	uploads sync.WaitGroup

	// renaming counts renames in progress, and renamed is when this mount
	// last finished one (unix ns): go-fuse moves the node in its tree only
	// after Rename returns, so the change feed, which may report the rename
	// before that, waits until a moment after.
	renaming atomic.Int32
	renamed  atomic.Int64
}

// readAheadKB is the kernel read-ahead asked for on the mount. The kernel
// gives a FUSE mount at most its default (128 KiB), which makes a
// sequential reader wait for a round trip every 128 KiB; a larger window
// keeps several reads of up to 1 MiB in flight.
const readAheadKB = 8 << 10

// setReadAhead raises the kernel's read-ahead for the mount (root only;
// without it reads work, just slower).
func (f *fsys) setReadAhead(dir string) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(path, []byte(strconv.Itoa(readAheadKB)), 0o644); err != nil {
		f.log.Debug("mount: cannot raise the kernel read-ahead", "path", path, "err", err)
	}
}

// fresh says whether state cached at time at, in epoch ep, may still be used.
func (f *fsys) fresh(at time.Time, ep uint64) bool {
	if at.IsZero() || ep != f.epoch.Load() {
		return false
	}
	ttl := f.opts.KernelTTL
	if f.feedOK.Load() {
		ttl = f.opts.CacheTTL
	}
	return time.Since(at) < ttl
}

// ctx bounds one filesystem call's work on the cluster. It ignores the
// kernel's interrupts: a Go program's threads get signals all the time
// (goroutine preemption), and an interrupted close would report EINTR for a
// file that may well have been stored; the timeout bounds the wait instead.
func (f *fsys) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(parent), f.opts.Timeout)
}

// readOnly answers a change on a read-only mount.
func (f *fsys) readOnly() syscall.Errno {
	if f.opts.ReadOnly {
		return syscall.EROFS
	}
	return 0
}

// logErr logs a failed call unless its errno is a normal answer.
func (f *fsys) logErr(op, key string, err error) syscall.Errno {
	e := toErrno(err)
	if e == syscall.EIO {
		f.log.Warn("mount: "+op+" failed", "key", key, "err", err)
	}
	return e
}
