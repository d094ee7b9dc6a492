package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/talusfs/talus/meta/metaapi"
)

// applyTimeout bounds how long a proposal may wait to enter the log; once in,
// it waits for its commit, which fails by itself if leadership is lost.
const applyTimeout = 10 * time.Second

// propose runs one change through the Raft log and returns what applying it
// returned. The proposer's clock goes into the command, so every replica
// applies the same times.
func (s *Server) propose(o op, args any) (any, error) {
	data, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", o, err)
	}
	now := s.now().UTC()
	buf, err := json.Marshal(command{Op: o, Now: now, Due: now.Add(s.cfg.GCDelay), Args: data})
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", o, err)
	}
	f := s.raft.r.Apply(buf, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrRaftShutdown) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, fmt.Errorf("%w: %s: %v", metaapi.ErrNoQuorum, o, err)
		}
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	res, _ := f.Response().(applyResult)
	return res.v, res.err
}

// proposeFor is propose for commands that return a T.
func proposeFor[T any](s *Server, o op, args any) (T, error) {
	v, err := s.propose(o, args)
	t, _ := v.(T)
	return t, err
}

// verify makes sure this node still leads before it answers a read from its
// own state, so that no read returns data older than an acknowledged write
// (a deposed leader that has not noticed yet would). It answers the request
// itself and returns false when it cannot.
func (s *Server) verify(w http.ResponseWriter) bool {
	if err := s.raft.r.VerifyLeader().Error(); err != nil {
		reply(w, nil, fmt.Errorf("%w: %v", metaapi.ErrNoQuorum, err))
		return false
	}
	return true
}

// forwardedHeader marks a request a follower passed on, so that it is never
// passed on twice (two nodes disagreeing about the leader would loop it).
const forwardedHeader = "X-Talus-Forwarded"

// leaderWait bounds how long a request waits for a new leader to be ready.
const leaderWait = 2 * time.Second

// forward sends requests that only the leader may serve to the leader.
func (s *Server) forward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if local[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		deadline := time.Now().Add(leaderWait)
		for {
			if s.ready.Load() {
				next.ServeHTTP(w, r)
				return
			}
			addr := s.leaderHTTP()
			if addr != "" && r.Header.Get(forwardedHeader) == "" {
				s.proxyTo(w, r, addr)
				return
			}
			if time.Now().After(deadline) || r.Context().Err() != nil {
				reply(w, nil, fmt.Errorf("%w: metadata node %s knows no leader", metaapi.ErrNoQuorum, s.cfg.ID))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func (s *Server) proxyTo(w http.ResponseWriter, r *http.Request, addr string) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: addr})
			pr.Out.Header.Set(forwardedHeader, s.cfg.ID)
		},
		Transport:     s.proxy.Transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			reply(w, nil, fmt.Errorf("%w: forward to leader at %s: %v", metaapi.ErrNoQuorum, addr, err))
		},
	}
	p.ServeHTTP(w, r)
}

// leaderHTTP is the API address of the current leader, if known.
func (s *Server) leaderHTTP() string {
	_, id := s.raft.r.LeaderWithID()
	if id == "" || id == raft.ServerID(s.cfg.ID) {
		return ""
	}
	ms, err := s.st.metaMembers()
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.ID == string(id) {
			return m.HTTPAddr
		}
	}
	return ""
}

// watchLeadership tracks whether this node leads. On gaining leadership it
// waits until it has applied everything committed before (a barrier), and
// records its own addresses, before it serves anything.
func (s *Server) watchLeadership() {
	// term is closed when the leadership this node was preparing for ends.
	term := make(chan struct{})
	defer func() { close(term) }()
	for {
		select {
		case <-s.stop:
			return
		case leader := <-s.raft.r.LeaderCh():
			close(term)
			term = make(chan struct{})
			s.ready.Store(false)
			if !leader {
				s.log.Info("metadata node is now a follower", "id", s.cfg.ID)
				continue
			}
			s.wg.Add(1)
			go func(term <-chan struct{}) {
				defer s.wg.Done()
				s.becomeLeader(term)
			}(term)
		}
	}
}

