package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/talusfs/talus/meta/metaapi"
)

// adminMetaStatus shows the metadata group: leader, term, commit index and
// every voter's replication lag, as the leader sees it.
func adminMetaStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("meta status")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	st, err := e.meta.MetaStatus(ctx)
	if err != nil {
		return fmt.Errorf("metadata group status: %w", err)
	}
	// The node that answered may be a follower; the leader knows the lag.
	if st.State != "Leader" && st.LeaderAddr != "" {
		if lc, err := metaapi.NewClient([]string{st.LeaderAddr}, e.secret, nil); err == nil {
			if lst, err := lc.MetaStatus(ctx); err == nil {
				st = lst
			}
		}
	}
	if e.json {
		return printJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "leader %s (%s)  term %d  commit index %d\n", orDash(st.Leader), orDash(st.LeaderAddr), st.Term, st.CommitIndex)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPI\tRAFT\tROLE\tMATCH\tLAG")
	for _, s := range st.Servers {
		role := "follower"
		if s.ID == st.Leader {
			role = "leader"
		}
		if s.Suffrage != "Voter" {
			role = s.Suffrage
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, orDash(s.HTTPAddr), s.RaftAddr, role, s.Match, s.Lag)
	}
	return tw.Flush()
}

// adminMetaAdd adds a metadata node, already running with the same secret,
// to the group as a voter.
func adminMetaAdd(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("meta add")
	raftAddr := fs.String("raft-addr", "", "the new node's Raft address (required)")
	apiAddr := fs.String("api-addr", "", "the new node's API address (required)")
	id, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if id == "" || *raftAddr == "" || *apiAddr == "" {
		return errors.New("admin meta add: give the node's id, --raft-addr and --api-addr, e.g. 'talus admin meta add meta4 --raft-addr 10.0.0.4:7800 --api-addr 10.0.0.4:7700'")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.AddMeta(ctx, metaapi.MetaMember{ID: id, RaftAddr: *raftAddr, HTTPAddr: *apiAddr}); err != nil {
		return fmt.Errorf("add metadata node %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "metadata node %s added\n", id)
	return nil
}

// adminMetaRemove takes a metadata node out of the group.
func adminMetaRemove(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("meta remove")
	id, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return errors.New("admin meta remove: give the node's id, e.g. 'talus admin meta remove meta3'")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.RemoveMeta(ctx, id); err != nil {
		return fmt.Errorf("remove metadata node %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "metadata node %s removed\n", id)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
