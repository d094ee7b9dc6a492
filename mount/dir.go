package mount

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/talusfs/talus/meta/metaapi"
)

// entry is what a name in a directory is, as the store says.
type entry struct {
	kind kind
	// obj is the file's record, or the directory's marker (zero for a
	// directory that exists only because keys live below it). It carries no
	// data or segments.
	obj    metaapi.Object
	marker bool
	// partial marks a directory seen in a listing, where its marker (and so
	// its attributes) is folded into the common prefix: a lookup asks.
	partial bool
}

// listing caches a directory's entries, from a readdir or from creating the
// directory. A name the change feed reported is stale until looked up again;
// readdir lists afresh while any name is stale.
type listing struct {
	entries map[string]entry
	stale   map[string]bool
	at      time.Time
	ep      uint64
}

// cached answers a lookup from the listing; known is false when it cannot.
func (d *node) cached(name string) (e entry, found, known bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.list
	if l == nil || l.stale[name] || !d.fsys.fresh(l.at, l.ep) {
		return entry{}, false, false
	}
	e, found = l.entries[name]
	if e.partial {
		return entry{}, false, false
	}
	return e, found, true
}

// setEntry records a change this mount made to name.
func (d *node) setEntry(name string, e entry) {
	d.mu.Lock()
	d.seq++
	if d.list != nil {
		d.list.entries[name] = e
		delete(d.list.stale, name)
	}
	d.mu.Unlock()
}

// dropEntry records that this mount removed name.
func (d *node) dropEntry(name string) {
	d.mu.Lock()
	d.seq++
	if d.list != nil {
		delete(d.list.entries, name)
		delete(d.list.stale, name)
	}
	d.mu.Unlock()
}

// seqNow is the directory's change count; take it before a lookup whose
// answer goes to learn.
func (d *node) seqNow() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seq
}

// learn records what a lookup found name to be (found false: absent),
// unless the directory changed since seq: the answer may predate that.
func (d *node) learn(seq uint64, name string, e entry, found bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.list == nil || d.seq != seq {
		return
	}
	if found {
		d.list.entries[name] = e
	} else {
		delete(d.list.entries, name)
	}
	delete(d.list.stale, name)
}

// takeEntry removes name and returns what it was, if known.
func (d *node) takeEntry(name string) (entry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	if d.list == nil || d.list.stale[name] {
		return entry{}, false
	}
	e, ok := d.list.entries[name]
	delete(d.list.entries, name)
	return e, ok
}

// forget marks name as changed by someone else. Once the changes stop
// coming, a directory with many stale names is listed again in the
// background, in pages of a thousand, rather than looked up name by name.
func (d *node) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	if d.list == nil {
		return
	}
	d.list.stale[name] = true
	if len(d.list.stale) < relistAfter {
		return
	}
	if d.relist == nil {
		d.relist = time.AfterFunc(relistQuiet, func() {
			ctx, cancel := context.WithTimeout(context.Background(), d.fsys.opts.Timeout)
			defer cancel()
			d.entries(ctx)
		})
	} else {
		d.relist.Reset(relistQuiet)
	}
}

// A directory with relistAfter stale names is listed again once no change
// has come for relistQuiet.
const (
	relistAfter = 16
	relistQuiet = 200 * time.Millisecond
)

// forgetAll drops the listing and the attributes of the directory and of
// everything known below it (its prefix changed as a whole).
func (n *node) forgetAll() {
	n.mu.Lock()
	n.seq++
	n.list = nil
	n.at = time.Time{}
	n.mu.Unlock()
	for _, ch := range n.Children() {
		ch.Operations().(*node).forgetAll()
	}
}

