package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/erasure"
	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/placement"
)

// DefaultRepairBandwidth is how many bytes per second repair and rebalance
// write unless Config.RepairBandwidth says otherwise. Each rebuilt byte
// costs k bytes read, decoded and checksummed on the leader, so this is
// what foreground traffic pays for: bench/RESULTS.md has the measurements
// (64 MiB/s cost two thirds of foreground throughput on 2 cores).
const DefaultRepairBandwidth = 32 << 20

// repairBackoff is how long a segment whose repair failed waits before the
// next attempt.
const repairBackoff = 5 * time.Second

func (c *Config) setRepairDefaults() {
	if c.DownOutInterval == 0 {
		c.DownOutInterval = 10 * time.Minute
	}
	if c.RepairBandwidth == 0 {
		c.RepairBandwidth = DefaultRepairBandwidth
	}
	if c.RepairWorkers <= 0 {
		c.RepairWorkers = 4
	}
	if c.RepairInterval == 0 {
		c.RepairInterval = 5 * time.Second
	}
}

// repairer is the leader's in-memory side of repair and rebalance: which
// segments workers hold, which failed recently, the bandwidth limit and the
// rate meters. Everything that must survive a leader change is in the store.
type repairer struct {
	once     sync.Once
	kick     chan struct{}
	limit    *tokenBucket
	mu       sync.Mutex
	inflight map[string]bool
	backoff  map[string]time.Time

	repairRate, rebalanceRate meter
	failures                  atomic.Int64
}

// repair returns the repairer, set up on first use.
func (s *Server) repair() *repairer {
	r := &s.rep
	r.once.Do(func() {
		r.kick = make(chan struct{}, 1)
		r.inflight = map[string]bool{}
		r.backoff = map[string]time.Time{}
		r.limit = newTokenBucket(s.cfg.RepairBandwidth)
	})
	return r
}

func (r *repairer) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// claim takes the most endangered queued segment nobody works on.
func (r *repairer) claim(st *store, now time.Time) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	segs, err := st.repairNext(1, func(seg string) bool {
		return r.inflight[seg] || now.Before(r.backoff[seg])
	})
	if err != nil || len(segs) == 0 {
		return "", false
	}
	r.inflight[segs[0]] = true
	return segs[0], true
}

// hold marks a segment as worked on, for rebalance; false if it already is.
func (r *repairer) hold(seg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight[seg] {
		return false
	}
	r.inflight[seg] = true
	return true
}

func (r *repairer) release(seg string, failed bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inflight, seg)
	if failed {
		r.backoff[seg] = now.Add(repairBackoff)
		r.failures.Add(1)
	} else {
		delete(r.backoff, seg)
	}
}

func (r *repairer) inFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inflight)
}

// detectOut moves chunk servers that have been down for DownOutInterval to
// out, so repair rebuilds their shards elsewhere, and draining servers that
// stopped heartbeating to down (detectDown looks only at up ones).
func (s *Server) detectOut(ctx context.Context) {
	ns, _, err := s.st.nodes()
	if err != nil {
		s.log.Error("list nodes", "err", err)
		return
	}
	now := s.now()
	for _, n := range ns {
		silent := now.Sub(s.live.lastSeen(n.ID))
		var to metaapi.NodeState
		switch {
		case n.State == metaapi.NodeDraining && silent > s.cfg.DownAfter:
			to = metaapi.NodeDown
		case n.State == metaapi.NodeDown && silent > s.cfg.DownAfter+s.cfg.DownOutInterval:
			to = metaapi.NodeOut
		default:
			continue
		}
		if _, err := s.propose(opSetNodeState, nodeStateArgs{ID: n.ID, State: to}); err != nil {
			s.log.Error("change node state", "node", n.ID, "state", to, "err", err)
			continue
		}
		s.log.Warn("chunk server "+string(to), "node", n.ID, "addr", n.Addr, "silentFor", silent.Round(time.Second))
	}
}

// assessment is what a segment needs: which shards to place anew, which can
// be read, and which servers to avoid.
type assessment struct {
	lost      []int    // shard indexes to write somewhere new
	readable  []bool   // shards a copy or a rebuild may read
	keep      []string // servers of the shards that stay
	exclude   []string // servers that must not get a shard now
	surviving int      // shards healthy and readable
}

