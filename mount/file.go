package mount

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/talusfs/talus/meta/metaapi"
)

// handle is one open file.
type handle struct {
	n      *node
	write  bool
	append bool

	mu sync.Mutex
	rd *fileReader // the version opened, for reads while no write session exists
}

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileWriter   = (*handle)(nil)
	_ fs.FileFlusher  = (*handle)(nil)
	_ fs.FileFsyncer  = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

// newHandle opens a handle on a node whose session already exists when
// writing (Create).
func (n *node) newHandle(flags uint32) *handle {
	h := &handle{n: n, write: flags&syscall.O_ACCMODE != syscall.O_RDONLY, append: flags&syscall.O_APPEND != 0}
	if h.write {
		n.mu.Lock()
		n.sess.refs++
		n.mu.Unlock()
	}
	return h
}

// Open opens a file. Reading pins the version current now (one metadata
// lookup); writing joins the file's write session, or starts one from the
// stored version (or from nothing, with O_TRUNC).
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if write {
		if e := n.fsys.readOnly(); e != 0 {
			return nil, 0, e
		}
	}
	if n.kind != kindFile {
		return nil, 0, syscall.EINVAL
	}
	key, ok := n.key()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	trunc := flags&syscall.O_TRUNC != 0
	n.mu.Lock()
	s := n.sess
	n.mu.Unlock()
	var obj metaapi.Object
	if s == nil && !(write && trunc) {
		gen := n.gen()
		cctx, cancel := n.fsys.ctx(ctx)
		var err error
		obj, err = n.fsys.meta.Object(cctx, n.fsys.bucket, key)
		cancel()
		if err != nil {
			return nil, 0, n.fsys.logErr("open", key, err)
		}
		n.refresh(gen, attrsOf(obj, kindFile, n.fsys.def), false)
	}
	if !write {
		h := &handle{n: n}
		if s == nil {
			h.rd = newFileReader(n.fsys.cl, obj)
		}
		if n.fsys.opts.DirectIO {
			return h, fuse.FOPEN_DIRECT_IO, 0
		}
		return h, 0, 0
	}
	n.mu.Lock()
	if n.sess == nil {
		n.sess = newSession(n, obj, false)
	}
	s = n.sess
	s.refs++
	n.mu.Unlock()
	h := &handle{n: n, write: true, append: flags&syscall.O_APPEND != 0}
	if trunc {
		cctx, cancel := n.fsys.ctx(ctx)
		err := s.truncate(cctx, 0)
		cancel()
		if err != nil {
			n.unref()
			return nil, 0, n.fsys.logErr("truncate", key, err)
		}
	}
	return h, 0, 0
}

func (h *handle) session() *session {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.n.sess
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	cctx, cancel := h.n.fsys.ctx(ctx)
	defer cancel()
	var res fuse.ReadResult
	var err error
	// A write session in this mount has the newest bytes.
	if s := h.session(); s != nil {
		res, err = s.read(cctx, dest, off)
	} else {
		var rd *fileReader
		if rd, err = h.reader(cctx); err == nil {
			res, err = rd.read(cctx, dest, off)
		}
	}
	if err != nil {
		if res != nil {
			res.Done()
		}
		return nil, h.n.fsys.logErr("read", h.n.name(), err)
	}
	return res, 0
}

// reader returns the handle's reader of a stored version; a handle opened
// while the file was being written in this mount pins the version stored
// when that ended.
func (h *handle) reader(ctx context.Context) (*fileReader, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rd != nil {
		return h.rd, nil
	}
	key, ok := h.n.key()
	if !ok {
		return nil, syscall.ENOENT
	}
	obj, err := h.n.fsys.meta.Object(ctx, h.n.fsys.bucket, key)
	if err != nil {
		return nil, err
	}
	h.rd = newFileReader(h.n.fsys.cl, obj)
	return h.rd, nil
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.write {
		return 0, syscall.EBADF
	}
	s := h.session()
	if h.append {
		s.mu.Lock()
		off = s.size
		s.mu.Unlock()
	}
	cctx, cancel := h.n.fsys.ctx(ctx)
	defer cancel()
	n, err := s.write(cctx, data, off)
	if err != nil {
		return uint32(n), h.n.fsys.logErr("write", h.n.name(), err)
	}
	return uint32(n), 0
}

