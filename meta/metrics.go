package meta

import (
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talusfs/talus/meta/metaapi"
)

// Collector returns the metadata node's metrics, read from Raft and the
// store at each scrape: Raft state, term and indexes, chunk servers by
// state, the GC queue and bad shards awaiting repair. Object commits are
// counted by the HTTP metrics (op "POST /v1/objects").
func (s *Server) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Server }

var (
	descRaftState = prometheus.NewDesc("talus_meta_raft_state",
		"1 for this node's current Raft state (Leader, Follower, Candidate, Shutdown).", []string{"state"}, nil)
	descTerm        = prometheus.NewDesc("talus_meta_raft_term", "Current Raft term.", nil, nil)
	descCommitIndex = prometheus.NewDesc("talus_meta_raft_commit_index", "Highest Raft log index known committed.", nil, nil)
	descApplied     = prometheus.NewDesc("talus_meta_raft_applied_index", "Highest Raft log index applied to the store.", nil, nil)
	descNodes       = prometheus.NewDesc("talus_meta_nodes", "Chunk servers in the registry, by state.", []string{"state"}, nil)
	descGC          = prometheus.NewDesc("talus_meta_gc_pending", "Shard deletions queued for garbage collection.", nil, nil)
	descBad         = prometheus.NewDesc("talus_meta_bad_shards", "Bad-shard reports awaiting repair.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descTerm, descCommitIndex, descApplied, descNodes, descGC, descBad} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.raft.r
	stats := r.Stats()
	num := func(k string) float64 {
		v, _ := strconv.ParseUint(stats[k], 10, 64)
		return float64(v)
	}
	state := r.State()
	for _, st := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if st == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, st.String())
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, num("term"))
	ch <- prometheus.MustNewConstMetric(descCommitIndex, prometheus.GaugeValue, num("commit_index"))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(r.AppliedIndex()))

	// Every node applies every command, so a follower's store answers too
	// (possibly a moment behind).
	if ns, _, err := c.s.st.nodes(); err == nil {
		by := map[metaapi.NodeState]int{metaapi.NodeUp: 0, metaapi.NodeDown: 0}
		for _, n := range ns {
			by[n.State]++
		}
		for st, n := range by {
			ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n), string(st))
		}
	}
	if n, err := c.s.st.gcPending(); err == nil {
		ch <- prometheus.MustNewConstMetric(descGC, prometheus.GaugeValue, float64(n))
	}
	if bs, err := c.s.st.badShards(); err == nil {
		ch <- prometheus.MustNewConstMetric(descBad, prometheus.GaugeValue, float64(len(bs)))
	}
}