func (s *Server) becomeLeader(term <-chan struct{}) {
	for {
		select {
		case <-term:
			return
		default:
		}
		if err := s.raft.r.Barrier(applyTimeout).Error(); err != nil {
			s.log.Warn("new leader: barrier", "err", err)
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
				return
			}
			continue
		}
		self := metaapi.MetaMember{ID: s.cfg.ID, RaftAddr: string(s.raft.trans.LocalAddr()), HTTPAddr: s.cfg.HTTPAddr, GossipAddr: s.cfg.GossipAddr}
		if _, err := s.propose(opMetaMember, self); err != nil {
			s.log.Warn("new leader: record own address", "err", err)
			continue
		}
		s.live.reset(s.now())
		s.ready.Store(true)
		s.log.Info("metadata node is the leader", "id", s.cfg.ID, "term", s.raft.r.Stats()["term"])
		return
	}
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.raft.r.Leader() == "" {
		reply(w, nil, fmt.Errorf("%w: metadata node %s knows no leader", metaapi.ErrNoQuorum, s.cfg.ID))
		return
	}
	io.WriteString(w, "ok\n")
}

// status reports the group as this node sees it; lag is known on the leader.
func (s *Server) status() metaapi.MetaStatus {
	r := s.raft.r
	stats := r.Stats()
	num := func(k string) uint64 {
		var v uint64
		fmt.Sscan(stats[k], &v)
		return v
	}
	addr, id := r.LeaderWithID()
	st := metaapi.MetaStatus{
		ID:          s.cfg.ID,
		State:       r.State().String(),
		Leader:      string(id),
		Term:        num("term"),
		CommitIndex: num("commit_index"),
		AppliedIdx:  r.AppliedIndex(),
		LastLog:     r.LastIndex(),
	}
	ms, _ := s.st.metaMembers()
	httpOf := map[string]string{}
	for _, m := range ms {
		httpOf[m.ID] = m.HTTPAddr
	}
	st.LeaderAddr = httpOf[string(id)]
	_ = addr
	cf := r.GetConfiguration()
	if cf.Error() != nil {
		return st
	}
	leading := r.State() == raft.Leader
	for _, srv := range cf.Configuration().Servers {
		info := metaapi.MetaServerInfo{
			ID: string(srv.ID), RaftAddr: string(srv.Address), HTTPAddr: httpOf[string(srv.ID)],
			Suffrage: srv.Suffrage.String(),
		}
		if leading {
			info.Match = s.matchIndex(srv.ID)
			if st.CommitIndex > info.Match {
				info.Lag = st.CommitIndex - info.Match
			}
		}
		st.Servers = append(st.Servers, info)
	}
	return st
}

// matchIndex asks a peer's own status for its last log index; Raft does not
// export the leader's replication state. The leader itself answers with its
// last index.
func (s *Server) matchIndex(id raft.ServerID) uint64 {
	if id == raft.ServerID(s.cfg.ID) {
		return s.raft.r.LastIndex()
	}
	ms, err := s.st.metaMembers()
	if err != nil {
		return 0
	}
	for _, m := range ms {
		if m.ID != string(id) || m.HTTPAddr == "" {
			continue
		}
		mc, err := metaapi.NewClient([]string{m.HTTPAddr}, s.cfg.Secret, s.proxy)
		if err != nil {
			return 0
		}
		mc.RetryFor = time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := mc.MetaStatus(ctx)
		if err != nil {
			return 0
		}
		return st.LastLog
	}
	return 0
}

// addMember makes a metadata node a voter and records its addresses.
func (s *Server) addMember(m metaapi.MetaMember) error {
	if m.ID == "" || m.RaftAddr == "" || m.HTTPAddr == "" {
		return fmt.Errorf("%w: a metadata member needs an id, a raft address and an API address", metaapi.ErrInvalidArgument)
	}
	if _, err := s.propose(opMetaMember, m); err != nil {
		return err
	}
	if err := s.raft.r.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, applyTimeout).Error(); err != nil {
		return fmt.Errorf("%w: add voter %s: %v", metaapi.ErrNoQuorum, m.ID, err)
	}
	s.log.Info("metadata node added", "id", m.ID, "raft", m.RaftAddr, "api", m.HTTPAddr)
	return nil
}

// removeMember takes a metadata node out of the group.
func (s *Server) removeMember(id string) error {
	cf := s.raft.r.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("%w: read configuration: %v", metaapi.ErrNoQuorum, err)
	}
	if !slices.ContainsFunc(cf.Configuration().Servers, func(srv raft.Server) bool { return srv.ID == raft.ServerID(id) }) {
		return fmt.Errorf("%w: no metadata node %q in the group", metaapi.ErrInvalidArgument, id)
	}
	if err := s.raft.r.RemoveServer(raft.ServerID(id), 0, applyTimeout).Error(); err != nil {
		return fmt.Errorf("%w: remove %s: %v", metaapi.ErrNoQuorum, id, err)
	}
	if id != s.cfg.ID {
		if _, err := s.propose(opRemoveMember, id); err != nil {
			return err
		}
	}
	s.log.Info("metadata node removed", "id", id)
	return nil
}

