package meta

import (
	"fmt"

	"github.com/talusfs/talus/meta/metaapi"
)

// NodeGone tells the metadata service that gossip saw chunk server id fail
// or leave. The leader marks it down at once instead of waiting DownAfter
// for its heartbeats to stop; other nodes ignore it (every metadata node
// hears the same gossip). A server that is in fact alive heartbeats itself
// back up. It reports whether the node was marked down.
func (s *Server) NodeGone(id, why string) (bool, error) {
	if !s.ready.Load() {
		return false, nil
	}
	ns, _, err := s.st.nodes()
	if err != nil {
		return false, fmt.Errorf("mark node %s down: %w", id, err)
	}
	for _, n := range ns {
		if n.ID != id || n.State != metaapi.NodeUp {
			continue
		}
		if _, err := s.propose(opSetNodeState, nodeStateArgs{ID: id, State: metaapi.NodeDown}); err != nil {
			return false, fmt.Errorf("mark node %s down: %w", id, err)
		}
		s.log.Warn("chunk server down", "node", id, "addr", n.Addr, "gossip", why)
		return true, nil
	}
	return false, nil
}