func assess(rec segmentRecord, nodes map[string]metaapi.Node, bad map[int]map[string]bool) assessment {
	a := assessment{readable: make([]bool, len(rec.Shards))}
	for i, sh := range rec.Shards {
		n, ok := nodes[sh.Node]
		switch {
		case bad[i][sh.Node] && ok && n.State == metaapi.NodeUp && diskHealthy(n, sh.Disk):
			// A corrupt shard on a healthy server: rebuilt elsewhere or
			// rewritten in place, whichever placement prefers.
			a.lost = append(a.lost, i)
		case sh.Node == "" || !ok || n.State == metaapi.NodeOut || bad[i][sh.Node]:
			a.lost = append(a.lost, i)
			if sh.Node != "" {
				a.exclude = append(a.exclude, sh.Node)
			}
		case n.State == metaapi.NodeDraining || !diskHealthy(n, sh.Disk):
			// Still readable (a failed disk takes no writes but serves
			// reads while it can): copied off, rebuilt if that fails.
			a.lost = append(a.lost, i)
			a.readable[i] = true
			a.exclude = append(a.exclude, sh.Node)
			a.surviving++
		case n.State == metaapi.NodeDown:
			a.keep = append(a.keep, sh.Node)
		default:
			a.keep = append(a.keep, sh.Node)
			a.readable[i] = true
			a.surviving++
		}
	}
	for _, n := range nodes {
		if n.State != metaapi.NodeUp && !slices.Contains(a.exclude, n.ID) {
			a.exclude = append(a.exclude, n.ID)
		}
	}
	return a
}

// diskHealthy reports whether the node's disk holding a shard is healthy
// (or unknown: older records carry no disk).
func diskHealthy(n metaapi.Node, disk string) bool {
	if disk == "" {
		return true
	}
	for _, d := range n.Disks {
		if d.ID == disk {
			return d.Healthy
		}
	}
	return true
}

// dataRing is the placement ring repair and rebalance place onto: the
// servers that should hold data (up or briefly down; not out or draining),
// weighted by capacity as clients weigh them.
func dataRing(ns []metaapi.Node, version uint64) (*placement.Ring, error) {
	var all []placement.Node
	for _, n := range ns {
		if n.State != metaapi.NodeUp && n.State != metaapi.NodeDown {
			continue
		}
		capacity, _ := n.Capacity()
		w := float64(capacity) / (1 << 40)
		if w <= 0 {
			w = 1e-3
		}
		all = append(all, placement.Node{ID: n.ID, Zone: n.Zone, Weight: w})
	}
	return placement.NewRing(version, all)
}

// repairScan queues every segment with a shard on an out or draining server,
// on a failed disk, or reported bad.
func (s *Server) repairScan(ctx context.Context) {
	ns, _, err := s.st.nodes()
	if err != nil {
		s.log.Error("repair scan: list nodes", "err", err)
		return
	}
	nodes := make(map[string]metaapi.Node, len(ns))
	cands := map[string]bool{}
	for _, n := range ns {
		nodes[n.ID] = n
	}
	for _, n := range ns {
		sick := n.State == metaapi.NodeOut || n.State == metaapi.NodeDraining
		for _, d := range n.Disks {
			sick = sick || !d.Healthy
		}
		if !sick {
			continue
		}
		err := s.st.nodeSegments(n.ID, func(seg string) error {
			cands[seg] = true
			return ctx.Err()
		})
		if err != nil {
			s.log.Error("repair scan: list shards", "node", n.ID, "err", err)
			return
		}
	}
	bad, err := s.st.badShards()
	if err != nil {
		s.log.Error("repair scan: list bad shards", "err", err)
		return
	}
	var stale []metaapi.BadShard
	reported := map[string]bool{}
	for _, b := range bad {
		if nodes[b.Node].State == metaapi.NodeDown {
			continue // wait: it comes back, and is checked then, or goes out
		}
		_, ok, err := s.st.segment(b.Segment)
		switch {
		case err != nil:
			s.log.Error("repair scan: read segment", "segment", b.Segment, "err", err)
			return
		case ok:
			cands[b.Segment], reported[b.Segment] = true, true
		case s.now().Sub(b.Time) > s.cfg.OrphanGrace:
			stale = append(stale, b) // its segment was never committed, or is gone
		}
	}
	if len(stale) > 0 {
		if _, err := s.propose(opClearBad, stale); err != nil {
			s.log.Error("repair scan: clear stale reports", "err", err)
		}
	}
	var items []repairItem
	flush := func() bool {
		if len(items) == 0 {
			return true
		}
		if _, err := s.propose(opRepairEnqueue, items); err != nil {
			s.log.Error("repair scan: queue segments", "count", len(items), "err", err)
			return false
		}
		items = items[:0]
		s.repair().wake()
		return true
	}
	for seg := range cands {
		if ctx.Err() != nil {
			return
		}
		if q, err := s.st.repairQueued(seg); err != nil || q {
			continue
		}
		rec, ok, err := s.st.segment(seg)
		if err != nil || !ok {
			continue
		}
		b, err := s.st.badFor(seg)
		if err != nil {
			continue
		}
		a := assess(rec, nodes, b)
		if len(a.lost) == 0 && !reported[seg] {
			continue
		}
		items = append(items, repairItem{Segment: seg, Surviving: a.surviving})
		if len(items) == 500 && !flush() {
			return
		}
	}
	flush()
}

