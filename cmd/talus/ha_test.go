package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// haCluster is three `talus meta` processes in a Raft group and six chunk
// servers, every one a real process that the test can kill -9.
type haCluster struct {
	t       *testing.T
	bin     string
	dir     string
	secret  string
	api     []string // metadata API addresses
	raft    []string
	metas   []*exec.Cmd // nil where dead
	chunks  []*exec.Cmd
	logs    string
	cleanup []func()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startHA(t *testing.T, bin string) *haCluster {
	t.Helper()
	c := &haCluster{t: t, bin: bin, dir: t.TempDir(), secret: "ha-test-secret"}
	c.logs = filepath.Join(c.dir, "logs")
	os.MkdirAll(c.logs, 0o755)
	for range 3 {
		c.api = append(c.api, freeAddr(t))
		c.raft = append(c.raft, freeAddr(t))
	}
	c.metas = make([]*exec.Cmd, 3)
	for i := range 3 {
		c.startMeta(i)
		if i == 0 {
			// The first node elects itself once it is up; while the
			// full suite runs beside it, starting a process has taken
			// more than 15s.
			c.waitLeader(30 * time.Second)
		}
	}
	var metas string
	for i, a := range c.api {
		if i > 0 {
			metas += ","
		}
		metas += a
	}
	for i := range 6 {
		cmd := c.spawn(fmt.Sprintf("chunk%d", i), "chunk", "--meta", metas, "--disk", filepath.Join(c.dir, fmt.Sprintf("chunk%d", i)),
			"--zone", fmt.Sprintf("z%d", i%3), "--listen", freeAddr(t), "--log-level", "warn")
		c.chunks = append(c.chunks, cmd)
	}
	t.Cleanup(func() {
		for _, cmd := range append(c.metas, c.chunks...) {
			if cmd != nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
		if t.Failed() {
			for _, f := range []string{"meta0", "meta1", "meta2"} {
				b, _ := os.ReadFile(filepath.Join(c.logs, f+".log"))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s log tail:\n%s", f, b)
			}
		}
	})
	mc := c.metaClient(time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns, err := mc.Nodes(context.Background())
		up := 0
		for _, n := range ns {
			if n.State == metaapi.NodeUp {
				up++
			}
		}
		if err == nil && up == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 6 chunk servers registered after 30s (%v)", up, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

func (c *haCluster) spawn(name string, args ...string) *exec.Cmd {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "TALUS_SECRET="+c.secret)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { cmd.Wait(); f.Close() }()
	return cmd
}

func (c *haCluster) startMeta(i int) {
	c.t.Helper()
	args := []string{"meta", "--id", fmt.Sprintf("meta%d", i+1), "--listen", c.api[i], "--raft-addr", c.raft[i],
		"--data", filepath.Join(c.dir, fmt.Sprintf("meta%d", i)), "--log-level", "warn", "--down-after", "5s"}
	if i > 0 {
		args = append(args, "--join", c.api[0])
	}
	c.metas[i] = c.spawn(fmt.Sprintf("meta%d", i), args...)
}

// kill9 kills a metadata node the way a crash does.
func (c *haCluster) kill9(i int) {
	c.metas[i].Process.Signal(syscall.SIGKILL)
	c.metas[i].Process.Wait()
	c.metas[i] = nil
}

func (c *haCluster) metaClient(retry time.Duration) *metaapi.Client {
	mc, err := metaapi.NewClient(c.api, []byte(c.secret), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	mc.RetryFor = retry
	return mc
}

func (c *haCluster) client(retry time.Duration) *client.Client {
	cl, err := client.New(client.Config{Meta: c.api, Secret: []byte(c.secret), MetaRetry: retry})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// leader returns the index of the node that leads, asking every live node.
func (c *haCluster) leader() (int, bool) {
	for i, a := range c.api {
		if c.metas[i] == nil {
			continue
		}
		mc, _ := metaapi.NewClient([]string{a}, []byte(c.secret), nil)
		mc.RetryFor = time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := mc.MetaStatus(ctx)
		cancel()
		if err == nil && st.State == "Leader" {
			return i, true
		}
	}
	return -1, false
}

func (c *haCluster) waitLeader(d time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if i, ok := c.leader(); ok {
			return i
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no metadata leader after %s", d)
	return -1
}

// waitCaughtUp waits until node i has applied everything the leader committed.
func (c *haCluster) waitCaughtUp(i int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l, ok := c.leader()
		if ok {
			lst, err1 := c.statusOf(l)
			st, err2 := c.statusOf(i)
			if err1 == nil && err2 == nil && st.AppliedIdx >= lst.CommitIndex {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("metadata node %d did not catch up within %s", i, d)
}

func (c *haCluster) statusOf(i int) (metaapi.MetaStatus, error) {
	mc, _ := metaapi.NewClient([]string{c.api[i]}, []byte(c.secret), nil)
	mc.RetryFor = time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return mc.MetaStatus(ctx)
}

// TestMetaLeaderKill runs eight writers while the metadata leader is killed
// with SIGKILL three times, then checks that every acknowledged write reads
// back and nothing else is visible, and that all of it survives a restart of
// the whole metadata group.
func TestMetaLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process failover test; runs without -short")
	}
	c := startHA(t, buildTalus(t))
	cl := c.client(20 * time.Second)
	ctx := context.Background()
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: "failover"}); err != nil {
		t.Fatal(err)
	}

	// Each writer overwrites its own 40 keys; for each key it keeps the hash
	// of its last acknowledged write and of every write attempted after that
	// (a failed write may still have been committed).
	type keyState struct {
		acked    [32]byte
		hasAcked bool
		maybe    [][32]byte
	}
	var mu sync.Mutex
	state := map[string]*keyState{}
	var acks, fails int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/k%02d", w, rng.IntN(40))
				size := 100 + rng.IntN(200<<10) // inline and coded objects both
				body := make([]byte, size)
				for j := range body {
					body[j] = byte(rng.Uint32())
				}
				sum := sha256.Sum256(body)
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cl.Put(wctx, "failover", key, bytes.NewReader(body), int64(size), client.PutOptions{})
				cancel()
				mu.Lock()
				ks := state[key]
				if ks == nil {
					ks = &keyState{}
					state[key] = ks
				}
				if err == nil {
					ks.acked, ks.hasAcked, ks.maybe = sum, true, nil
					acks++
				} else {
					ks.maybe = append(ks.maybe, sum)
					fails++
				}
				mu.Unlock()
			}
		}()
	}

	// TALUS_HA_ROUNDS runs more kills, to measure failover times for
	// bench/RESULTS.md.
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("TALUS_HA_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	var times []time.Duration
	time.Sleep(2 * time.Second)
	for round := range rounds {
		l := c.waitLeader(10 * time.Second)
		mu.Lock()
		before := acks
		mu.Unlock()
		killed := time.Now()
		c.kill9(l)
		// A new leader serves writes: a probe write must succeed within 5 s.
		probe := c.client(10 * time.Second)
		var served time.Duration
		for {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := probe.Put(pctx, "failover", "probe", bytes.NewReader([]byte("x")), 1, client.PutOptions{})
			cancel()
			if err == nil {
				served = time.Since(killed)
				break
			}
			if time.Since(killed) > 15*time.Second {
				t.Fatalf("round %d: no write served 15 s after killing leader meta%d: %v", round, l+1, err)
			}
		}
		t.Logf("round %d: killed leader meta%d; writes served again after %s", round, l+1, served.Round(time.Millisecond))
		times = append(times, served)
		if served > 5*time.Second {
			t.Errorf("round %d: writes resumed only after %s (want within 5 s)", round, served)
		}
		time.Sleep(time.Second)
		mu.Lock()
		if acks == before {
			t.Errorf("round %d: writers made no progress after the failover", round)
		}
		mu.Unlock()
		c.startMeta(l)
		c.waitCaughtUp(l, 30*time.Second)
	}
	close(stop)
	wg.Wait()
	slices.Sort(times)
	t.Logf("%d writes acknowledged, %d failed; failover median %s, worst %s over %d kills", acks, fails,
		times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), len(times))

	check := func(when string) {
		t.Helper()
		rcl := c.client(20 * time.Second)
		for key, ks := range state {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			r, err := rcl.Get(rctx, "failover", key, 0, -1)
			if errors.Is(err, metaapi.ErrNoSuchKey) {
				cancel()
				if ks.hasAcked {
					t.Errorf("%s: acknowledged object %s is gone", when, key)
				}
				continue
			}
			if err != nil {
				cancel()
				t.Errorf("%s: get %s: %v", when, key, err)
				continue
			}
			h := sha256.New()
			_, err = r.WriteTo(h)
			r.Close()
			cancel()
			if err != nil {
				t.Errorf("%s: read %s: %v", when, key, err)
				continue
			}
			var got [32]byte
			copy(got[:], h.Sum(nil))
			ok := ks.hasAcked && got == ks.acked
			for _, m := range ks.maybe {
				ok = ok || got == m
			}
			if !ok {
				t.Errorf("%s: %s holds content that is neither its last acknowledged write nor a later attempt", when, key)
			}
		}
	}
	check("after failovers")

	// Restart the whole metadata group: everything is still there.
	for i := range 3 {
		if c.metas[i] != nil {
			c.kill9(i)
		}
	}
	for i := range 3 {
		c.startMeta(i)
	}
	c.waitLeader(20 * time.Second)
	check("after restarting every metadata node")
}

// TestMetaNoQuorum checks that with two of three metadata nodes down, writes
// and linearizable reads fail with a clear no-quorum error within the retry
// bound, and that service resumes when a node returns.
func TestMetaNoQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process quorum test; runs without -short")
	}
	c := startHA(t, buildTalus(t))
	ctx := context.Background()
	cl := c.client(3 * time.Second)
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: "quorum"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "quorum", "before", bytes.NewReader([]byte("kept")), 4, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	l := c.waitLeader(10 * time.Second)

	// The admin CLI shows the group, and refuses bad requests in one sentence.
	admin := func(args ...string) (string, string, error) {
		cmd := exec.Command(c.bin, append([]string{"admin"}, args...)...)
		cmd.Env = append(os.Environ(), "TALUS_SECRET="+c.secret, "TALUS_META="+strings.Join(c.api, ","))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, _, err := admin("meta", "status", "--json")
	if err != nil {
		t.Fatalf("admin meta status: %v", err)
	}
	var st metaapi.MetaStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Leader != fmt.Sprintf("meta%d", l+1) || len(st.Servers) != 3 || st.State != "Leader" {
		t.Fatalf("admin meta status --json: %v\n%s", err, out)
	}
	for _, srv := range st.Servers {
		if srv.Suffrage != "Voter" || srv.HTTPAddr == "" {
			t.Fatalf("admin meta status: server %+v", srv)
		}
	}
	if out, _, err = admin("meta", "status"); err != nil || !strings.Contains(out, "leader meta") || !strings.Contains(out, "LAG") {
		t.Fatalf("admin meta status table: %v\n%s", err, out)
	}
	_, stderr, err := admin("meta", "remove", "nosuchnode")
	if err == nil || !strings.Contains(stderr, "no metadata node") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Fatalf("admin meta remove of an unknown node: err %v, stderr %q", err, stderr)
	}

	other := (l + 1) % 3
	c.kill9(other)
	c.kill9(l)

	start := time.Now()
	_, err = cl.Put(ctx, "quorum", "during", bytes.NewReader([]byte("no")), 2, client.PutOptions{})
	took := time.Since(start)
	if !errors.Is(err, metaapi.ErrNoQuorum) {
		t.Fatalf("write without quorum: got %v, want a no-quorum error", err)
	}
	t.Logf("write without quorum failed after %s: %v", took.Round(time.Millisecond), err)
	if took > 10*time.Second {
		t.Errorf("write without quorum took %s to fail (retry bound 3 s)", took)
	}
	if _, err := cl.Head(ctx, "quorum", "before"); !errors.Is(err, metaapi.ErrNoQuorum) {
		t.Fatalf("linearizable read without quorum: got %v, want a no-quorum error", err)
	}

	c.startMeta(l)
	c.waitLeader(20 * time.Second)
	cl = c.client(20 * time.Second)
	if _, err := cl.Put(ctx, "quorum", "after", bytes.NewReader([]byte("back")), 4, client.PutOptions{}); err != nil {
		t.Fatalf("write after a node returned: %v", err)
	}
	for key, want := range map[string]string{"before": "kept", "after": "back"} {
		r, err := cl.Get(ctx, "quorum", key, 0, -1)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		var buf bytes.Buffer
		r.WriteTo(&buf)
		r.Close()
		if buf.String() != want {
			t.Fatalf("%s = %q, want %q", key, buf.String(), want)
		}
	}
	if _, err := cl.Head(ctx, "quorum", "during"); !errors.Is(err, metaapi.ErrNoSuchKey) {
		t.Fatalf("the write refused without quorum is visible: %v", err)
	}
}
