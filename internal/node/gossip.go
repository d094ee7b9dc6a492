package node

import (
	"context"
	"fmt"
	"time"

	"github.com/talusfs/talus/internal/membership"
	"github.com/talusfs/talus/meta/metaapi"
)

// Gossip configures a server's membership in the cluster's gossip.
type Gossip struct {
	// Bind is the serf address (host:port; port 0 picks one).
	Bind string
	// Join lists gossip addresses of members to join through. Empty: ask
	// the metadata nodes at Meta for theirs (chunk servers default Meta
	// to their --meta; metadata nodes to the group they join).
	Join []string
	Meta []string
	// Secret authenticates the question to Meta.
	Secret []byte
	// ID names a gateway in the gossip (default: its API address);
	// metadata nodes and chunk servers use their own ids.
	ID string
	// Local tunes failure detection for loopback (tests, talus dev).
	Local bool
}

// Option adjusts how a server starts.
type Option func(*startOptions)

type startOptions struct {
	gossip Gossip
}

// WithGossip has the server join the cluster's gossip.
func WithGossip(g Gossip) Option {
	return func(o *startOptions) { o.gossip = g }
}

func options(opts []Option) startOptions {
	var o startOptions
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// joinGossip starts the service's gossip member; keepJoined then connects
// it to the others.
func (s *service) joinGossip(ctx context.Context, g Gossip, role, id, addr, zone string, capacity uint64, onEvent func(membership.Event)) error {
	m, err := membership.Start(ctx, membership.Config{
		Bind: g.Bind, Role: role, ID: id, Addr: addr, Zone: zone, Capacity: capacity,
		Local: g.Local, OnEvent: onEvent, Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.Gossip = m
	s.gossipCfg = g
	return nil
}

// keepJoined joins the gossip whenever this member sees no other alive
// one: at start, and after everyone else went away (a restarted metadata
// node, a partition that outlived serf's memory). It asks again with
// backoff, until ctx is done.
func (s *service) keepJoined(ctx context.Context) {
	maxWait := 10 * time.Second
	if s.gossipCfg.Local {
		// On loopback a join costs next to nothing, and a member that
		// missed its first tries (a loaded machine) should not then sit
		// out the cluster for ten seconds.
		maxWait = 2 * time.Second
	}
	wait := 100 * time.Millisecond
	for {
		if s.alone() {
			addrs, err := s.gossipPeers(ctx)
			if err == nil && len(addrs) > 0 {
				if _, err = s.Gossip.Join(addrs); err == nil {
					s.log.Debug("joined gossip", "via", addrs)
					wait = 100 * time.Millisecond
				}
			}
			if err != nil && ctx.Err() == nil {
				s.log.Debug("join gossip: will retry", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

func (s *service) alone() bool {
	self := s.Gossip.Addr()
	for _, m := range s.Gossip.Members() {
		if m.Status == membership.StatusAlive && m.GossipAddr != self {
			return false
		}
	}
	return true
}

// gossipPeers is where to join: the configured addresses, or the gossip
// addresses the metadata nodes publish; never this member's own.
func (s *service) gossipPeers(ctx context.Context) ([]string, error) {
	g := s.gossipCfg
	addrs := g.Join
	if len(addrs) == 0 && len(g.Meta) > 0 {
		mc, err := metaapi.NewClient(g.Meta, g.Secret, nil)
		if err != nil {
			return nil, err
		}
		mc.RetryFor = time.Second
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ms, err := mc.MetaMembers(ctx)
		if err != nil {
			return nil, fmt.Errorf("find gossip through metadata service: %w", err)
		}
		for _, m := range ms {
			if m.GossipAddr != "" {
				addrs = append(addrs, m.GossipAddr)
			}
		}
	}
	self := s.Gossip.Addr()
	out := addrs[:0:0]
	for _, a := range addrs {
		if a != self {
			out = append(out, a)
		}
	}
	return out, nil
}
