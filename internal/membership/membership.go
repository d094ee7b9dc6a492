// Package membership puts a talus process into the cluster's gossip
// (hashicorp/serf): it joins with tags saying what the process is and where
// its API is, and reports the members it sees and their comings and goings.
// Gossip detects a crashed process within seconds, much faster than missed
// heartbeats; the metadata leader uses it to mark chunk servers down.
package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Roles a member can have.
const (
	RoleMeta    = "meta"
	RoleChunk   = "chunk"
	RoleGateway = "gateway"
)

// Tag names. Serf limits a member's tags to 512 bytes in all, so they are
// short.
const (
	tagRole     = "role"
	tagAddr     = "addr"
	tagZone     = "zone"
	tagID       = "id"
	tagCapacity = "capacity"
)

// Config configures a member.
type Config struct {
	// Bind is the gossip address (host:port, UDP and TCP); port 0 picks a
	// free one.
	Bind string
	// Advertise is the address other members reach this one at, when it
	// differs from Bind (NAT, 0.0.0.0).
	Advertise string
	// Role, ID, Addr (the API address), Zone and Capacity (bytes, chunk
	// servers) become the member's tags. ID must be unique among the
	// members and stable across restarts.
	Role, ID, Addr, Zone string
	Capacity             uint64
	// Local tunes failure detection for loopback (tests, talus dev):
	// memberlist's local profile, a failed member is noticed in about
	// three seconds. Otherwise the LAN profile is used.
	Local bool
	// OnEvent, if set, is called for every member that joins, fails,
	// leaves or changes its tags, in order, from one goroutine; it must
	// not block for long.
	OnEvent func(Event)
	// Logger receives serf's and memberlist's warnings and errors.
	Logger *slog.Logger
}

// Status is a member's standing as gossip sees it.
type Status string

// Member statuses.
const (
	StatusAlive   Status = "alive"
	StatusLeaving Status = "leaving"
	StatusLeft    Status = "left"
	StatusFailed  Status = "failed"
)

// Member is one process in the gossip cluster.
type Member struct {
	Name       string // the member's gossip name: role/id
	GossipAddr string // where it gossips
	Role       string
	ID         string
	Addr       string // its API address
	Zone       string
	Capacity   uint64
	Status     Status
}

// EventKind says what happened to a member.
type EventKind string

// Event kinds.
const (
	EventJoin   EventKind = "join"
	EventLeave  EventKind = "leave"  // left gracefully
	EventFailed EventKind = "failed" // stopped answering
	EventUpdate EventKind = "update" // changed its tags
	EventReap   EventKind = "reap"   // forgotten after failing or leaving long ago
)

// Event is a change to one member.
type Event struct {
	Kind   EventKind
	Member Member
}

// Node is this process's membership.
type Node struct {
	serf *serf.Serf
	log  *slog.Logger
	done chan struct{}

	mu   sync.Mutex
	tags map[string]string
}

// Start joins the gossip as a cluster of one; Join then connects it to the
// others. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Role == "" || cfg.ID == "" {
		return nil, errors.New("membership: a member needs a role and an id")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("membership: gossip address: %w", err)
	}
	ml := memberlist.DefaultLANConfig()
	sc := serf.DefaultConfig()
	if cfg.Local {
		ml = memberlist.DefaultLocalConfig()
		// Gossip is UDP; a loaded machine drops some of it, a leave
		// intent included, and then only the next full state exchange
		// (TCP) mends the views: every 5 s instead of 15 on loopback,
		// where one costs next to nothing.
		ml.PushPullInterval = 5 * time.Second
		// A stopping process says goodbye; on loopback that takes
		// milliseconds, not serf's default second.
		sc.LeavePropagateDelay = 100 * time.Millisecond
		// Leave returns once its intent has gone out, so the timeout
		// only bounds a slow gossip round; one that runs out before the
		// intent reaches anyone turns the goodbye into a failure.
		sc.BroadcastTimeout = 5 * time.Second
	}
	ml.BindAddr, ml.BindPort = host, port
	if cfg.Advertise != "" {
		if ml.AdvertiseAddr, ml.AdvertisePort, err = splitHostPort(cfg.Advertise); err != nil {
			return nil, fmt.Errorf("membership: gossip advertise address: %w", err)
		}
	}
	// A restarted process comes back under its name, possibly on another
	// port, often right after it was declared dead; memberlist refuses a
	// dead member's name at a new address until this has passed. Names
	// are role/id and ids are unique, so a claim on a dead name is always
	// the same server back.
	ml.DeadNodeReclaimTime = time.Nanosecond
	logger := log.New(&logWriter{log: cfg.Logger.With("component", "gossip")}, "", 0)
	ml.Logger = logger
	sc.Logger = logger
	sc.MemberlistConfig = ml
	sc.NodeName = cfg.Role + "/" + cfg.ID
	n := &Node{log: cfg.Logger, done: make(chan struct{}), tags: map[string]string{
		tagRole: cfg.Role, tagID: cfg.ID, tagAddr: cfg.Addr,
	}}
	if cfg.Zone != "" {
		n.tags[tagZone] = cfg.Zone
	}
	if cfg.Capacity > 0 {
		n.tags[tagCapacity] = strconv.FormatUint(cfg.Capacity, 10)
	}
	sc.Tags = n.tagsCopy()
	events := make(chan serf.Event, 256)
	sc.EventCh = events
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("membership: start gossip on %s: %w", cfg.Bind, err)
	}
	n.serf = s
	go n.dispatch(events, cfg.OnEvent)
	return n, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// dispatch hands serf's member events to fn until the node shuts down.