// repairRun works through the repair queue, most endangered first, with
// RepairWorkers segments at a time, until it is empty or this node stops
// leading.
func (s *Server) repairRun(ctx context.Context) {
	r := s.repair()
	var wg sync.WaitGroup
	for range s.cfg.RepairWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && s.ready.Load() {
				seg, ok := r.claim(s.st, s.now())
				if !ok {
					return
				}
				err := s.repairSegment(ctx, seg)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("repair segment: will retry", "segment", seg, "err", err)
				}
				r.release(seg, err != nil, s.now())
			}
		}()
	}
	wg.Wait()
}

// repairSegment rebuilds or moves the shards of one segment that are lost
// or on draining servers, onto servers placement chooses among those that
// hold none of the segment's shards, and commits their new places.
func (s *Server) repairSegment(ctx context.Context, id string) error {
	rec, ok, err := s.st.segment(id)
	if err != nil {
		return err
	}
	if !ok {
		_, err := s.propose(opMoveShards, moveArgs{Segment: id, Dequeue: true})
		return err
	}
	ns, version, err := s.st.nodes()
	if err != nil {
		return err
	}
	nodes := make(map[string]metaapi.Node, len(ns))
	for _, n := range ns {
		nodes[n.ID] = n
	}
	bad, err := s.st.badFor(id)
	if err != nil {
		return err
	}
	if err := s.checkReports(ctx, rec, nodes, bad); err != nil {
		return err
	}
	a := assess(rec, nodes, bad)
	if len(a.lost) == 0 {
		_, err := s.propose(opMoveShards, moveArgs{Segment: id, Dequeue: true})
		return err
	}
	ring, err := dataRing(ns, version)
	if err != nil {
		return fmt.Errorf("repair segment %s: %w", id, err)
	}
	exclude := a.exclude
	for _, n := range ns {
		if s.pendingAny(n.ID, id, len(rec.Shards)) {
			exclude = append(exclude, n.ID)
		}
	}
	targets, err := ring.Fill(id, len(rec.Shards), a.keep, exclude)
	if err != nil {
		return fmt.Errorf("repair segment %s: %w", id, err)
	}
	if len(targets) < len(a.lost) {
		return fmt.Errorf("repair segment %s: placement found %d servers for %d shards", id, len(targets), len(a.lost))
	}
	// A lost shard whose own server is among the targets goes back there
	// (an in-place rewrite); any other pairing would put two shards of the
	// segment on one server.
	jobs := make([]moveJob, len(a.lost))
	free := slices.Clone(targets[:len(a.lost)])
	for j, idx := range a.lost {
		if k := slices.Index(free, rec.Shards[idx].Node); k >= 0 && rec.Shards[idx].Node != "" {
			jobs[j] = moveJob{idx: idx, to: nodes[free[k]]}
			free = slices.Delete(free, k, k+1)
		}
	}
	for j, idx := range a.lost {
		if jobs[j].to.ID == "" {
			jobs[j] = moveJob{idx: idx, to: nodes[free[0]]}
			free = free[1:]
		}
	}
	moved, werr := s.writeShards(ctx, rec, nodes, jobs, a.readable, &s.repair().repairRate)
	res, err := s.commitMoves(ctx, rec, nodes, moved, false, werr == nil && len(moved) == len(jobs))
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if !res.Gone && len(moved) > 0 {
		s.log.Debug("segment repaired", "segment", id, "shards", len(moved))
	}
	return nil
}

