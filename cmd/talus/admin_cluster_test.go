package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// TestAdminClusterCommands checks status, repair, rebalance --plan and node
// remove against a real `talus dev`, tables and JSON, and that a refused
// command exits non-zero with one sentence on stderr.
func TestAdminClusterCommands(t *testing.T) {
	bin := buildTalus(t)
	p := startDev(t, bin)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"admin"}, args...)...)
		cmd.Env = append(os.Environ(), "TALUS_SECRET="+string(p.secret), "TALUS_META="+p.meta)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	cl, err := client.New(client.Config{Meta: []string{p.meta}, Secret: p.secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: "status"}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("talus "), 100000)
	if _, err := cl.Put(ctx, "status", "k", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	out, _, err := run("status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, want := range []string{"metadata leader", "6 up, 0 down, 0 out", "1 in 1 segments", "repair ", "NODE", "SHARDS", "zone"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run("status", "--json")
	var st metaapi.ClusterStatus
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: %v %q", err, out)
	}
	if len(st.Nodes) != 6 || st.Objects != 1 || st.Segments != 1 || st.Leader == "" {
		t.Fatalf("status --json: %+v", st)
	}
	var shards int64
	for _, n := range st.Nodes {
		shards += n.Shards
		if n.State != metaapi.NodeUp || n.Capacity == 0 {
			t.Fatalf("status --json: node %+v", n)
		}
	}
	if shards != 6 {
		t.Fatalf("status --json counts %d shards, want 6", shards)
	}

	out, _, err = run("repair", "status", "--json")
	var rs metaapi.RepairStatus
	if err != nil || json.Unmarshal([]byte(out), &rs) != nil || rs.Queued != 0 {
		t.Fatalf("repair status --json: %v %q", err, out)
	}
	out, _, err = run("rebalance", "--plan")
	if err != nil || !strings.Contains(out, "0 shard moves") {
		t.Fatalf("rebalance --plan: %v %q", err, out)
	}

	// Scrub every server and wait for the passes: six shards verified, none
	// corrupt.
	if out, _, err = run("scrub", "start"); err != nil || !strings.Contains(out, "CORRUPT") {
		t.Fatalf("scrub start: %v %q", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, err = run("scrub", "status", "--json")
		var rows []struct {
			Status struct {
				Completed, Requested, Shards, Corrupt int64
			}
		}
		if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 6 {
			t.Fatalf("scrub status --json: %v %q", err, out)
		}
		done, verified, corrupt := 0, int64(0), int64(0)
		for _, r := range rows {
			if r.Status.Completed >= r.Status.Requested && r.Status.Requested > 0 {
				done++
			}
			verified += r.Status.Shards
			corrupt += r.Status.Corrupt
		}
		if done == 6 {
			if verified != 6 || corrupt != 0 {
				t.Fatalf("scrub verified %d shards with %d corrupt, want 6 and 0:\n%s", verified, corrupt, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrub passes not done after 30s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every server holds a shard of the object: removal is refused.
	_, stderr, err := run("node", "remove", st.Nodes[0].ID)
	if err == nil || cmdExitCode(err) == 0 {
		t.Fatalf("node remove of a server holding shards succeeded: %q", stderr)
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "still holds 1 shards") {
		t.Fatalf("node remove: want one sentence saying why, got %q", stderr)
	}
	_, stderr, err = run("node", "drain", "no-such-node")
	if err == nil || !strings.Contains(stderr, "no chunk server") {
		t.Fatalf("drain of an unknown node: %v %q", err, stderr)
	}
	_, stderr, err = run("rebalance", "sideways")
	if err == nil || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("rebalance sideways: %v %q", err, stderr)
	}
}

func cmdExitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
