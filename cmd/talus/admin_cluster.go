package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// clusterCommand returns the admin command for cluster health and
// background work named by args[0] (status, repair, rebalance), or nil.
func clusterCommand(args []string) func(context.Context, []string, io.Writer) error {
	if len(args) == 0 {
		return nil
	}
	switch args[0] {
	case "status":
		return withTimeout(adminStatus)
	case "repair":
		return withTimeout(adminRepair)
	case "rebalance":
		return adminRebalance // follows progress for as long as it takes
	}
	return nil
}

func withTimeout(fn func(context.Context, []string, io.Writer) error) func(context.Context, []string, io.Writer) error {
	return func(ctx context.Context, args []string, w io.Writer) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return fn(ctx, args, w)
	}
}

func adminStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("status")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	st, err := e.meta.ClusterStatus(ctx)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	if e.json {
		return printJSON(stdout, st)
	}
	count := map[metaapi.NodeState]int{}
	var capacity, free uint64
	for _, n := range st.Nodes {
		count[n.State]++
		capacity += n.Capacity
		free += n.Free
	}
	fmt.Fprintf(stdout, "metadata leader  %s (%s)\n", st.Leader, st.LeaderAddr)
	fmt.Fprintf(stdout, "chunk servers    %d up, %d down, %d out, %d draining\n",
		count[metaapi.NodeUp], count[metaapi.NodeDown], count[metaapi.NodeOut], count[metaapi.NodeDraining])
	fmt.Fprintf(stdout, "capacity         %s used of %s (%s free)\n", humanBytes(int64(capacity-free)), humanBytes(int64(capacity)), humanBytes(int64(free)))
	fmt.Fprintf(stdout, "objects          %d in %d segments\n", st.Objects, st.Segments)
	fmt.Fprintf(stdout, "repair           %s\n", repairLine(st.Repair))
	fmt.Fprintf(stdout, "rebalance        %s\n", rebalanceLine(st.Rebalance))
	fmt.Fprintf(stdout, "gc queue         %d shards\n\n", st.GC.Pending)
	return nodeTable(stdout, st.Nodes)
}