// checkReports reads each reported shard that is still where the report
// says, on a server that is up, before repair acts on the report: a shard
// that reads back whole (every block's checksum verified by its server) was
// reported for a passing fault, and the report is dropped. A shard whose
// server cannot be reached is left alone for now (removed from bad): that is
// liveness's business.
func (s *Server) checkReports(ctx context.Context, rec segmentRecord, nodes map[string]metaapi.Node, bad map[int]map[string]bool) error {
	var fine []metaapi.BadShard
	for idx, byNode := range bad {
		for node := range byNode {
			n, ok := nodes[node]
			if idx >= len(rec.Shards) || rec.Shards[idx].Node != node || !ok {
				continue
			}
			if n.State != metaapi.NodeUp && n.State != metaapi.NodeDraining {
				delete(byNode, node)
				continue
			}
			err := s.readShard(ctx, n.Addr, ShardID(rec.ID, idx))
			switch {
			case err == nil:
				fine = append(fine, metaapi.BadShard{Segment: rec.ID, Index: idx, Node: node})
				delete(byNode, node)
			case errors.Is(err, chunkserver.ErrCorrupt) || errors.Is(err, chunkserver.ErrNotFound) || errors.Is(err, io.ErrUnexpectedEOF):
				// bad indeed
			default:
				s.log.Warn("repair: cannot tell whether a reported shard is bad", "shard", ShardID(rec.ID, idx), "node", node, "err", err)
				delete(byNode, node)
			}
		}
	}
	if len(fine) > 0 {
		if _, err := s.propose(opClearBad, fine); err != nil {
			return err
		}
	}
	return nil
}

