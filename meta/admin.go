package meta

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/talusfs/talus/meta/metaapi"
)

// adminRoutes adds the admin API: cluster status, repair, rebalance, drain
// and removal of chunk servers. Like every route but a few, these are
// served by the leader, which runs the background work they report on.
func (s *Server) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /v1/admin/status", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			st, err := s.clusterStatus()
			reply(w, st, err)
		}
	})
	m.HandleFunc("GET /v1/admin/repair", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			st, err := s.repairStatus()
			reply(w, st, err)
		}
	})
	m.HandleFunc("GET /v1/admin/rebalance/plan", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			p, err := s.rebalancePlan(r.Context())
			reply(w, p, err)
		}
	})
	m.HandleFunc("GET /v1/admin/rebalance", func(w http.ResponseWriter, r *http.Request) {
		if s.verify(w) {
			st, err := s.rebalanceStatus()
			reply(w, st, err)
		}
	})
	m.HandleFunc("POST /v1/admin/rebalance", func(w http.ResponseWriter, r *http.Request) {
		if !s.verify(w) {
			return
		}
		p, err := s.rebalancePlan(r.Context())
		if err != nil {
			reply(w, nil, err)
			return
		}
		st, err := proposeFor[metaapi.RebalanceStatus](s, opRebalance, rebalanceArgs{Start: true, Planned: p.Moves, Remaining: p.Moves, Now: s.now().UTC()})
		if err == nil {
			s.log.Info("rebalance started", "moves", st.Planned)
		}
		reply(w, st, err)
	})
	m.HandleFunc("DELETE /v1/admin/rebalance", func(w http.ResponseWriter, r *http.Request) {
		_, err := s.propose(opRebalance, rebalanceArgs{Stop: true, Now: s.now().UTC(), Remaining: -1})
		reply(w, nil, err)
	})
	m.HandleFunc("POST /v1/admin/nodes/drain", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			reply(w, nil, fmt.Errorf("%w: name the chunk server to drain", metaapi.ErrInvalidArgument))
			return
		}
		_, err := s.propose(opDrainNode, id)
		if err == nil {
			s.log.Info("chunk server draining", "node", id)
		}
		reply(w, nil, err)
	})
	m.HandleFunc("DELETE /v1/admin/nodes", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			reply(w, nil, fmt.Errorf("%w: name the chunk server to remove", metaapi.ErrInvalidArgument))
			return
		}
		_, err := s.propose(opRemoveNode, id)
		if err == nil {
			s.log.Info("chunk server removed", "node", id)
		}
		reply(w, nil, err)
	})
}

func (s *Server) rebalanceStatus() (metaapi.RebalanceStatus, error) {
	st, err := s.st.rebalanceState()
	if err != nil {
		return st, err
	}
	if st.Running {
		st.Remaining = max(st.Planned-st.Done, 0)
		st.Rate = s.repair().rebalanceRate.rate(s.now())
	}
	return st, nil
}

func (s *Server) clusterStatus() (metaapi.ClusterStatus, error) {
	var st metaapi.ClusterStatus
	ns, _, err := s.st.nodes()
	if err != nil {
		return st, err
	}
	ns = s.live.overlay(ns)
	c, err := s.st.counts()
	if err != nil {
		return st, err
	}
	st.Leader, st.LeaderAddr = s.cfg.ID, s.cfg.HTTPAddr
	st.Objects, st.Segments = c.objects, c.segments
	for _, n := range ns {
		capacity, free := n.Capacity()
		st.Nodes = append(st.Nodes, metaapi.NodeStatus{Node: n, Capacity: capacity, Free: free, Shards: c.shards[n.ID]})
	}
	slices.SortFunc(st.Nodes, func(a, b metaapi.NodeStatus) int { return strings.Compare(a.ID, b.ID) })
	if st.Repair, err = s.repairStatus(); err != nil {
		return st, err
	}
	if st.Rebalance, err = s.rebalanceStatus(); err != nil {
		return st, err
	}
	pending, err := s.st.gcPending()
	st.GC = metaapi.GCStatus{Pending: pending}
	return st, err
}
