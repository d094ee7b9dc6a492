package meta

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"

	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/placement"
)

// rebalanceBatch is how many segments a rebalance pass reads at a time.
const rebalanceBatch = 512

// rebalanceJobs returns the moves that put a segment where placement wants
// it: each shard on a server outside the segment's ideal set goes to an
// ideal server that holds none of its shards. Shards already in place stay,
// so a ring change moves only what it must. ok is false when the segment
// is not rebalance's business now: a shard is on a server that is not up
// (repair's job, or the server may return), or a target is down.
func rebalanceJobs(rec segmentRecord, ring *placement.Ring, nodes map[string]metaapi.Node) (jobs []moveJob, ok bool) {
	for _, sh := range rec.Shards {
		if n, found := nodes[sh.Node]; !found || n.State != metaapi.NodeUp {
			return nil, false
		}
	}
	ideal, err := ring.Place(rec.ID, len(rec.Shards))
	if err != nil {
		return nil, false
	}
	var free []string
	for _, id := range ideal {
		if !slicesContainsNode(rec.Shards, id) {
			free = append(free, id)
		}
	}
	for i, sh := range rec.Shards {
		if slices.Contains(ideal, sh.Node) {
			continue
		}
		if len(free) == 0 {
			break
		}
		to := nodes[free[0]]
		free = free[1:]
		if to.State != metaapi.NodeUp {
			return nil, false
		}
		jobs = append(jobs, moveJob{idx: i, to: to})
	}
	return jobs, true
}

// forEachSegment calls fn with every segment record, in id order.
func (s *Server) forEachSegment(ctx context.Context, fn func(rec segmentRecord) error) error {
	after := ""
	for ctx.Err() == nil {
		ids, err := s.st.segmentIDs(after, rebalanceBatch)
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			rec, ok, err := s.st.segment(id)
			if err != nil {
				return err
			}
			if ok {
				if err := fn(rec); err != nil {
					return err
				}
			}
		}
		after = ids[len(ids)-1]
	}
	return ctx.Err()
}

// rebalancePlan computes what a rebalance would move now.
func (s *Server) rebalancePlan(ctx context.Context) (metaapi.RebalancePlan, error) {
	var plan metaapi.RebalancePlan
	ns, version, err := s.st.nodes()
	if err != nil {
		return plan, err
	}
	ring, err := dataRing(ns, version)
	if err != nil {
		return plan, err
	}
	nodes := make(map[string]metaapi.Node, len(ns))
	per := make(map[string]*metaapi.NodeRebalance, len(ns))
	for _, n := range ns {
		nodes[n.ID] = n
		per[n.ID] = &metaapi.NodeRebalance{ID: n.ID, Zone: n.Zone}
	}
	err = s.forEachSegment(ctx, func(rec segmentRecord) error {
		size := erasure.Layout{K: rec.K, M: rec.M, BlockSize: rec.BlockSize}.ShardSize(rec.Size)
		for _, sh := range rec.Shards {
			if nr := per[sh.Node]; nr != nil {
				nr.Shards++
			}
			plan.Shards++
		}
		jobs, _ := rebalanceJobs(rec, ring, nodes)
		for _, j := range jobs {
			from := rec.Shards[j.idx].Node
			per[from].Out++
			per[from].BytesOut += size
			per[j.to.ID].In++
			per[j.to.ID].BytesIn += size
			plan.Moves++
			plan.Bytes += size
			if len(plan.Sample) < 20 {
				plan.Sample = append(plan.Sample, metaapi.RebalanceMove{Shard: ShardID(rec.ID, j.idx), From: from, To: j.to.ID, Bytes: size})
			}
		}
		return nil
	})
	if err != nil {
		return plan, err
	}
	// A server's fair share is its weight's share of every shard; the fewest
	// moves that could reach those shares fill each server's shortfall.
	var total float64
	weight := map[string]float64{}
	for _, n := range ns {
		if n.State != metaapi.NodeUp && n.State != metaapi.NodeDown {
			continue
		}
		c, _ := n.Capacity()
		weight[n.ID] = max(float64(c)/(1<<40), 1e-3)
		total += weight[n.ID]
	}
	for _, n := range ns {
		nr := per[n.ID]
		if total > 0 {
			nr.Ideal = int64(math.Round(float64(plan.Shards) * weight[n.ID] / total))
		}
		if nr.Ideal > nr.Shards {
			plan.Ideal += nr.Ideal - nr.Shards
		}
		plan.Nodes = append(plan.Nodes, *nr)
	}
	return plan, nil
}

// rebalanceRun makes one pass over every segment while a rebalance is
// running, moving shards to where placement wants them: copy, verify,
// switch the location, and leave the old copy to garbage collection. A pass
// that finds nothing left to move ends the rebalance.
func (s *Server) rebalanceRun(ctx context.Context) {
	st, err := s.st.rebalanceState()
	if err != nil || !st.Running {
		return
	}
	ns, version, err := s.st.nodes()
	if err != nil {
		return
	}
	ring, err := dataRing(ns, version)
	if err != nil {
		s.log.Error("rebalance: ring", "err", err)
		return
	}
	nodes := make(map[string]metaapi.Node, len(ns))
	for _, n := range ns {
		nodes[n.ID] = n
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := s.repair()
	work := make(chan segmentRecord)
	var mu sync.Mutex
	var left, failed int64
	var wg sync.WaitGroup
	for range s.cfg.RepairWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range work {
				jobs, ok := rebalanceJobs(rec, ring, nodes)
				if !ok {
					// A shard is on a server that is not up: wait for it,
					// or for repair.
					mu.Lock()
					left++
					mu.Unlock()
					continue
				}
				if !r.hold(rec.ID) {
					mu.Lock()
					left += int64(len(jobs))
					mu.Unlock()
					continue
				}
				readable := make([]bool, len(rec.Shards))
				for i := range readable {
					readable[i] = true
				}
				moved, werr := s.writeShards(ctx, rec, nodes, jobs, readable, &r.rebalanceRate)
				_, cerr := s.commitMoves(ctx, rec, nodes, moved, true, false)
				r.release(rec.ID, false, s.now())
				if werr != nil || cerr != nil {
					s.log.Warn("rebalance segment: will retry", "segment", rec.ID, "err", errors.Join(werr, cerr))
					mu.Lock()
					failed++
					left += int64(len(jobs) - len(moved))
					mu.Unlock()
				}
			}
		}()
	}
	n := 0
	err = s.forEachSegment(ctx, func(rec segmentRecord) error {
		if n++; n%rebalanceBatch == 0 {
			if st, err := s.st.rebalanceState(); err != nil || !st.Running || !s.ready.Load() {
				cancel()
				return context.Canceled
			}
		}
		// Only segments that need moves reach the workers.
		if jobs, ok := rebalanceJobs(rec, ring, nodes); ok && len(jobs) == 0 {
			return nil
		}
		select {
		case work <- rec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(work)
	wg.Wait()
	if err != nil {
		return
	}
	args := rebalanceArgs{Remaining: left, Failures: failed, Now: s.now().UTC()}
	args.Finish = left == 0 && failed == 0
	if _, err := s.propose(opRebalance, args); err != nil {
		s.log.Error("rebalance: record progress", "err", err)
		return
	}
	if args.Finish {
		s.log.Info("rebalance finished")
	}
}
