package mount

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// node is one file, directory, symlink or special file. Its place in the tree
// (and so its object key) is go-fuse's Inode tree: renames move nodes there,
// and a node that has left the tree (unlinked, or replaced by a rename) has
// no key and stores nothing.
type node struct {
	fs.Inode
	fsys *fsys
	kind kind

	mu sync.Mutex
	a  attrs
	// at and ep are when a was fetched and in which cache epoch; a zero at
	// means stale.
	at time.Time
	ep uint64
	// marker is whether a directory has its own marker object.
	marker bool
	// agen counts local changes to a, and busy those on their way to the
	// store, so that attributes fetched before one do not overwrite it (see
	// refresh).
	agen uint64
	busy int
	// gone is set once the node's name was unlinked or renamed over: an open
	// file then keeps working but is never stored.
	gone bool
	// target is a symlink's target, once read.
	target string
	// list caches a directory's entries; seq counts the changes to them,
	// so that a listing that raced with one is not cached.
	list   *listing
	seq    uint64
	relist *time.Timer
	// sess is the write state of a file open for writing, shared by all its
	// write handles.
	sess *session
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeMknoder    = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
)

func (f *fsys) newNode(k kind, a attrs, marker bool) *node {
	return &node{fsys: f, kind: k, a: a, at: time.Now(), ep: f.epoch.Load(), marker: marker}
}

// rel is the node's path below the mount root; ok is false once the node has
// left the tree.
func (n *node) rel() (string, bool) {
	root := n.fsys.root.EmbeddedInode()
	var parts []string
	for in := n.EmbeddedInode(); in != root; {
		name, p := in.Parent()
		if p == nil {
			return "", false
		}
		parts = append(parts, name)
		in = p
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/"), true
}

// key is the node's object key: a file's own, a directory's marker.
func (n *node) key() (string, bool) {
	rel, ok := n.rel()
	switch {
	case !ok:
		return "", false
	case n.kind == kindDir && rel == "":
		return n.fsys.prefix, true
	case n.kind == kindDir:
		return n.fsys.prefix + rel + "/", true
	}
	return n.fsys.prefix + rel, true
}

// name is the node's key for messages ("" once it has left the tree).
func (n *node) name() string {
	k, _ := n.key()
	return k
}

// childKey is the key of the file name in directory d (a directory's marker
// is that plus "/").
func (d *node) childKey(name string) (string, syscall.Errno) {
	dk, ok := d.key()
	if !ok {
		return "", syscall.ENOENT
	}
	k := dk + name
	if len(k)+1 > metaapi.MaxKeyLen {
		return "", syscall.ENAMETOOLONG
	}
	return k, 0
}

// local reports whether the node holds state the store does not have yet (a
// file being written), which then answers for it.
func (n *node) local() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sess != nil && n.sess.unstored()
}

func (n *node) fillAttr(out *fuse.Attr) {
	n.mu.Lock()
	n.a.fill(out)
	if n.gone {
		out.Nlink = 0 // unlinked, still open
	}
	n.mu.Unlock()
}

func (n *node) fillEntry(out *fuse.EntryOut) { n.fillAttr(&out.Attr) }

// gen is the node's count of local attribute changes; take it before
// fetching attributes to hand to refresh.
func (n *node) gen() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.agen
}

// refresh takes attributes fetched from the store, unless the node changed
// them itself since gen (the fetch may predate that change) or has unstored
// state.
func (n *node) refresh(gen uint64, a attrs, marker bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.agen != gen || n.busy > 0 || n.sess != nil && n.sess.unstored() {
		return
	}
	if a.etag != n.a.etag {
		n.target = ""
	}
	n.a, n.marker, n.at, n.ep = a, marker, time.Now(), n.fsys.epoch.Load()
}

// stale drops the node's cached attributes (the change feed saw its key).
func (n *node) stale() {
	n.mu.Lock()
	n.at = time.Time{}
	n.target = ""
	n.mu.Unlock()
}

// caller is who makes a filesystem call.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return uint32(syscall.Getuid()), uint32(syscall.Getgid())
}