// fetchEntry asks the store what name in d is: a directory if any key lives
// below "name/" (its marker sorts first), else a file if the key exists.
// A directory wins over a file of the same name, since it hides more.
func (d *node) fetchEntry(ctx context.Context, name string) (entry, bool, error) {
	key, errno := d.childKey(name)
	if errno != 0 {
		return entry{}, false, errno
	}
	type head struct {
		o   metaapi.Object
		err error
	}
	hc := make(chan head, 1)
	go func() {
		o, err := d.fsys.cl.Head(ctx, d.fsys.bucket, key)
		o.Segments = nil
		hc <- head{o, err}
	}()
	lr, lerr := d.fsys.meta.List(ctx, metaapi.ListRequest{Bucket: d.fsys.bucket, Prefix: key + "/", Max: 1})
	h := <-hc
	if lerr != nil {
		return entry{}, false, lerr
	}
	if len(lr.Objects) > 0 || len(lr.CommonPrefixes) > 0 {
		e := entry{kind: kindDir}
		if len(lr.Objects) > 0 && lr.Objects[0].Key == key+"/" {
			e.obj, e.marker = lr.Objects[0], true
		}
		return e, true, nil
	}
	if errors.Is(h.err, metaapi.ErrNoSuchKey) {
		return entry{}, false, nil
	}
	if h.err != nil {
		return entry{}, false, h.err
	}
	return entry{kind: objectKind(h.o), obj: h.o}, true, nil
}

func (d *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := checkName(name); e != 0 {
		return nil, e
	}
	var gen uint64
	if ch := d.GetChild(name); ch != nil {
		c := ch.Operations().(*node)
		if c.local() {
			c.fillEntry(out)
			return ch, 0
		}
		gen = c.gen()
	}
	e, found, known := d.cached(name)
	if !known {
		cctx, cancel := d.fsys.ctx(ctx)
		defer cancel()
		seq := d.seqNow()
		var err error
		if e, found, err = d.fetchEntry(cctx, name); err != nil {
			return nil, d.fsys.logErr("lookup", name, err)
		}
		d.learn(seq, name, e, found)
	}
	if !found {
		return nil, syscall.ENOENT
	}
	return d.adopt(ctx, name, e, gen, out), 0
}

// adopt returns the node for an entry of d: the one already in the tree if
// it is the same kind of thing, else a new one.
// gen is the existing child's gen from before e was fetched.
func (d *node) adopt(ctx context.Context, name string, e entry, gen uint64, out *fuse.EntryOut) *fs.Inode {
	a := attrsOf(e.obj, e.kind, d.fsys.def)
	if ch := d.GetChild(name); ch != nil {
		if c := ch.Operations().(*node); c.kind == e.kind {
			c.refresh(gen, a, e.marker)
			c.fillEntry(out)
			return ch
		}
	}
	c := d.fsys.newNode(e.kind, a, e.marker)
	ch := d.NewInode(ctx, c, fs.StableAttr{Mode: a.mode & syscall.S_IFMT})
	c.fillEntry(out)
	return ch
}

// Readdir lists the directory from the store (one call per thousand
// entries), unless a listing the change feed has not invalidated is at hand.
// Files being created in this mount are listed before they are stored.
func (d *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	entries, errno := d.entries(ctx)
	if errno != 0 {
		return nil, errno
	}
	for name, ch := range d.Children() {
		if c := ch.Operations().(*node); c.local() {
			if _, ok := entries[name]; !ok {
				entries[name] = entry{kind: c.kind}
			}
		}
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	list := make([]fuse.DirEntry, 0, len(names)+2)
	self := d.StableAttr().Ino
	list = append(list, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: self}, fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: 1})
	dk, _ := d.key()
	for _, name := range names {
		e := entries[name]
		mode := e.kind.typeBits(attrsOf(e.obj, e.kind, d.fsys.def).mode)
		ino := inoOf(dk + name)
		if ch := d.GetChild(name); ch != nil {
			ino = ch.StableAttr().Ino
		}
		list = append(list, fuse.DirEntry{Name: name, Mode: mode, Ino: ino})
	}
	return fs.NewListDirStream(list), 0
}

// inoOf is the inode number readdir reports for an entry not yet looked up;
// lookups assign the real one (most kernels ask with READDIRPLUS, which
// looks every entry up).
func inoOf(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() | 1<<62
}

