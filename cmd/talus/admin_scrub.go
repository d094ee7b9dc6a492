package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/meta/metaapi"
)

// scrubRow is one chunk server's scrubber as `admin scrub` shows it.
type scrubRow struct {
	Node   string                   `json:"node"`
	Addr   string                   `json:"addr"`
	Status *chunkserver.ScrubStatus `json:"status,omitempty"`
	Error  string                   `json:"error,omitempty"`
}

// adminScrubStart starts a scrub pass on every chunk server that is up.
func adminScrubStart(ctx context.Context, args []string, stdout io.Writer) error {
	return adminScrub(ctx, "scrub start", args, stdout, func(cc *chunkserver.Client, addr string) (chunkserver.ScrubStatus, error) {
		return cc.Scrub(ctx, addr)
	})
}

// adminScrubStatus shows every up chunk server's scrubber: pass, pace,
// shards and bytes verified, corrupt shards found.
func adminScrubStatus(ctx context.Context, args []string, stdout io.Writer) error {
	return adminScrub(ctx, "scrub status", args, stdout, func(cc *chunkserver.Client, addr string) (chunkserver.ScrubStatus, error) {
		return cc.ScrubStatus(ctx, addr)
	})
}

func adminScrub(ctx context.Context, name string, args []string, stdout io.Writer, call func(*chunkserver.Client, string) (chunkserver.ScrubStatus, error)) error {
	fs, env := adminFlags(name)
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	nodes, err := e.meta.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("%s: list chunk servers: %w", name, err)
	}
	cc := chunkserver.NewClient(e.secret, nil)
	var rows []scrubRow
	failed := 0
	for _, n := range nodes {
		if n.State != metaapi.NodeUp && n.State != metaapi.NodeDraining {
			continue
		}
		row := scrubRow{Node: n.ID, Addr: n.Addr}
		st, err := call(cc, n.Addr)
		if err != nil {
			row.Error = err.Error()
			failed++
		} else {
			row.Status = &st
		}
		rows = append(rows, row)
	}
	if e.json {
		if err := printJSON(stdout, rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tADDR\tPASS\tDONE\tRUNNING\tSHARDS\tBYTES\tCORRUPT\tTOTAL CORRUPT")
		for _, r := range rows {
			if r.Status == nil {
				fmt.Fprintf(tw, "%s\t%s\terror: %s\n", r.Node, r.Addr, r.Error)
				continue
			}
			s := r.Status
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%v\t%d\t%d\t%d\t%d\n", r.Node, r.Addr, s.Pass, s.Completed, s.Running, s.Shards, s.Bytes, s.Corrupt, s.TotalCorrupt)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return errors.New(name + ": no chunk server is up")
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d chunk servers did not answer", name, failed, len(rows))
	}
	return nil
}
