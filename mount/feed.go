package mount

import (
	"context"
	"strings"
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
		for _, p := range ch.Prefixes {
			f.invalidate(ctx, p, true)
		}
		for _, k := range ch.Keys {
			f.invalidate(ctx, k, false)
		}
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
func (f *fsys) invalidate(ctx context.Context, key string, whole bool) {
	rel, ok := strings.CutPrefix(key, f.prefix)
	if !ok {
		return
	}
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" {
		if whole {
			f.resetAll()
		} else {
			f.root.stale()
		}
		return
	}
	dir := f.root
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		if name == "" {
			return // no path reaches a key with an empty segment
		}
		ch := dir.GetChild(name)
		last := i == len(parts)-1
		if ch == nil {
			dir.forget(name)
			f.notifyEntry(dir, name)
			return
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
		dir.forget(name)
		if c.kind == kindDir {
			if whole {
				c.forgetAll()
			}
			c.stale()
			f.revalidateDir(ctx, dir, name, c)
			return
		}
		if !c.local() {
			c.stale()
			f.notifyContent(c)
		}
		f.notifyEntry(dir, name)
		return
	}
}

// revalidateDir asks the store whether directory c, named name in dir, is
// still a directory: if so the kernel drops only its attributes, else its
// entry.
func (f *fsys) revalidateDir(ctx context.Context, dir *node, name string, c *node) {
	cctx, cancel := f.ctx(ctx)
	defer cancel()
	e, found, err := dir.fetchEntry(cctx, name)
	if err == nil && found && e.kind == kindDir {
		dir.learn(name, e)
		c.refresh(attrsOf(e.obj, kindDir, f.def), e.marker)
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
