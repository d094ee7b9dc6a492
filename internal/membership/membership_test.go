package membership

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitFor polls cond for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func status(n *Node, name string) Status {
	for _, m := range n.Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

func TestJoinTagsAndFailure(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var events []Event
	first, err := Start(ctx, Config{Bind: "127.0.0.1:0", Role: RoleMeta, ID: "m1", Addr: "127.0.0.1:7700", Local: true, Logger: quiet(),
		OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var nodes []*Node
	for i := range 3 {
		n, err := Start(ctx, Config{Bind: "127.0.0.1:0", Role: RoleChunk, ID: fmt.Sprintf("c%d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 7701+i),
			Zone: "z1", Capacity: 1 << 30, Local: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if _, err := n.Join([]string{first.Addr()}); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	waitFor(t, 10*time.Second, "every member sees four alive", func() bool {
		for _, n := range append([]*Node{first}, nodes...) {
			alive := 0
			for _, m := range n.Members() {
				if m.Status == StatusAlive {
					alive++
				}
			}
			if alive != 4 {
				return false
			}
		}
		return true
	})
	for _, m := range nodes[2].Members() {
		if m.Name == "chunk/c1" && (m.Role != RoleChunk || m.ID != "c1" || m.Addr != "127.0.0.1:7702" || m.Zone != "z1" || m.Capacity != 1<<30) {
			t.Errorf("member c1 as seen by c2: %+v", m)
		}
	}

	// A crash (no leave) is seen as a failure, a stop as a leave.
	nodes[0].Close()
	waitFor(t, 15*time.Second, "c0 seen failed", func() bool { return status(first, "chunk/c0") == StatusFailed })
	if err := nodes[1].Leave(); err != nil {
		t.Fatal(err)
	}
	// A leave intent lost with a dropped UDP packet arrives with the next
	// state exchange (PushPullInterval) from the member that did get it.
	waitFor(t, 20*time.Second, "c1 seen left", func() bool { return status(first, "chunk/c1") == StatusLeft })
	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]EventKind{}
	for _, e := range events {
		kinds[e.Member.ID] = e.Kind
	}
	if kinds["c0"] != EventFailed || kinds["c1"] != EventLeave || kinds["c2"] != EventJoin {
		t.Errorf("last events by member: %v", kinds)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{Bind: "127.0.0.1:0", ID: "x"}); err == nil {
		t.Error("Start without a role succeeded")
	}
	if _, err := Start(context.Background(), Config{Bind: "nonsense", Role: RoleChunk, ID: "x"}); err == nil {
		t.Error("Start with a malformed address succeeded")
	}
}