// serf blocks when its event channel is full, so this always drains it.
func (n *Node) dispatch(events <-chan serf.Event, fn func(Event)) {
	defer close(n.done)
	kinds := map[serf.EventType]EventKind{
		serf.EventMemberJoin:   EventJoin,
		serf.EventMemberLeave:  EventLeave,
		serf.EventMemberFailed: EventFailed,
		serf.EventMemberUpdate: EventUpdate,
		serf.EventMemberReap:   EventReap,
	}
	for {
		select {
		case <-n.serf.ShutdownCh():
			return
		case e := <-events:
			me, ok := e.(serf.MemberEvent)
			if !ok || fn == nil {
				continue
			}
			for _, m := range me.Members {
				fn(Event{Kind: kinds[me.Type], Member: member(m)})
			}
		}
	}
}

func member(m serf.Member) Member {
	capacity, _ := strconv.ParseUint(m.Tags[tagCapacity], 10, 64)
	st := StatusAlive
	switch m.Status {
	case serf.StatusLeaving:
		st = StatusLeaving
	case serf.StatusLeft:
		st = StatusLeft
	case serf.StatusFailed:
		st = StatusFailed
	}
	return Member{
		Name:       m.Name,
		GossipAddr: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))),
		Role:       m.Tags[tagRole],
		ID:         m.Tags[tagID],
		Addr:       m.Tags[tagAddr],
		Zone:       m.Tags[tagZone],
		Capacity:   capacity,
		Status:     st,
	}
}

// Addr is the address this member gossips at, for others to join.
func (n *Node) Addr() string { return member(n.serf.LocalMember()).GossipAddr }

// Join connects to the cluster through any of addrs (gossip addresses of
// members) and returns how many it reached.
func (n *Node) Join(addrs []string) (int, error) {
	k, err := n.serf.Join(addrs, true)
	if err != nil && k == 0 {
		return 0, fmt.Errorf("membership: join gossip via %v: %w", addrs, err)
	}
	return k, nil
}

// Members lists every member this one knows, itself included, with
// failed and departed ones until serf forgets them.
func (n *Node) Members() []Member {
	ms := n.serf.Members()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, member(m))
	}
	return out
}

// SetCapacity updates the capacity tag, when it changed.
func (n *Node) SetCapacity(c uint64) error {
	v := strconv.FormatUint(c, 10)
	n.mu.Lock()
	if n.tags[tagCapacity] == v {
		n.mu.Unlock()
		return nil
	}
	n.tags[tagCapacity] = v
	tags := n.tagsCopy()
	n.mu.Unlock()
	if err := n.serf.SetTags(tags); err != nil {
		return fmt.Errorf("membership: update tags: %w", err)
	}
	return nil
}

func (n *Node) tagsCopy() map[string]string {
	t := make(map[string]string, len(n.tags))
	for k, v := range n.tags {
		t[k] = v
	}
	return t
}

// Leave tells the others this member is going, then stops gossiping.
func (n *Node) Leave() error {
	err := n.serf.Leave()
	return errors.Join(err, n.Close())
}

// Close stops gossiping without a goodbye, as a crash would: the others
// see this member fail.
func (n *Node) Close() error {
	err := n.serf.Shutdown()
	<-n.done
	return err
}

// logWriter passes serf's and memberlist's log lines ("[WARN] serf: ...")
// to slog. Only warnings and errors: their debug and info lines narrate
// every probe and join.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelWarn
	switch {
	case bytes.HasPrefix(line, []byte("[ERR]")), bytes.HasPrefix(line, []byte("[ERROR]")):
		level = slog.LevelError
	case bytes.HasPrefix(line, []byte("[WARN]")):
	default:
		return len(p), nil
	}
	if i := bytes.IndexByte(line, ']'); i >= 0 {
		line = bytes.TrimSpace(line[i+1:])
	}
	w.log.Log(context.Background(), level, string(line))
	return len(p), nil
}
