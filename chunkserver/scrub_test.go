package chunkserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talusfs/talus/chunkserver"
	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta"
	"github.com/talusfs/talus/meta/metaapi"
)

// Scrubbing finds exactly the shards whose data was damaged on disk and
// reports them to the metadata service.
func TestScrubFindsCorruptShards(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secret := []byte("scrub-secret")
	c, err := dev.Start(ctx, dev.Options{Dir: t.TempDir(), Secret: secret, Logger: slog.New(slog.DiscardHandler), Heartbeat: 200 * time.Millisecond,
		Meta: meta.Config{RepairInterval: 2 * time.Second, GCDelay: time.Second, GCInterval: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: "scrub"}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sums := map[string][32]byte{}
	for i := range 24 {
		body := make([]byte, 200<<10+rng.IntN(200<<10))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		if _, err := cl.Put(ctx, "scrub", fmt.Sprintf("obj%d", i), bytes.NewReader(body), int64(len(body)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		sums[fmt.Sprintf("obj%d", i)] = sha256.Sum256(body)
	}

	type shard struct{ path, node string }
	var all []shard
	for i, ch := range c.Chunks {
		files, _ := filepath.Glob(filepath.Join(c.ChunkDir(i), "shards", "*", "*"))
		for _, f := range files {
			all = append(all, shard{f, ch.Server.ID()})
		}
	}
	if len(all) < 40 {
		t.Fatalf("only %d shard files written", len(all))
	}
	// At most m=2 damaged shards per segment, so that every object stays
	// readable and repairable.
	want := map[string]bool{}
	type damage struct {
		path string
		off  int64
		orig byte
	}
	damaged := map[string]damage{}
	perSegment := map[string]int{}
	for _, k := range rng.Perm(len(all)) {
		if len(want) == 20 {
			break
		}
		sh := all[k]
		seg, _, _ := strings.Cut(filepath.Base(sh.path), ".")
		if perSegment[seg] == 2 {
			continue
		}
		perSegment[seg]++
		f, err := os.OpenFile(sh.path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		// The data is the first part of the file, well over half of it.
		off := rng.Int64N(fi.Size() / 2)
		b := make([]byte, 1)
		f.ReadAt(b, off)
		orig := b[0]
		b[0] ^= 0x5a
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		f.Close()
		key := filepath.Base(sh.path) + "@" + sh.node
		want[key] = true
		damaged[key] = damage{sh.path, off, orig}
	}

	cc := chunkserver.NewClient(secret, nil)
	requested := map[string]int64{}
	for _, ch := range c.Chunks {
		st, err := cc.Scrub(ctx, ch.Addr())
		if err != nil {
			t.Fatal(err)
		}
		requested[ch.Addr()] = st.Requested
	}
	// Repair may fix a reported shard (and drop its report) before every
	// scrub is done, so the reports are collected while the scrubs run.
	// Repairing a reported shard reads the segment's others, and when one
	// of those is damaged too the repair read finds it first: that is a
	// true find, and the scrubber may then never see it damaged.
	got := map[string]bool{}
	byRepair := map[string]bool{}
	collect := func() {
		bad, err := cl.Meta().BadShards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			key := b.Segment + "." + strconv.Itoa(b.Index) + "@" + b.Node
			switch {
			case strings.HasPrefix(b.Reason, "scrub"):
			case strings.HasPrefix(b.Reason, "repair read"):
				byRepair[key] = true
			default:
				t.Errorf("bad shard %s reported for %q, neither by the scrubber nor by a repair read", key, b.Reason)
			}
			got[key] = true
		}
	}
	var found int64
	for _, ch := range c.Chunks {
		deadline := time.Now().Add(30 * time.Second)
		for {
			collect()
			st, err := cc.ScrubStatus(ctx, ch.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if st.Completed >= requested[ch.Addr()] {
				found += st.Corrupt
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("scrub of %s not done after 30s: %+v", ch.Addr(), st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	collect()
	// A shard that a repair read found can be reported and rewritten
	// between two looks at the reports. Repair rewrites only reported
	// shards, so one found rewritten (its damaged byte back) was found.
	rewritten := func(d damage) bool {
		f, err := os.Open(d.path)
		if err != nil {
			return errors.Is(err, fs.ErrNotExist) // rewritten elsewhere
		}
		defer f.Close()
		b := make([]byte, 1)
		_, err = f.ReadAt(b, d.off)
		return err == nil && b[0] == d.orig
	}
	for k := range want {
		if !got[k] && rewritten(damaged[k]) {
			got[k], byRepair[k] = true, true
		}
	}
	if found > 20 || found < int64(20-len(byRepair)) {
		t.Errorf("scrubbers counted %d corrupt shards, want 20 less the %d that repair reads found first", found, len(byRepair))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("corrupted shard %s not reported", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("intact shard %s reported bad", k)
		}
	}

	// Repair rewrites all 20: the reports drain, a new scrub of every server
	// finds nothing, and every object reads back as written.
	deadline := time.Now().Add(60 * time.Second)
	for {
		bad, err := cl.Meta().BadShards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bad shards still unrepaired after 60s", len(bad))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, ch := range c.Chunks {
		st, err := cc.Scrub(ctx, ch.Addr())
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			cur, err := cc.ScrubStatus(ctx, ch.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if cur.Completed >= st.Requested {
				if cur.Corrupt != 0 {
					t.Errorf("after repair, scrubbing %s found %d corrupt shards", ch.Addr(), cur.Corrupt)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("re-scrub of %s not done after 30s", ch.Addr())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for key, want := range sums {
		r, err := cl.Get(ctx, "scrub", key, 0, -1)
		if err != nil {
			t.Fatalf("get %s after repair: %v", key, err)
		}
		h := sha256.New()
		_, err = r.WriteTo(h)
		r.Close()
		if err != nil || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("%s after repair: %v, content differs: %v", key, err, !bytes.Equal(h.Sum(nil), want[:]))
		}
	}
}