// newAttrs are the attributes of an entry created now in directory d by the
// caller, with BSD group inheritance from a set-group-ID directory.
func (d *node) newAttrs(ctx context.Context, mode uint32) attrs {
	uid, gid := caller(ctx)
	d.mu.Lock()
	if d.a.mode&syscall.S_ISGID != 0 {
		gid = d.a.gid
		if mode&syscall.S_IFMT == syscall.S_IFDIR {
			mode |= syscall.S_ISGID
		}
	}
	d.mu.Unlock()
	now := time.Now()
	return attrs{mode: mode, uid: uid, gid: gid, mtime: now, ctime: now, atime: now}
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	fresh := n.fsys.fresh(n.at, n.ep) || (n.sess != nil && n.sess.unstored()) || n.gone || n.IsRoot()
	n.mu.Unlock()
	if !fresh {
		if errno := n.reload(ctx); errno != 0 {
			// An open file answers for itself after its name is gone.
			if errno != syscall.ENOENT || fh == nil {
				return errno
			}
		}
	}
	n.fillAttr(&out.Attr)
	return 0
}

// reload fetches the node's attributes from the store.
func (n *node) reload(ctx context.Context) syscall.Errno {
	name, p := n.Parent()
	if p == nil {
		return syscall.ENOENT
	}
	parent := p.Operations().(*node)
	cctx, cancel := n.fsys.ctx(ctx)
	defer cancel()
	gen := n.gen()
	e, found, err := parent.fetchEntry(cctx, name)
	if err != nil {
		return n.fsys.logErr("stat", name, err)
	}
	if !found || e.kind != n.kind {
		// Gone, or now something else: the change feed invalidates the
		// kernel's entry, and the next lookup gets a new node.
		return syscall.ENOENT
	}
	n.refresh(gen, attrsOf(e.obj, e.kind, n.fsys.def), e.marker)
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.fsys.readOnly(); e != 0 {
		return e
	}
	if size, ok := in.GetSize(); ok {
		if n.kind != kindFile {
			return syscall.EINVAL
		}
		if errno := n.truncate(ctx, int64(size)); errno != 0 {
			return errno
		}
	}
	mode, setMode := in.GetMode()
	uid, setUID := in.GetUID()
	gid, setGID := in.GetGID()
	mtime, setMtime := in.GetMTime()
	atime, setAtime := in.GetATime()
	if setMode || setUID || setGID || setMtime || setAtime {
		errno := n.setMeta(ctx, func(a *attrs) {
			if setMode {
				a.mode = a.mode&syscall.S_IFMT | mode&07777
			}
			if setUID {
				a.uid = uid
			}
			if setGID {
				a.gid = gid
			}
			if setMtime {
				a.mtime = mtime
			}
			if setAtime {
				a.atime = atime
			}
			a.ctime = time.Now()
		})
		if errno != 0 {
			return errno
		}
	}
	n.fillAttr(&out.Attr)
	return 0
}

// setMeta changes POSIX attributes: in the write state of a file that has
// unstored data (stored with it), else in the store at once by rewriting the
// record's metadata, which moves no data.
func (n *node) setMeta(ctx context.Context, change func(*attrs)) syscall.Errno {
	n.mu.Lock()
	change(&n.a)
	n.agen++
	unstored := n.sess != nil && n.sess.unstored()
	n.mu.Unlock()
	if unstored || n.IsRoot() && n.fsys.prefix == "" {
		// The bucket's root has no object to keep attributes in.
		return 0
	}
	key, ok := n.key()
	if !ok {
		return 0
	}
	// Attributes fetched while the change is on its way may predate it.
	n.mu.Lock()
	n.busy++
	n.mu.Unlock()
	cctx, cancel := n.fsys.ctx(ctx)
	defer cancel()
	o, err := n.fsys.rewriteMeta(cctx, key, n.kind, change)
	n.mu.Lock()
	n.busy--
	n.agen++
	if err == nil {
		change(&n.a)
		n.a.meta, n.a.etag = o.Meta, o.ETag
		if n.kind == kindDir {
			n.marker = true
		}
	}
	n.mu.Unlock()
	if err != nil {
		return n.fsys.logErr("set attributes", key, err)
	}
	if name, p := n.Parent(); p != nil {
		p.Operations().(*node).setEntry(name, entry{kind: n.kind, obj: o, marker: n.kind == kindDir})
	}
	return 0
}

