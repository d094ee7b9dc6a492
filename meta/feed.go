package meta

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// feedSize bounds how many changes the feed remembers; a reader further
// behind is told to reset its caches.
const feedSize = 100_000

// feedPoll is how long a change-feed request waits for something to happen.
const feedPoll = 10 * time.Second

// feed remembers the namespace changes of recently applied commands, by log
// index, so that mounts can invalidate exactly what changed. Every node
// applies every command, so every node has a feed and they agree by index; a
// node that started (or restored a snapshot) at index i knows nothing at or
// before i.
type feed struct {
	mu      sync.Mutex
	horizon uint64 // nothing at or before this index is remembered
	last    uint64 // the last applied index
	entries []feedEntry
	wake    chan struct{} // closed when something is applied
}

type feedEntry struct {
	index uint64
	change
}

func newFeed(at uint64) *feed {
	return &feed{horizon: at, last: at, wake: make(chan struct{})}
}

// reset forgets everything: the state was replaced wholesale at index at.
func (f *feed) reset(at uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.horizon, f.last, f.entries = at, at, nil
	close(f.wake)
	f.wake = make(chan struct{})
}

// applied records that the command at index was applied, with the change it
// made (nil if none).
func (f *feed) applied(index uint64, ch *change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index <= f.last {
		return
	}
	f.last = index
	if ch != nil {
		if len(f.entries) == feedSize {
			f.horizon = f.entries[0].index
			f.entries = slices.Delete(f.entries, 0, feedSize/10)
		}
		f.entries = append(f.entries, feedEntry{index, *ch})
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

// since returns bucket's changes after index since, waiting up to feedPoll
// for one to happen. since 0 only asks for the current position.
func (f *feed) since(ctx context.Context, bucket string, since uint64) metaapi.Changes {
	t := time.NewTimer(feedPoll)
	defer t.Stop()
	for {
		f.mu.Lock()
		res := metaapi.Changes{Next: max(f.last, since)}
		switch {
		case since == 0:
			f.mu.Unlock()
			return res
		case since < f.horizon:
			res.Reset, res.Next = true, f.last
			f.mu.Unlock()
			return res
		}
		i, _ := slices.BinarySearchFunc(f.entries, since+1, func(e feedEntry, idx uint64) int {
			return cmpUint(e.index, idx)
		})
		for _, e := range f.entries[i:] {
			if e.bucket == bucket {
				res.Keys = append(res.Keys, e.keys...)
				res.Prefixes = append(res.Prefixes, e.prefixes...)
			}
		}
		wake := f.wake
		f.mu.Unlock()
		if len(res.Keys) > 0 || len(res.Prefixes) > 0 {
			return res
		}
		since = res.Next
		select {
		case <-wake:
		case <-t.C:
			return res
		case <-ctx.Done():
			return res
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
