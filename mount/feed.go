package mount

import (
	"context"
	"maps"
	"strings"
	"sync"
	"syscall"
	"time"
)

// watch follows the metadata service's change feed for the bucket and
// invalidates what each change touches, here and in the kernel. While the
// feed is unreachable, cached state is trusted only for the kernel TTL.
func (f *fsys) watch(ctx context.Context, since uint64) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// The feed answers within about ten seconds; more means trouble.
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ch, err := f.meta.Changes(cctx, f.bucket, since)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if f.feedOK.Swap(false) {
				f.log.Warn("mount: change feed unreachable; caching for the kernel TTL only", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if ch.Reset {
			f.log.Info("mount: change feed reset; dropping caches")
			f.resetAll()
		}
		f.settleRenames(ctx)
		var echoes []echo
		for _, p := range ch.Prefixes {
			echoes = f.invalidate(ctx, p, true, echoes)
		}
		for _, k := range ch.Keys {
			echoes = f.invalidate(ctx, k, false, echoes)
		}
		f.verifyEchoes(ctx, echoes)
		since = ch.Next
		if !f.feedOK.Swap(true) {
			f.log.Info("mount: change feed back")
		}
		if len(ch.Keys)+len(ch.Prefixes) > 0 {
			// Let a burst of changes gather into one answer: a poll per
			// change would cost the metadata service as much as the
			// changes themselves.
			select {
			case <-ctx.Done():
				return
			case <-time.After(feedPace):
			}
		}
	}
}

// renameSettle is how long after a rename of its own the mount waits before
// applying the change feed, so that go-fuse has moved the node.
const renameSettle = 50 * time.Millisecond

// settleRenames waits until no rename of this mount is in progress or just
// finished (for at most the call timeout).
func (f *fsys) settleRenames(ctx context.Context) {
	deadline := time.Now().Add(f.opts.Timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		wait := renameSettle - time.Since(time.Unix(0, f.renamed.Load()))
		if f.renaming.Load() > 0 {
			wait = renameSettle
		}
		if wait <= 0 {
			return
		}
		time.Sleep(wait)
	}
}

// feedPace is the least time between two answers of the change feed that
// carry changes; it adds at most this much to how soon a change is seen.
const feedPace = 50 * time.Millisecond

// invalidate drops what this mount and the kernel cache about one changed
// key (or, with whole, everything under a changed prefix). It walks the
// nodes of the key's path: where the walk leaves the known tree, the kernel
// may hold only a negative entry, which is dropped; the last node gets its
// entry and attributes (and a file its cached pages) dropped.
//
// A directory's entry is dropped only once the store confirms it is gone:
// the kernel detaches a dropped directory from the processes working in it,
// whose getcwd then fails, so a directory that is still there (changed
// attributes, this mount's own mkdir or rename coming back) only has its
// attributes refreshed.
//
// Notifications are sent without holding any lock: the kernel may wait for
// a filesystem call on the same directory to finish first.
//
// A file this mount stored itself is not invalidated here but returned in
// echoes, to be checked (see verifyEchoes).
func (f *fsys) invalidate(ctx context.Context, key string, whole bool, echoes []echo) []echo {
	rel, ok := strings.CutPrefix(key, f.prefix)
	if !ok {
		return echoes
	}
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" {
		if whole {
			f.resetAll()
		} else {
			f.root.stale()
		}
		return echoes
	}
	dir := f.root
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		if name == "" {
			return echoes // no path reaches a key with an empty segment
		}
		ch := dir.GetChild(name)
		last := i == len(parts)-1
		if ch == nil {
			dir.forget(name)
			f.notifyEntry(dir, name)
			return echoes
		}
		c := ch.Operations().(*node)
		if !last && c.kind == kindDir {
			c.mu.Lock()
			implicit := !c.marker
			c.mu.Unlock()
			if implicit {
				// A directory made only of the keys below it may have
				// appeared or vanished with this change.
				dir.forget(name)
				c.stale()
			}
			dir = c
			continue
		}
		if c.kind == kindDir {
			dir.forget(name)
			if whole {
				c.forgetAll()
			}
			c.stale()
			f.revalidateDir(ctx, dir, name, c)
			return echoes
		}
		if c.local() {
			return echoes // being written here: see verifyEchoes
		}
		if !whole {
			return append(echoes, echo{dir: dir, name: name, n: c})
		}
		f.invalidateFile(dir, name, c)
		return echoes
	}
	return echoes
}