// join asks the group to add this node, or to update its Raft address,
// until the group's configuration lists this node at its current address. A
// node without state asks the nodes in cfg.Join; a node that restarted on a
// new Raft address asks the members it knows from its own store.
func (s *Server) join(ctx context.Context) {
	me := raft.ServerAddress(s.raft.trans.LocalAddr())
	self := metaapi.MetaMember{ID: s.cfg.ID, RaftAddr: string(me), HTTPAddr: s.cfg.HTTPAddr}
	for wait := 200 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		cf := s.raft.r.GetConfiguration()
		if cf.Error() == nil {
			servers := cf.Configuration().Servers
			if slices.ContainsFunc(servers, func(srv raft.Server) bool { return srv.ID == raft.ServerID(s.cfg.ID) && srv.Address == me }) {
				return
			}
			if len(servers) == 0 && len(s.cfg.Join) == 0 {
				return // a new group of one is being bootstrapped
			}
		}
		addrs := append([]string(nil), s.cfg.Join...)
		if ms, err := s.st.metaMembers(); err == nil {
			for _, m := range ms {
				if m.ID != s.cfg.ID && m.HTTPAddr != "" {
					addrs = append(addrs, m.HTTPAddr)
				}
			}
		}
		if len(addrs) > 0 {
			mc, err := metaapi.NewClient(addrs, s.cfg.Secret, s.proxy)
			if err != nil {
				s.log.Error("join metadata group", "err", err)
				return
			}
			mc.RetryFor = time.Second
			err = mc.AddMeta(ctx, self)
			if err == nil {
				s.log.Info("joined metadata group", "via", addrs, "raft", me)
				return
			}
			s.log.Warn("join metadata group: retrying", "via", addrs, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// liveness is the leader's record of when each chunk server last
// heartbeated. It is not replicated: a new leader starts by assuming every
// server was just seen, which gives each a full DownAfter to report in.
type liveness struct {
	mu    sync.Mutex
	since time.Time
	seen  map[string]time.Time
}

func (l *liveness) reset(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since, l.seen = now, map[string]time.Time{}
}

func (l *liveness) beat(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]time.Time{}
	}
	l.seen[id] = now
}

func (l *liveness) lastSeen(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.seen[id]; ok {
		return t
	}
	return l.since
}

// overlay fills in LastSeen from the leader's memory where it is newer.
func (l *liveness) overlay(ns []metaapi.Node) []metaapi.Node {
	for i := range ns {
		if t := l.lastSeen(ns[i].ID); t.After(ns[i].LastSeen) {
			ns[i].LastSeen = t
		}
	}
	return ns
}

// heartbeat notes a chunk server as alive, and proposes a change only when
// what placement depends on changed: a new server, a new address or zone, a
// server coming back, or its free space moving by more than 1% of capacity.
// Steady heartbeats cost no log entries.
func (s *Server) heartbeat(hb metaapi.Heartbeat) error {
	if hb.ID == "" || hb.Addr == "" {
		return fmt.Errorf("%w: heartbeat without node id or address", metaapi.ErrInvalidArgument)
	}
	s.live.beat(hb.ID, s.now())
	ns, _, err := s.st.nodes()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n.ID == hb.ID && n.Addr == hb.Addr && n.Zone == hb.Zone && (n.State == metaapi.NodeUp || n.State == metaapi.NodeDraining) && sameDisks(n.Disks, hb.Disks) {
			return nil
		}
	}
	_, err = s.propose(opNode, hb)
	return err
}

func sameDisks(a, b []metaapi.Disk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Healthy != b[i].Healthy || a[i].Capacity != b[i].Capacity {
			return false
		}
		if math.Abs(float64(a[i].Free)-float64(b[i].Free)) > float64(a[i].Capacity)/100 {
			return false
		}
	}
	return true
}

// detectDown marks chunk servers that stopped heartbeating as down, so new
// writes are placed elsewhere.
func (s *Server) detectDown(ctx context.Context) {
	ns, _, err := s.st.nodes()
	if err != nil {
		s.log.Error("list nodes", "err", err)
		return
	}
	cutoff := s.now().Add(-s.cfg.DownAfter)
	for _, n := range ns {
		if n.State != metaapi.NodeUp {
			continue
		}
		seen := s.live.lastSeen(n.ID)
		if !seen.Before(cutoff) {
			continue
		}
		if _, err := s.propose(opSetNodeState, nodeStateArgs{ID: n.ID, State: metaapi.NodeDown}); err != nil {
			s.log.Error("mark node down", "node", n.ID, "err", err)
			continue
		}
		s.log.Warn("chunk server down", "node", n.ID, "addr", n.Addr, "lastSeen", seen)
	}
}