// readShard reads a whole shard, which makes its server verify every block.
func (s *Server) readShard(ctx context.Context, addr, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rc, err := s.chunks.Get(ctx, addr, id, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// pendingAny reports whether any shard of the segment awaits deletion on node.
func (s *Server) pendingAny(node, seg string, shards int) bool {
	for i := range shards {
		if ok, err := s.st.pendingDeletion(node, ShardID(seg, i)); err != nil || ok {
			return true
		}
	}
	return false
}

// moveJob is one shard to write to a new server.
type moveJob struct {
	idx int
	to  metaapi.Node
}

// errUnreadable is what the rebuild opener returns for shards it may not read.
var errUnreadable = errors.New("shard not readable")

// writeShards writes each job's shard to its new server, durably: a copy of
// the old shard when that is readable, else rebuilt from k others. It
// returns the moves that succeeded, verified by the new server's size.
func (s *Server) writeShards(ctx context.Context, rec segmentRecord, nodes map[string]metaapi.Node, jobs []moveJob, readable []bool, m *meter) ([]shardMove, error) {
	readable = slices.Clone(readable)
	layout := erasure.Layout{K: rec.K, M: rec.M, BlockSize: rec.BlockSize}
	size := layout.ShardSize(rec.Size)
	limit := s.repair().limit
	var moved []shardMove
	var errs []error
	var rebuild []moveJob
	for _, j := range jobs {
		from := rec.Shards[j.idx]
		if !readable[j.idx] {
			rebuild = append(rebuild, j)
			continue
		}
		id := ShardID(rec.ID, j.idx)
		disk, err := s.copyShard(ctx, nodes[from.Node].Addr, j.to.Addr, id, size, limit)
		if err == nil {
			moved = append(moved, shardMove{Index: j.idx, From: from, To: metaapi.ShardLoc{Node: j.to.ID, Disk: disk}})
			m.add(s.now(), size)
			continue
		}
		s.log.Warn("copy shard failed; rebuilding it instead", "shard", id, "from", from.Node, "to", j.to.ID, "err", err)
		readable[j.idx] = false
		rebuild = append(rebuild, j)
	}
	if len(rebuild) > 0 {
		for _, j := range rebuild {
			readable[j.idx] = false
		}
		n := 0
		for _, ok := range readable {
			if ok {
				n++
			}
		}
		if n < rec.K {
			errs = append(errs, fmt.Errorf("rebuild segment %s: %d shards readable, need %d: %w", rec.ID, n, rec.K, erasure.ErrTooFewShards))
		} else {
			done, err := s.rebuildShards(ctx, rec, nodes, rebuild, readable, size, limit)
			if err != nil {
				errs = append(errs, err)
			}
			for _, mv := range done {
				m.add(s.now(), size)
				moved = append(moved, mv)
			}
		}
	}
	return moved, errors.Join(errs...)
}

// copyShard streams a shard from one server to another and checks the copy.
func (s *Server) copyShard(ctx context.Context, from, to, id string, size int64, limit *tokenBucket) (string, error) {
	rc, err := s.chunks.Get(ctx, from, id, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	disk, err := s.chunks.Put(ctx, to, id, size, &limitedReader{ctx: ctx, r: rc, limit: limit})
	if err != nil {
		return "", err
	}
	return disk, s.verifyShard(ctx, to, id, size)
}

func (s *Server) verifyShard(ctx context.Context, addr, id string, size int64) error {
	got, err := s.chunks.Head(ctx, addr, id)
	if err != nil {
		return fmt.Errorf("verify shard %s on %s: %w", id, addr, err)
	}
	if got != size {
		return fmt.Errorf("verify shard %s on %s: %d bytes, want %d", id, addr, got, size)
	}
	return nil
}

// rebuildShards reconstructs the jobs' shards from the readable ones and
// streams each to its new server.
func (s *Server) rebuildShards(ctx context.Context, rec segmentRecord, nodes map[string]metaapi.Node, jobs []moveJob, readable []bool, size int64, limit *tokenBucket) ([]shardMove, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	layout := erasure.Layout{K: rec.K, M: rec.M, BlockSize: rec.BlockSize}
	var sourcesBad []metaapi.BadShard
	open := func(ctx context.Context, idx int, off, n int64) (io.ReadCloser, error) {
		if !readable[idx] {
			return nil, errUnreadable
		}
		return s.chunks.Get(ctx, nodes[rec.Shards[idx].Node].Addr, ShardID(rec.ID, idx), off, n)
	}
	onBad := func(idx int, err error) {
		// Only what the shard's own server says is wrong with it is news:
		// a server that cannot be reached is liveness's business.
		if !errors.Is(err, chunkserver.ErrCorrupt) && !errors.Is(err, chunkserver.ErrNotFound) || ctx.Err() != nil {
			return
		}
		sourcesBad = append(sourcesBad, metaapi.BadShard{Segment: rec.ID, Index: idx, Node: rec.Shards[idx].Node, Reason: "repair read: " + err.Error(), Time: s.now()})
	}
	targets := make(map[int]io.Writer, len(jobs))
	pipes := make([]*io.PipeWriter, len(jobs))
	disks := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for j, job := range jobs {
		pr, pw := io.Pipe()
		pipes[j] = pw
		targets[job.idx] = &limitedWriter{ctx: ctx, w: pw, limit: limit}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ShardID(rec.ID, job.idx)
			disk, err := s.chunks.Put(ctx, job.to.Addr, id, size, pr)
			pr.CloseWithError(fmt.Errorf("shard %s to %s: %w", id, job.to.ID, errOrClosed(err)))
			if err == nil {
				err = s.verifyShard(ctx, job.to.Addr, id, size)
			}
			disks[j], errs[j] = disk, err
		}()
	}
	err := erasure.Rebuild(ctx, layout, rec.Size, open, targets, erasure.ReaderOptions{OnBadShard: onBad, ShardTimeout: 10 * time.Second})
	for _, pw := range pipes {
		if err != nil {
			pw.CloseWithError(err)
		} else {
			pw.Close()
		}
	}
	wg.Wait()
	if len(sourcesBad) > 0 {
		if _, perr := s.propose(opReportBad, sourcesBad); perr != nil {
			s.log.Warn("repair: report bad source shards", "err", perr)
		}
	}
	if err != nil {
		s.deleteCopies(rec.ID, jobs, nil)
		return nil, fmt.Errorf("rebuild segment %s: %w", rec.ID, err)
	}
	var moved []shardMove
	var failed []error
	for j, job := range jobs {
		if errs[j] != nil {
			failed = append(failed, errs[j])
			continue
		}
		moved = append(moved, shardMove{Index: job.idx, From: rec.Shards[job.idx], To: metaapi.ShardLoc{Node: job.to.ID, Disk: disks[j]}})
	}
	return moved, errors.Join(failed...)
}

func errOrClosed(err error) error {
	if err == nil {
		return io.ErrClosedPipe
	}
	return err
}

// commitMoves switches the segment to the written shards and deletes the
// copies the commit did not take (another mover was faster, or the segment
// was deleted meanwhile).
func (s *Server) commitMoves(ctx context.Context, rec segmentRecord, nodes map[string]metaapi.Node, moved []shardMove, rebalance, dequeue bool) (moveResult, error) {
	if len(moved) == 0 && !dequeue {
		return moveResult{}, nil
	}
	layout := erasure.Layout{K: rec.K, M: rec.M, BlockSize: rec.BlockSize}
	res, err := proposeFor[moveResult](s, opMoveShards, moveArgs{
		Segment: rec.ID, Moves: moved, ShardSize: layout.ShardSize(rec.Size), Rebalance: rebalance, Dequeue: dequeue,
	})
	if err != nil {
		// Whether it committed is unknown: leave the copies to the orphan
		// sweep, which deletes them only if nothing references them.
		return res, fmt.Errorf("commit moves of segment %s: %w", rec.ID, err)
	}
	var drop []moveJob
	for i, mv := range moved {
		if i >= len(res.Applied) || !res.Applied[i] {
			drop = append(drop, moveJob{idx: mv.Index, to: nodes[mv.To.Node]})
		}
	}
	s.deleteCopies(rec.ID, drop, nil)
	return res, nil
}

// deleteCopies deletes new shard copies that were not committed.
func (s *Server) deleteCopies(seg string, jobs []moveJob, _ error) {
	for _, j := range jobs {
		if j.to.Addr == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.chunks.Delete(ctx, j.to.Addr, ShardID(seg, j.idx)); err != nil && !errors.Is(err, chunkserver.ErrNotFound) {
			s.log.Warn("delete uncommitted shard copy", "shard", ShardID(seg, j.idx), "node", j.to.ID, "err", err)
		}
		cancel()
	}
}

// repairStatus is the repair part of the admin status.
func (s *Server) repairStatus() (metaapi.RepairStatus, error) {
	c, err := s.st.repairCounters()
	if err != nil {
		return metaapi.RepairStatus{}, err
	}
	counts, err := s.st.queueLength()
	if err != nil {
		return metaapi.RepairStatus{}, err
	}
	r := s.repair()
	st := metaapi.RepairStatus{
		Queued: counts, InFlight: r.inFlight(), Done: c.Segments, Shards: c.Shards, Bytes: c.Bytes,
		Rate: r.repairRate.rate(s.now()), Failures: r.failures.Load(), Bandwidth: max(s.cfg.RepairBandwidth, 0),
	}
	if st.Rate > 0 && st.Done > 0 && st.Queued > 0 {
		perSeg := float64(c.Bytes) / float64(c.Segments)
		st.ETA = time.Duration(float64(st.Queued) * perSeg / st.Rate * float64(time.Second)).Round(time.Second)
	}
	return st, nil
}

// tokenBucket limits bytes per second. Callers take what they send and
// sleep off any debt, so a burst is at most one second's worth plus one
// write.
type tokenBucket struct {
	rate   float64 // bytes per second; 0: unlimited
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(perSecond int64) *tokenBucket {
	b := &tokenBucket{last: time.Now()}
	if perSecond > 0 {
		b.rate, b.tokens = float64(perSecond), float64(perSecond)
	}
	return b
}

func (b *tokenBucket) wait(ctx context.Context, n int) error {
	if b == nil || b.rate == 0 {
		return ctx.Err()
	}
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	debt := -b.tokens
	b.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(debt / b.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type limitedWriter struct {
	ctx   context.Context
	w     io.Writer
	limit *tokenBucket
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if err := l.limit.wait(l.ctx, len(p)); err != nil {
		return 0, err
	}
	return l.w.Write(p)
}

type limitedReader struct {
	ctx   context.Context
	r     io.Reader
	limit *tokenBucket
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.limit.wait(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// meter measures a byte rate over the last minute.
type meter struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	t time.Time
	n int64
}

const meterWindow = time.Minute

func (m *meter) add(now time.Time, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, sample{now, n})
	m.trim(now)
}

func (m *meter) trim(now time.Time) {
	i := 0
	for i < len(m.samples) && now.Sub(m.samples[i].t) > meterWindow {
		i++
	}
	m.samples = m.samples[i:]
}

// rate is bytes per second over the span of the window that saw traffic.
func (m *meter) rate(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trim(now)
	if len(m.samples) == 0 {
		return 0
	}
	var total int64
	for _, s := range m.samples {
		total += s.n
	}
	span := now.Sub(m.samples[0].t)
	if span < time.Second {
		span = time.Second
	}
	return float64(total) / span.Seconds()
}