// revalidateDir asks the store whether directory c, named name in dir, is
// still a directory: if so the kernel drops only its attributes, else its
// entry.
func (f *fsys) revalidateDir(ctx context.Context, dir *node, name string, c *node) {
	cctx, cancel := f.ctx(ctx)
	defer cancel()
	gen, seq := c.gen(), dir.seqNow()
	e, found, err := dir.fetchEntry(cctx, name)
	if err == nil && found && e.kind == kindDir {
		dir.learn(seq, name, e, true)
		c.refresh(gen, attrsOf(e.obj, kindDir, f.def), e.marker)
		f.notifyContent(c)
		return
	}
	f.notifyEntry(dir, name)
}

// resetAll drops every cache: the feed lost track of what changed.
// Directories keep their kernel entries (see invalidate); the kernel
// revalidates them within its TTL.
func (f *fsys) resetAll() {
	f.epoch.Add(1)
	var walk func(d *node)
	walk = func(d *node) {
		for name, ch := range d.Children() {
			c := ch.Operations().(*node)
			if c.kind == kindDir {
				walk(c)
				f.notifyContent(c)
				continue
			}
			if !c.local() {
				f.notifyContent(c)
			}
			f.notifyEntry(d, name)
		}
	}
	walk(f.root)
}

func (f *fsys) notifyEntry(dir *node, name string) {
	if errno := dir.NotifyEntry(name); errno != 0 && errno != notFound {
		f.log.Debug("mount: invalidate entry", "name", name, "errno", errno)
	}
}

func (f *fsys) notifyContent(n *node) {
	if errno := n.NotifyContent(0, 0); errno != 0 && errno != notFound {
		f.log.Debug("mount: invalidate content", "errno", errno)
	}
}

// notFound is what the kernel answers for a notification about something it
// does not cache.
const notFound = syscall.ENOENT

// A mount sees its own changes come back through the feed, and a change
// may leave a file as this mount already knows it. Dropping the kernel's
// entry then would make the kernel forget the inode (the next lookup gets a
// new inode number) and cost a lookup on the next stat. So a changed file
// this mount knows is looked up first, and invalidated only if the store
// holds something else (ETag, size or metadata) than the node does. A file
// being written here is left alone: its own version wins at close.

// echo is a change to a file this mount knows, awaiting the check.
type echo struct {
	dir  *node
	name string
	n    *node
}

// verifyEchoes checks a batch of echoes, a lookup each (a few at a time).
// A burst of changes in one directory is not worth a lookup per file: it is
// invalidated as is, and the directory is listed again once the burst is
// over (see forget).
func (f *fsys) verifyEchoes(ctx context.Context, echoes []echo) {
	byDir := make(map[*node][]echo)
	for _, e := range echoes {
		byDir[e.dir] = append(byDir[e.dir], e)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for dir, es := range byDir {
		for _, e := range es {
			if len(es) > maxEchoChecks {
				f.invalidateFile(e.dir, e.name, e.n)
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				key, errno := dir.childKey(e.name)
				if errno != 0 {
					return
				}
				seq := dir.seqNow()
				cctx, cancel := f.ctx(ctx)
				o, err := f.cl.Head(cctx, f.bucket, key)
				cancel()
				e.n.mu.Lock()
				same := err == nil && o.ETag == e.n.a.etag && o.Size == e.n.a.size && maps.Equal(o.Meta, e.n.a.meta)
				e.n.mu.Unlock()
				if !same {
					f.invalidateFile(e.dir, e.name, e.n)
					return
				}
				o.Segments, o.Inline = nil, nil
				dir.learn(seq, e.name, entry{kind: e.n.kind, obj: o}, true)
			}()
		}
	}
	wg.Wait()
}

// maxEchoChecks is the most changed files in one directory and one answer
// of the feed that are checked one by one.
const maxEchoChecks = 32

// invalidateFile drops what is cached about a changed file.
func (f *fsys) invalidateFile(dir *node, name string, n *node) {
	dir.forget(name)
	if n.local() {
		return
	}
	n.stale()
	f.notifyContent(n)
	f.notifyEntry(dir, name)
}