// entries returns the directory's entries, from the listing cache when it is
// complete and fresh.
func (d *node) entries(ctx context.Context) (map[string]entry, syscall.Errno) {
	d.mu.Lock()
	if l := d.list; l != nil && len(l.stale) == 0 && d.fsys.fresh(l.at, l.ep) {
		out := make(map[string]entry, len(l.entries))
		for k, v := range l.entries {
			out[k] = v
		}
		d.mu.Unlock()
		return out, 0
	}
	d.mu.Unlock()
	dk, ok := d.key()
	if !ok {
		return nil, syscall.ENOENT
	}
	ep := d.fsys.epoch.Load()
	started := time.Now()
	d.mu.Lock()
	seq := d.seq
	d.mu.Unlock()
	out := make(map[string]entry)
	req := metaapi.ListRequest{Bucket: d.fsys.bucket, Prefix: dk, Delimiter: "/"}
	for range 1 << 20 { // a million pages is a billion entries: more than any listing
		cctx, cancel := d.fsys.ctx(ctx)
		res, err := d.fsys.meta.List(cctx, req)
		cancel()
		if err != nil {
			return nil, d.fsys.logErr("list", dk, err)
		}
		for _, o := range res.Objects {
			name := o.Key[len(dk):]
			if name == "" || !validEntryName(name) {
				continue // the directory's own marker, or a name no path can reach
			}
			if prev, ok := out[name]; ok && prev.kind == kindDir {
				continue
			}
			out[name] = entry{kind: objectKind(o), obj: o}
		}
		for _, p := range res.CommonPrefixes {
			name := strings.TrimSuffix(p[len(dk):], "/")
			if !validEntryName(name) {
				continue
			}
			out[name] = entry{kind: kindDir, partial: true}
		}
		if !res.Truncated {
			break
		}
		req.After = res.Next
	}
	// Markers come as objects "name/", which the delimiter folds into the
	// prefix "name/": look them up lazily, when a name is looked up.
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seq != seq {
		// Something changed while the pages came in: this listing may
		// predate it, so it answers this readdir and is not cached.
		return out, 0
	}
	l := &listing{entries: make(map[string]entry, len(out)), stale: map[string]bool{}, at: started, ep: ep}
	for k, v := range out {
		l.entries[k] = v
	}
	// Keep what is known of markers from an earlier listing or lookup.
	if old := d.list; old != nil {
		for k, v := range old.entries {
			if nv, ok := l.entries[k]; ok && nv.partial && v.kind == kindDir && !v.partial && !old.stale[k] {
				l.entries[k] = v
			}
		}
	}
	d.list = l
	return out, 0
}

// validEntryName says whether a name between two slashes can be a directory
// entry.
func validEntryName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= maxName && !strings.ContainsRune(name, 0)
}

func (d *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := d.fsys.readOnly(); e != 0 {
		return nil, e
	}
	if e := checkName(name); e != 0 {
		return nil, e
	}
	key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	a := d.newAttrs(ctx, syscall.S_IFDIR|mode&07777)
	cctx, cancel := d.fsys.ctx(ctx)
	defer cancel()
	o, err := d.fsys.putSmall(cctx, key+"/", nil, dirContentType, &a, metaapi.Preconditions{IfNoneMatch: "*"})
	if errors.Is(err, metaapi.ErrPrecondition) {
		return nil, syscall.EEXIST
	}
	if err != nil {
		return nil, d.fsys.logErr("mkdir", key, err)
	}
	a.etag, a.meta, a.size = o.ETag, o.Meta, 4096
	c := d.fsys.newNode(kindDir, a, true)
	// A new directory is known to be empty.
	c.list = &listing{entries: map[string]entry{}, stale: map[string]bool{}, at: time.Now(), ep: d.fsys.epoch.Load()}
	ch := d.NewInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFDIR})
	d.setEntry(name, entry{kind: kindDir, obj: o, marker: true})
	d.touchDir()
	c.fillEntry(out)
	return ch, 0
}

// Mknod makes FIFOs, sockets, device nodes and empty regular files: empty
// objects whose mode (and rdev) say what they are.
func (d *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := d.fsys.readOnly(); e != 0 {
		return nil, e
	}
	if e := checkName(name); e != 0 {
		return nil, e
	}
	k := kindSpecial
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	case syscall.S_IFREG, 0:
		k, mode = kindFile, mode|syscall.S_IFREG
	default:
		return nil, syscall.EINVAL
	}
	a := d.newAttrs(ctx, mode)
	if mode&syscall.S_IFMT == syscall.S_IFCHR || mode&syscall.S_IFMT == syscall.S_IFBLK {
		a.rdev = dev
	}
	return d.createStored(ctx, name, k, nil, &a, out)
}