// rewriteMeta applies change to the attributes stored in key's record: a
// copy of the object onto itself with new metadata, guarded by its ETag
// against a concurrent writer. A directory without a marker gets one.
func (f *fsys) rewriteMeta(ctx context.Context, key string, k kind, change func(*attrs)) (metaapi.Object, error) {
	for range 5 {
		cur, err := f.cl.Head(ctx, f.bucket, key)
		if errors.Is(err, metaapi.ErrNoSuchKey) && k == kindDir {
			a := attrsOf(metaapi.Object{Modified: time.Now()}, kindDir, f.def)
			change(&a)
			o, err := f.putSmall(ctx, key, nil, dirContentType, &a, metaapi.Preconditions{IfNoneMatch: "*"})
			if errors.Is(err, metaapi.ErrPrecondition) {
				continue
			}
			return o, err
		}
		if err != nil {
			return cur, err
		}
		a := attrsOf(cur, k, f.def)
		change(&a)
		o, err := f.cl.Copy(ctx, metaapi.CopyRequest{
			SrcBucket: f.bucket, SrcKey: key, SrcCond: metaapi.Preconditions{IfMatch: cur.ETag},
			DstBucket: f.bucket, DstKey: key,
			ReplaceMeta: true, ContentType: cur.ContentType, Meta: a.encode(),
		})
		if errors.Is(err, metaapi.ErrPrecondition) {
			continue // someone wrote it meanwhile: apply the change to theirs
		}
		return o, err
	}
	return metaapi.Object{}, errors.New("object kept changing under a metadata update")
}

// putSmall stores a small object (a marker, a symlink, an empty file).
func (f *fsys) putSmall(ctx context.Context, key string, body []byte, ctype string, a *attrs, cond metaapi.Preconditions) (metaapi.Object, error) {
	return f.cl.Put(ctx, f.bucket, key, bytes.NewReader(body), int64(len(body)),
		client.PutOptions{ContentType: ctype, Meta: a.encode(), Cond: cond})
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.mu.Lock()
	t := n.target
	n.mu.Unlock()
	if t != "" {
		return []byte(t), 0
	}
	key, ok := n.key()
	if !ok {
		return nil, syscall.ENOENT
	}
	cctx, cancel := n.fsys.ctx(ctx)
	defer cancel()
	o, err := n.fsys.meta.Object(cctx, n.fsys.bucket, key)
	if err != nil {
		return nil, n.fsys.logErr("readlink", key, err)
	}
	if len(o.Segments) > 0 || o.Size > 4096 {
		return nil, syscall.EIO // a symlink target is never this long
	}
	n.mu.Lock()
	n.target = string(o.Inline)
	n.mu.Unlock()
	return o.Inline, 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	cctx, cancel := n.fsys.ctx(ctx)
	defer cancel()
	r, err := n.fsys.meta.Ring(cctx)
	if err != nil {
		return n.fsys.logErr("statfs", "", err)
	}
	var capacity, free uint64
	for _, nd := range r.Nodes {
		if nd.State == metaapi.NodeUp {
			c, f := nd.Capacity()
			capacity += c
			free += f
		}
	}
	// Report what files can use: every byte stored costs (k+m)/k raw bytes.
	if r.K > 0 {
		capacity = capacity / uint64(r.K+r.M) * uint64(r.K)
		free = free / uint64(r.K+r.M) * uint64(r.K)
	}
	const bsize = 4096
	out.Bsize, out.Frsize = bsize, bsize
	out.Blocks = capacity / bsize
	out.Bfree, out.Bavail = free/bsize, free/bsize
	out.Files, out.Ffree = 1<<40, 1<<40 // no inode table to run out of
	out.NameLen = maxName
	return 0
}

// Link refuses hard links: an object has exactly one name. EPERM is what
// link(2) answers on filesystems without them.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}