func nodeTable(w io.Writer, ns []metaapi.NodeStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tZONE\tSTATE\tDISKS\tCAPACITY\tUSED\tSHARDS\tLAST SEEN")
	for _, n := range ns {
		healthy := 0
		for _, d := range n.Disks {
			if d.Healthy {
				healthy++
			}
		}
		seen := "-"
		if !n.LastSeen.IsZero() {
			seen = time.Since(n.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%d\t%s\n", n.ID, n.Addr, n.Zone, n.State, healthy, len(n.Disks),
			humanBytes(int64(n.Capacity)), humanBytes(int64(n.Capacity-n.Free)), n.Shards, seen)
	}
	return tw.Flush()
}

func repairLine(r metaapi.RepairStatus) string {
	if r.Queued == 0 && r.InFlight == 0 {
		return fmt.Sprintf("idle; %d segments repaired so far (%s rebuilt)", r.Done, humanBytes(r.Bytes))
	}
	line := fmt.Sprintf("%d segments queued, %d in progress, %d done, %s rebuilt at %s/s", r.Queued, r.InFlight, r.Done, humanBytes(r.Bytes), humanBytes(int64(r.Rate)))
	if r.ETA > 0 {
		line += ", ETA " + r.ETA.String()
	}
	return line
}

func rebalanceLine(r metaapi.RebalanceStatus) string {
	switch {
	case r.Running:
		return fmt.Sprintf("%s %d of %d moves, %s at %s/s", bar(r.Done, r.Planned), r.Done, r.Planned, humanBytes(r.Bytes), humanBytes(int64(r.Rate)))
	case !r.Finished.IsZero():
		return fmt.Sprintf("not running; the last moved %d shards (%s), ended %s", r.Done, humanBytes(r.Bytes), r.Finished.Format(time.RFC3339))
	}
	return "not running"
}

// bar is a 20-character progress bar.
func bar(done, total int64) string {
	const width = 20
	n := width
	if total > 0 {
		n = int(min(done, total) * width / total)
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func adminRepair(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		args = args[1:]
	}
	fs, env := adminFlags("repair")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("admin repair: unknown command %q (try 'talus admin repair status')", fs.Arg(0))
	}
	e, err := env()
	if err != nil {
		return err
	}
	r, err := e.meta.RepairStatus(ctx)
	if err != nil {
		return fmt.Errorf("repair status: %w", err)
	}
	if e.json {
		return printJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "repair: %s\n", repairLine(r))
	bw := "unlimited"
	if r.Bandwidth > 0 {
		bw = humanBytes(r.Bandwidth) + "/s"
	}
	fmt.Fprintf(stdout, "bandwidth limit: %s; %d failed attempts (retried)\n", bw, r.Failures)
	return nil
}

func adminRebalance(ctx context.Context, args []string, stdout io.Writer) error {
	sub := "start"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs, env := adminFlags("rebalance")
	plan := fs.Bool("plan", false, "show what would move, and move nothing")
	detach := fs.Bool("detach", false, "start the rebalance and return without following it")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	if *plan {
		sub = "plan"
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	switch sub {
	case "plan":
		p, err := e.meta.RebalancePlan(short)
		if err != nil {
			return fmt.Errorf("rebalance plan: %w", err)
		}
		if e.json {
			return printJSON(stdout, p)
		}
		fmt.Fprintf(stdout, "%d shard moves, %s; the fewest that reach every server's share: %d\n\n", p.Moves, humanBytes(p.Bytes), p.Ideal)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tZONE\tSHARDS\tSHARE\tIN\tOUT\tBYTES IN\tBYTES OUT")
		for _, n := range p.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", n.ID, n.Zone, n.Shards, n.Ideal, n.In, n.Out, humanBytes(n.BytesIn), humanBytes(n.BytesOut))
		}
		return tw.Flush()
	case "status":
		st, err := e.meta.RebalanceStatus(short)
		if err != nil {
			return fmt.Errorf("rebalance status: %w", err)
		}
		if e.json {
			return printJSON(stdout, st)
		}
		fmt.Fprintf(stdout, "rebalance: %s\n", rebalanceLine(st))
		return nil
	case "stop":
		if err := e.meta.StopRebalance(short); err != nil {
			return fmt.Errorf("stop rebalance: %w", err)
		}
		fmt.Fprintln(stdout, "rebalance stopped")
		return nil
	case "start":
	default:
		return fmt.Errorf("admin rebalance: unknown command %q (try --plan, start, status or stop)", sub)
	}
	st, err := e.meta.StartRebalance(short)
	if err != nil {
		return fmt.Errorf("start rebalance: %w", err)
	}
	if *detach || e.json {
		if e.json {
			return printJSON(stdout, st)
		}
		fmt.Fprintf(stdout, "rebalance started: %d moves planned\n", st.Planned)
		return nil
	}
	fmt.Fprintf(stdout, "rebalance started: %d moves planned (Ctrl-C stops following; the rebalance goes on)\n", st.Planned)
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return nil
		case <-time.After(time.Second):
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err = e.meta.RebalanceStatus(qctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("rebalance status: %w", err)
		}
		eta := ""
		if st.Rate > 0 && st.Done > 0 && st.Planned > st.Done {
			perMove := float64(st.Bytes) / float64(st.Done)
			eta = ", ETA " + time.Duration(float64(st.Planned-st.Done)*perMove/st.Rate*float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(stdout, "\r%s %d/%d moves, %s at %s/s%s   ", bar(st.Done, st.Planned), st.Done, st.Planned, humanBytes(st.Bytes), humanBytes(int64(st.Rate)), eta)
		if !st.Running {
			fmt.Fprintf(stdout, "\nrebalance finished in %s\n", time.Since(start).Round(time.Second))
			return nil
		}
	}
}

func adminNodeList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("node list")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	st, err := e.meta.ClusterStatus(ctx)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	if e.json {
		return printJSON(stdout, st.Nodes)
	}
	return nodeTable(stdout, st.Nodes)
}

func adminNodeDrain(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("node drain")
	id, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return errors.New("admin node drain: give the chunk server's id (see 'talus admin node list')")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.DrainNode(ctx, id); err != nil {
		return fmt.Errorf("drain %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "draining %s: it gets no new shards and its shards move elsewhere; 'talus admin node list' shows how many are left\n", id)
	return nil
}

func adminNodeRemove(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("node remove")
	id, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return errors.New("admin node remove: give the chunk server's id (see 'talus admin node list')")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.RemoveNode(ctx, id); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "removed %s\n", id)
	return nil
}
