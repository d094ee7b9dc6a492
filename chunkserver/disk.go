package chunkserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Names in a disk directory; see the package documentation.
const (
	lockFile   = "LOCK"
	diskIDFile = "disk-id"
	nodeIDFile = "node-id"
	tmpDir     = "tmp"
	shardsDir  = "shards"
)

// A disk is one configured directory, a failure domain of its own.
type disk struct {
	path   string
	id     string
	shards string // <path>/shards
	tmp    string // <path>/tmp
	limit  int64  // most bytes of shard files, 0 = no limit
	lock   *os.File

	// failure is why the disk is unhealthy (nil when healthy). A disk
	// that could not be opened at all has lock == nil and is never used;
	// one that failed later stays readable but takes no new shards.
	failure atomic.Pointer[error]

	// fullUntil (unix nanoseconds) keeps a disk that hit ENOSPC out of
	// placement for a while, even if statfs claims space (delayed
	// allocation, or inodes running out).
	fullUntil atomic.Int64

	noDirect atomic.Bool // the filesystem refused O_DIRECT

	durable *groupSync // batches the flushes of concurrent shard writes

	count    atomic.Int64 // committed shard files
	used     atomic.Int64 // bytes of committed shard files
	reserved atomic.Int64 // bytes promised to writes in progress
}

func (d *disk) healthy() bool { return d.lock != nil && d.failure.Load() == nil }

// fail marks the disk unhealthy: it takes no new shards until the server
// restarts. Called on I/O errors other than running out of space.
func (d *disk) fail(err error) {
	d.failure.CompareAndSwap(nil, &err)
}

func (d *disk) shardPath(id string) string {
	return d.shards + "/" + id[:2] + "/" + id
}

// openDisk prepares dir for use: creates the layout, takes the lock, reads
// or creates the disk id, removes temp files left by a crash, and counts
// the shards.
func openDisk(ctx context.Context, dir string, limit int64, shared *SharedFlush) (*disk, int, error) {
	d := &disk{
		path:   dir,
		shards: filepath.Join(dir, shardsDir),
		tmp:    filepath.Join(dir, tmpDir),
		limit:  limit,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return d, 0, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return d, 0, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return d, 0, fmt.Errorf("%w: %s is in use by another process", errDiskInUse, dir)
		}
		return d, 0, fmt.Errorf("lock %s: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if d.id, err = readOrCreateID(filepath.Join(dir, diskIDFile)); err != nil {
		return d, 0, err
	}
	removed, err := cleanTmp(d.tmp)
	if err != nil {
		return d, 0, err
	}
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(d.shards, fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return d, 0, err
		}
	}
	for _, p := range []string{d.shards, dir} {
		if err := syncDir(p); err != nil {
			return d, 0, err
		}
	}
	err = d.walk(ctx, func(_ string, size int64, _ int64) error {
		d.count.Add(1)
		d.used.Add(size)
		return nil
	})
	if err != nil {
		return d, 0, err
	}
	if shared != nil {
		if d.durable, err = shared.group(dir); err != nil {
			return d, 0, err
		}
	} else {
		d.durable = &groupSync{flush: func() error { return syncFS(lock) }}
	}
	d.lock = lock
	ok = true
	return d, removed, nil
}

var errDiskInUse = errors.New("disk in use")

// filesystemID identifies the filesystem holding dir.
func filesystemID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", dir, err)
	}
	return uint64(st.Dev), nil
}

// cleanTmp empties the temp directory, creating it if needed, and returns
// how many files it removed. A file there is a write that never
// committed: its client got no success answer, so nothing refers to it.
func cleanTmp(dir string) (int, error) {
	names, err := readDirNames(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return 0, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	return len(names), nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// walk calls fn for every committed shard on the disk with its file size
// and modification time (unix seconds). Files that are not shards are
// skipped. It reads the directories in batches, so memory does not grow
// with the number of shards.
func (d *disk) walk(ctx context.Context, fn func(id string, fileSize, mtime int64) error) error {
	for i := range 256 {
		if err := ctx.Err(); err != nil {
			return err
		}
		prefix := fmt.Sprintf("%02x", i)
		dir := filepath.Join(d.shards, prefix)
		f, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		for {
			ents, err := f.ReadDir(1024)
			for _, e := range ents {
				name := e.Name()
				if !e.Type().IsRegular() || !ValidShardID(name) || name[:2] != prefix {
					continue
				}
				info, err := e.Info()
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						continue // deleted while we listed
					}
					f.Close()
					return err
				}
				if err := fn(name, info.Size(), info.ModTime().Unix()); err != nil {
					f.Close()
					return err
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
		}
		f.Close()
	}
	return nil
}

// space returns the disk's capacity and free bytes, honouring its limit.
func (d *disk) space() (capacity, free int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(d.path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", d.path, err)
	}
	capacity = int64(uint64(st.Blocks) * uint64(st.Bsize))
	free = int64(uint64(st.Bavail) * uint64(st.Bsize))
	if st.Files > 0 && st.Ffree == 0 {
		free = 0 // no inode left for another shard file
	}
	if d.limit > 0 {
		capacity = min(capacity, d.limit)
		free = min(free, max(0, d.limit-d.used.Load()))
	}
	return capacity, free, nil
}

// readOrCreateID returns the id stored in path, creating a random one if
// the file does not exist.
func readOrCreateID(path string) (string, error) {
	id, err := readID(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	id = newID()
	return id, writeFileAtomic(path, []byte(id+"\n"))
}

func readID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !validNodeOrDiskID(id) {
		return "", fmt.Errorf("%s: malformed id %q", path, b)
	}
	return id, nil
}

// validNodeOrDiskID keeps ids to characters that need no quoting in JSON,
// URLs or file names.
func validNodeOrDiskID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// writeFileAtomic durably replaces path with data.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the directory's entries (creates, renames) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// isNoSpace reports whether err means the disk is full (as opposed to
// broken).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
