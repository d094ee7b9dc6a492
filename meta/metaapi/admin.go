package metaapi

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// ClusterStatus is the cluster at a glance, as the metadata leader sees it.
type ClusterStatus struct {
	Leader     string          `json:"leader"`     // metadata leader's id
	LeaderAddr string          `json:"leaderAddr"` // and its API address
	Nodes      []NodeStatus    `json:"nodes"`
	Segments   int64           `json:"segments"`
	Objects    int64           `json:"objects"`
	Repair     RepairStatus    `json:"repair"`
	Rebalance  RebalanceStatus `json:"rebalance"`
	GC         GCStatus        `json:"gc"`
}

// NodeStatus is one chunk server with how many shards the metadata says it
// holds.
type NodeStatus struct {
	Node
	Capacity uint64 `json:"capacity"` // bytes on healthy disks
	Free     uint64 `json:"free"`
	Shards   int64  `json:"shards"`
}

// RepairStatus is background repair's queue and progress. Done, Shards and
// Bytes count since the cluster was created; Rate is what the current
// leader measured over the last minute.
type RepairStatus struct {
	Queued   int     `json:"queued"`   // segments waiting for repair
	InFlight int     `json:"inFlight"` // segments being repaired now
	Done     int64   `json:"done"`     // segments repaired
	Shards   int64   `json:"shards"`   // shards rebuilt or moved
	Bytes    int64   `json:"bytes"`    // bytes of shard data written
	Rate     float64 `json:"rate"`     // bytes per second, recent
	Failures int64   `json:"failures"` // attempts that failed and will be retried
	// Bandwidth is the configured limit in bytes per second; 0: none.
	Bandwidth int64 `json:"bandwidth"`
	// ETA estimates the time to empty the queue at the recent rate; zero
	// when unknown.
	ETA time.Duration `json:"eta"`
}

// RebalanceStatus is the state of a rebalance started with StartRebalance.
type RebalanceStatus struct {
	Running  bool      `json:"running"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Planned is the number of shard moves the plan had at the start; Done
	// and Bytes are what has moved since; Remaining is the latest count of
	// shards still away from their place.
	Planned   int64   `json:"planned"`
	Done      int64   `json:"done"`
	Bytes     int64   `json:"bytes"`
	Remaining int64   `json:"remaining"`
	Failures  int64   `json:"failures"`
	Rate      float64 `json:"rate"`
}

// RebalancePlan is what a rebalance would move: shard moves that bring every
// server to its share under placement.
type RebalancePlan struct {
	Moves  int64           `json:"moves"`
	Bytes  int64           `json:"bytes"`
	Ideal  int64           `json:"ideal"` // the fewest moves that reach the ideal shares
	Shards int64           `json:"shards"`
	Nodes  []NodeRebalance `json:"nodes"`
	Sample []RebalanceMove `json:"sample,omitempty"` // the first few moves
}

// NodeRebalance is one server's part in a rebalance plan.
type NodeRebalance struct {
	ID       string `json:"id"`
	Zone     string `json:"zone,omitempty"`
	Shards   int64  `json:"shards"` // held now
	Ideal    int64  `json:"ideal"`  // held under ideal placement (its share)
	In       int64  `json:"in,omitempty"`
	Out      int64  `json:"out,omitempty"`
	BytesIn  int64  `json:"bytesIn,omitempty"`
	BytesOut int64  `json:"bytesOut,omitempty"`
}

// RebalanceMove is one shard move of a plan.
type RebalanceMove struct {
	Shard string `json:"shard"`
	From  string `json:"from"`
	To    string `json:"to"`
	Bytes int64  `json:"bytes"`
}

// ClusterStatus returns the cluster's health and background work.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var s ClusterStatus
	err := c.call(ctx, http.MethodGet, "/v1/admin/status", nil, nil, &s)
	return s, err
}

// RepairStatus returns background repair's queue and progress.
func (c *Client) RepairStatus(ctx context.Context) (RepairStatus, error) {
	var s RepairStatus
	err := c.call(ctx, http.MethodGet, "/v1/admin/repair", nil, nil, &s)
	return s, err
}

// RebalancePlan computes, without moving anything, what a rebalance would move.
func (c *Client) RebalancePlan(ctx context.Context) (RebalancePlan, error) {
	var p RebalancePlan
	err := c.call(ctx, http.MethodGet, "/v1/admin/rebalance/plan", nil, nil, &p)
	return p, err
}

// StartRebalance starts moving shards to their places; starting a running
// rebalance changes nothing.
func (c *Client) StartRebalance(ctx context.Context) (RebalanceStatus, error) {
	var s RebalanceStatus
	err := c.call(ctx, http.MethodPost, "/v1/admin/rebalance", nil, nil, &s)
	return s, err
}

// StopRebalance stops a rebalance after the moves in flight.
func (c *Client) StopRebalance(ctx context.Context) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/rebalance", nil, nil, nil)
}

// RebalanceStatus returns a rebalance's progress.
func (c *Client) RebalanceStatus(ctx context.Context) (RebalanceStatus, error) {
	var s RebalanceStatus
	err := c.call(ctx, http.MethodGet, "/v1/admin/rebalance", nil, nil, &s)
	return s, err
}

// DrainNode marks a chunk server draining: it gets no new shards and
// repair moves every shard it holds elsewhere.
func (c *Client) DrainNode(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/v1/admin/nodes/drain", url.Values{"id": {id}}, nil, nil)
}

// RemoveNode forgets a chunk server; it fails with ErrConflict while the
// server still holds shards.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/nodes", url.Values{"id": {id}}, nil, nil)
}