func (d *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := d.fsys.readOnly(); e != 0 {
		return nil, e
	}
	if e := checkName(name); e != 0 {
		return nil, e
	}
	if len(target) > 4095 {
		return nil, syscall.ENAMETOOLONG
	}
	a := d.newAttrs(ctx, syscall.S_IFLNK|0o777)
	ch, errno := d.createStored(ctx, name, kindSymlink, []byte(target), &a, out)
	if errno == 0 {
		c := ch.Operations().(*node)
		c.mu.Lock()
		c.target = target
		c.mu.Unlock()
	}
	return ch, errno
}

// createStored stores a small new object and returns its node.
func (d *node) createStored(ctx context.Context, name string, k kind, body []byte, a *attrs, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	cctx, cancel := d.fsys.ctx(ctx)
	defer cancel()
	o, err := d.fsys.putSmall(cctx, key, body, "", a, metaapi.Preconditions{IfNoneMatch: "*"})
	if errors.Is(err, metaapi.ErrPrecondition) {
		return nil, syscall.EEXIST
	}
	if err != nil {
		return nil, d.fsys.logErr("create", key, err)
	}
	a.etag, a.meta, a.size = o.ETag, o.Meta, o.Size
	c := d.fsys.newNode(k, *a, false)
	ch := d.NewInode(ctx, c, fs.StableAttr{Mode: a.mode & syscall.S_IFMT})
	o.Inline = nil
	d.setEntry(name, entry{kind: k, obj: o})
	d.touchDir()
	c.fillEntry(out)
	return ch, 0
}

// Create makes a new file that exists only in this mount until its first
// close or fsync stores it: a writer that dies first leaves nothing behind.
func (d *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := d.fsys.readOnly(); e != 0 {
		return nil, nil, 0, e
	}
	if e := checkName(name); e != 0 {
		return nil, nil, 0, e
	}
	if _, errno := d.childKey(name); errno != 0 {
		return nil, nil, 0, errno
	}
	a := d.newAttrs(ctx, syscall.S_IFREG|mode&07777)
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		// Nothing can be written through this descriptor: the empty file
		// is stored now.
		ch, errno := d.createStored(ctx, name, kindFile, nil, &a, out)
		if errno != 0 {
			return nil, nil, 0, errno
		}
		return ch, &handle{n: ch.Operations().(*node), rd: newFileReader(d.fsys.cl, metaapi.Object{})}, 0, 0
	}
	c := d.fsys.newNode(kindFile, a, false)
	c.sess = newSession(c, metaapi.Object{}, true)
	ch := d.NewInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFREG})
	h := c.newHandle(flags)
	d.touchDir()
	c.fillEntry(out)
	return ch, h, 0, 0
}

func (d *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := d.fsys.readOnly(); e != 0 {
		return e
	}
	key, errno := d.childKey(name)
	if errno != 0 {
		return errno
	}
	if ch := d.GetChild(name); ch != nil {
		ch.Operations().(*node).markGone()
	}
	cctx, cancel := d.fsys.ctx(ctx)
	defer cancel()
	if err := d.fsys.cl.Delete(cctx, d.fsys.bucket, key); err != nil {
		return d.fsys.logErr("unlink", key, err)
	}
	d.dropEntry(name)
	d.touchDir()
	return 0
}

// touchDir sets a directory's mtime and ctime to now after a change of its
// entries. The times live in this mount only: storing them would rewrite
// the marker on every create and delete.
func (d *node) touchDir() {
	now := time.Now()
	d.mu.Lock()
	d.a.mtime, d.a.ctime = now, now
	d.agen++
	d.mu.Unlock()
}

// markGone records that the node's name no longer refers to it.
func (n *node) markGone() {
	n.mu.Lock()
	n.gone = true
	n.mu.Unlock()
}

func (d *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := d.fsys.readOnly(); e != 0 {
		return e
	}
	key, errno := d.childKey(name)
	if errno != 0 {
		return errno
	}
	key += "/"
	if ch := d.GetChild(name); ch != nil {
		for _, gc := range ch.Children() {
			if gc.Operations().(*node).local() {
				return syscall.ENOTEMPTY
			}
		}
	}
	cctx, cancel := d.fsys.ctx(ctx)
	defer cancel()
	res, err := d.fsys.meta.List(cctx, metaapi.ListRequest{Bucket: d.fsys.bucket, Prefix: key, Max: 2})
	if err != nil {
		return d.fsys.logErr("rmdir", key, err)
	}
	if len(res.Objects) == 0 {
		return syscall.ENOENT
	}
	for _, o := range res.Objects {
		if o.Key != key {
			return syscall.ENOTEMPTY
		}
	}
	if err := d.fsys.cl.Delete(cctx, d.fsys.bucket, key); err != nil {
		return d.fsys.logErr("rmdir", key, err)
	}
	d.dropEntry(name)
	d.touchDir()
	return 0
}

