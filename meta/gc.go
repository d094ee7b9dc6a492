package meta

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/meta/metaapi"
)

// collect deletes queued shards from the chunk servers that hold them. Shards
// on servers that are down stay queued until the server returns.
func (s *Server) collect(ctx context.Context) {
	for ctx.Err() == nil {
		refs, err := s.st.gcBatch(1000, s.now())
		if err != nil {
			s.log.Error("gc: read queue", "err", err)
			return
		}
		if len(refs) == 0 {
			return
		}
		done := s.deleteShards(ctx, refs)
		if len(done) > 0 {
			args := make([]gcDoneArgs, len(done))
			for i, e := range done {
				args[i] = gcDoneArgs{Node: e.Node, Shard: e.Shard, Key: e.key}
			}
			if _, err := s.propose(opGCDone, args); err != nil {
				s.log.Error("gc: dequeue", "err", err)
				return
			}
		}
		if len(done) < len(refs) {
			return // the rest waits for its servers
		}
	}
}

// deleteShards deletes shards in parallel per node and returns those gone.
func (s *Server) deleteShards(ctx context.Context, refs []gcEntry) []gcEntry {
	ns, _, err := s.st.nodes()
	if err != nil {
		s.log.Error("gc: list nodes", "err", err)
		return nil
	}
	nodes := make(map[string]metaapi.Node, len(ns))
	for _, n := range ns {
		nodes[n.ID] = n
	}
	byNode := make(map[string][]gcEntry)
	var done []gcEntry
	for _, r := range refs {
		n, ok := nodes[r.Node]
		switch {
		case !ok:
			done = append(done, r) // the node is gone for good, and its shards with it
		case n.State == metaapi.NodeUp || n.State == metaapi.NodeDraining:
			byNode[r.Node] = append(byNode[r.Node], r)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, rs := range byNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := nodes[id].Addr
			for _, r := range rs {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := s.chunks.Delete(dctx, addr, r.Shard)
				cancel()
				if err != nil && !errors.Is(err, chunkserver.ErrNotFound) {
					s.log.Warn("gc: delete shard", "node", id, "shard", r.Shard, "err", err)
					return
				}
				mu.Lock()
				done = append(done, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return done
}

// sweepOrphans deletes shard files that no segment references and that are
// older than the grace period: leftovers of writes that crashed before their
// commit, or whose client died before it could clean up.
func (s *Server) sweepOrphans(ctx context.Context) {
	ns, _, err := s.st.nodes()
	if err != nil {
		s.log.Error("orphan sweep: list nodes", "err", err)
		return
	}
	cutoff := s.now().Add(-s.cfg.OrphanGrace).Unix()
	for _, n := range ns {
		if n.State != metaapi.NodeUp && n.State != metaapi.NodeDraining {
			continue
		}
		var orphans []string
		err := s.chunks.Inventory(ctx, n.Addr, func(si chunkserver.ShardInfo) error {
			if si.MTime > cutoff {
				return nil
			}
			ok, err := s.st.referenced(n.ID, si.ID)
			if err == nil && !ok {
				orphans = append(orphans, si.ID)
			}
			return err
		})
		if err != nil {
			s.log.Warn("orphan sweep: inventory", "node", n.ID, "err", err)
			continue
		}
		for _, id := range orphans {
			// Re-check: a commit may have landed since the inventory was read.
			if ok, err := s.st.referenced(n.ID, id); err != nil || ok {
				continue
			}
			if err := s.chunks.Delete(ctx, n.Addr, id); err != nil {
				s.log.Warn("orphan sweep: delete", "node", n.ID, "shard", id, "err", err)
				continue
			}
			s.log.Info("orphan shard deleted", "node", n.ID, "shard", id)
		}
	}
}