// Flush runs on every close of a descriptor: the file is stored, so that
// close reports a failed upload and the file is visible everywhere once
// close returns.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if !h.write {
		return 0
	}
	return h.n.store(ctx)
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !h.write {
		return 0
	}
	return h.n.store(ctx)
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	if h.rd != nil {
		h.rd.close()
		h.rd = nil
	}
	h.mu.Unlock()
	if !h.write {
		return 0
	}
	h.n.unref()
	return 0
}

// unref drops a reference to the node's write session and ends the session
// with the last one.
func (n *node) unref() {
	n.mu.Lock()
	s := n.sess
	s.refs--
	last := s.refs == 0
	if last {
		n.sess = nil
	}
	n.mu.Unlock()
	if last {
		// Not the caller's context: release is not waited for, and the
		// store must finish all the same.
		ctx, cancel := context.WithTimeout(context.Background(), n.fsys.opts.Timeout)
		s.close(ctx)
		cancel()
	}
}

// store stores the node's write session, if it has unstored bytes.
func (n *node) store(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	s := n.sess
	n.mu.Unlock()
	if s == nil || !s.unstored() {
		return 0
	}
	cctx, cancel := n.fsys.ctx(ctx)
	defer cancel()
	if err := s.store(cctx); err != nil {
		s.mu.Lock()
		lost := s.err != nil
		s.mu.Unlock()
		if lost {
			n.revert()
		}
		return n.fsys.logErr("store", n.name(), err)
	}
	return 0
}

// revert forgets the attributes of writes that were never stored: the next
// stat asks the store, and the kernel is told to drop what it cached (from
// another goroutine, since the kernel may be waiting for this call).
func (n *node) revert() {
	n.mu.Lock()
	n.at = time.Time{}
	n.mu.Unlock()
	go func() {
		n.fsys.notifyContent(n)
		if name, p := n.Parent(); p != nil {
			n.fsys.notifyEntry(p.Operations().(*node), name)
		}
	}()
}

// stored takes the record of a version this mount just stored.
func (n *node) stored(o metaapi.Object) {
	n.mu.Lock()
	n.a.etag, n.a.meta, n.a.size = o.ETag, o.Meta, o.Size
	n.agen++
	n.at, n.ep = time.Now(), n.fsys.epoch.Load()
	n.mu.Unlock()
	if name, p := n.Parent(); p != nil {
		o.Inline, o.Segments = nil, nil
		p.Operations().(*node).setEntry(name, entry{kind: n.kind, obj: o})
	}
}

// truncate sets a file's length: through its write session if it is open
// for writing, else through a session of its own that is stored at once.
func (n *node) truncate(ctx context.Context, size int64) syscall.Errno {
	n.mu.Lock()
	s := n.sess
	if s != nil {
		s.refs++ // keep it from closing under us
	}
	n.mu.Unlock()
	cctx, cancel := n.fsys.ctx(ctx)
	defer cancel()
	key, _ := n.key()
	if s == nil {
		var base metaapi.Object
		if size != 0 {
			var err error
			if base, err = n.fsys.meta.Object(cctx, n.fsys.bucket, key); err != nil {
				return n.fsys.logErr("truncate", key, err)
			}
			if base.Size == size {
				return 0
			}
		}
		s = newSession(n, base, false)
		defer func() {
			s.mu.Lock()
			s.discard()
			s.mu.Unlock()
		}()
		if err := s.truncate(cctx, size); err != nil {
			return n.fsys.logErr("truncate", key, err)
		}
		if err := s.store(cctx); err != nil {
			return n.fsys.logErr("truncate", key, err)
		}
		return 0
	}
	defer n.unref()
	if err := s.truncate(cctx, size); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return syscall.EIO
		}
		return n.fsys.logErr("truncate", key, err)
	}
	return 0
}