// renameNoReplace is renameat2's RENAME_NOREPLACE.
const renameNoReplace = 0x1

// Rename moves a file or a whole directory in one metadata transaction; no
// data is copied. A file being written is stored first, so that what moves
// is what was written.
func (d *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := d.fsys.readOnly(); e != 0 {
		return e
	}
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	if e := checkName(newName); e != 0 {
		return e
	}
	np := newParent.(*node)
	from, errno := d.childKey(name)
	if errno != 0 {
		return errno
	}
	to, errno := np.childKey(newName)
	if errno != 0 {
		return errno
	}
	srcKind, ok, errno := d.kindOf(ctx, name)
	if errno != 0 {
		return errno
	}
	if !ok {
		return syscall.ENOENT
	}
	dstKind, dstExists, errno := np.kindOf(ctx, newName)
	if errno != 0 {
		return errno
	}
	noReplace := flags&renameNoReplace != 0
	if dstExists && noReplace {
		return syscall.EEXIST
	}
	req := metaapi.RenameRequest{Bucket: d.fsys.bucket, From: from, To: to, NoReplace: noReplace}
	if srcKind == kindDir {
		if dstExists && dstKind != kindDir {
			return syscall.ENOTDIR
		}
		req.Dir, req.From, req.To = true, from+"/", to+"/"
	} else {
		if dstExists && dstKind == kindDir {
			return syscall.EISDIR
		}
		if ch := d.GetChild(name); ch != nil {
			if errno := ch.Operations().(*node).store(ctx); errno != 0 {
				return errno
			}
		}
	}
	cctx, cancel := d.fsys.ctx(ctx)
	defer cancel()
	d.fsys.renaming.Add(1)
	defer func() {
		d.fsys.renamed.Store(time.Now().UnixNano())
		d.fsys.renaming.Add(-1)
	}()
	err := d.fsys.meta.Rename(cctx, req)
	switch {
	case errors.Is(err, metaapi.ErrPrecondition) && (noReplace || !req.Dir):
		return syscall.EEXIST
	case errors.Is(err, metaapi.ErrPrecondition):
		return syscall.ENOTEMPTY
	case errors.Is(err, metaapi.ErrInvalidArgument) && req.Dir:
		// Too many keys to move in one transaction. EXDEV makes mv(1) and
		// friends fall back to copying, as between filesystems.
		d.fsys.log.Warn("mount: directory too large to rename atomically", "from", from, "to", to, "err", err)
		return syscall.EXDEV
	case err != nil:
		return d.fsys.logErr("rename", from, err)
	}
	if ch := np.GetChild(newName); ch != nil && ch != d.GetChild(name) {
		ch.Operations().(*node).markGone()
	}
	if e, ok := d.takeEntry(name); ok {
		np.setEntry(newName, e)
	} else {
		np.forget(newName)
	}
	d.touchDir()
	np.touchDir()
	if ch := d.GetChild(name); ch != nil {
		// rename(2) updates the ctime of what moved.
		c := ch.Operations().(*node)
		c.mu.Lock()
		c.a.ctime = time.Now()
		c.agen++
		c.mu.Unlock()
	}
	return 0
}

// kindOf says what name in d is, if it exists.
func (d *node) kindOf(ctx context.Context, name string) (kind, bool, syscall.Errno) {
	if ch := d.GetChild(name); ch != nil {
		c := ch.Operations().(*node)
		c.mu.Lock()
		gone := c.gone
		c.mu.Unlock()
		if !gone {
			return c.kind, true, 0
		}
	}
	e, found, known := d.cached(name)
	if !known {
		cctx, cancel := d.fsys.ctx(ctx)
		defer cancel()
		var err error
		if e, found, err = d.fetchEntry(cctx, name); err != nil {
			return 0, false, d.fsys.logErr("lookup", name, err)
		}
	}
	return e.kind, found, 0
}
