package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Scrubbing defaults.
const (
	DefaultScrubBandwidth = 8 << 20 // bytes/s
	DefaultScrubInterval  = 7 * 24 * time.Hour

	// minScrubRate keeps a nearly empty server's pass from crawling.
	minScrubRate = 64 << 10
)

// CorruptShard is a shard the scrubber found damaged.
type CorruptShard struct {
	ID     string // "<segment>.<index>"
	Disk   string // disk id
	Reason string
}

// ScrubStatus is the scrubber's progress.
type ScrubStatus struct {
	// Pass numbers the pass running or last run, from 1; Completed is the
	// last one that finished, and Requested the one the last Scrub call
	// asked for: that request is done once Completed >= Requested.
	Pass      int64 `json:"pass"`
	Completed int64 `json:"completed"`
	Requested int64 `json:"requested,omitempty"`
	Running   bool  `json:"running"`
	// Rate is the pass's pace in bytes/s.
	Rate     int64     `json:"rate"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"` // end of the last completed pass
	// Shards, Bytes (of data) and Corrupt count this pass.
	Shards  int64 `json:"shards"`
	Bytes   int64 `json:"bytes"`
	Corrupt int64 `json:"corrupt"`
	// Total* count since the server started.
	TotalShards  int64 `json:"totalShards"`
	TotalBytes   int64 `json:"totalBytes"`
	TotalCorrupt int64 `json:"totalCorrupt"`
}

// scrubber re-reads every shard in the background, verifying its
// checksums, so that bit rot is found and repaired before a read needs
// the shard. A pass walks the disks directory by directory; it remembers
// where it is, so RunScrubber resumes an interrupted pass.
type scrubber struct {
	s         *Server
	bandwidth int64
	interval  time.Duration
	report    func(context.Context, []CorruptShard) error

	kick    chan struct{}
	restart atomic.Bool // Scrub asked for a new pass at full bandwidth

	mu      sync.Mutex
	st      ScrubStatus
	inPass  bool // a pass began and has not finished
	pos     int  // next directory of the pass: disk*256 + prefix
	pending []CorruptShard
}

func newScrubber(s *Server, cfg Config) *scrubber {
	sc := &scrubber{
		s:         s,
		bandwidth: cfg.ScrubBandwidth,
		interval:  cfg.ScrubInterval,
		report:    cfg.ReportCorrupt,
		kick:      make(chan struct{}, 1),
	}
	if sc.bandwidth <= 0 {
		sc.bandwidth = DefaultScrubBandwidth
	}
	if sc.interval <= 0 {
		sc.interval = DefaultScrubInterval
	}
	return sc
}

// Scrub starts a new scrub pass now, at the full scrub bandwidth,
// abandoning the pass in progress, and returns the status with Requested
// set to the new pass. RunScrubber must be running for it to happen.
func (s *Server) Scrub() ScrubStatus {
	sc := s.scrub
	sc.mu.Lock()
	sc.st.Requested = sc.st.Pass + 1
	st := sc.st
	sc.restart.Store(true)
	sc.mu.Unlock()
	select {
	case sc.kick <- struct{}{}:
	default:
	}
	return st
}

// ScrubStatus reports the scrubber's progress.
func (s *Server) ScrubStatus() ScrubStatus {
	s.scrub.mu.Lock()
	defer s.scrub.mu.Unlock()
	return s.scrub.st
}

// RunScrubber scrubs until ctx is done: a pass over every shard paced to
// take about Config.ScrubInterval (never faster than ScrubBandwidth), one
// pass per interval, and a pass at full bandwidth whenever Scrub asks.
// Corrupt shards go to Config.ReportCorrupt; those it fails to take are
// offered again after the next find or at the end of the pass.
func (s *Server) RunScrubber(ctx context.Context) {
	sc := s.scrub
	for ctx.Err() == nil {
		started := sc.begin()
		err := sc.pass(ctx)
		if errors.Is(err, errRestart) {
			continue
		}
		if ctx.Err() != nil {
			sc.mu.Lock()
			sc.st.Running = false
			sc.mu.Unlock()
			return
		}
		sc.finish()
		sc.flush(ctx)
		if sc.restart.Load() {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-sc.kick:
		case <-time.After(time.Until(started.Add(sc.interval))):
		}
	}
}

var errRestart = errors.New("scrub restarted")

// begin resumes the pass in progress or starts a new one, and sets its pace.
func (sc *scrubber) begin() time.Time {
	fast := sc.restart.Swap(false)
	if fast {
		select { // this pass is what the kick asked for
		case <-sc.kick:
		default:
		}
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.inPass || fast {
		sc.inPass, sc.pos = true, 0
		sc.st.Pass++
		sc.st.Started = time.Now()
		sc.st.Shards, sc.st.Bytes, sc.st.Corrupt = 0, 0, 0
		rate := sc.bandwidth
		if !fast {
			var used int64
			for _, d := range sc.s.disks {
				used += d.used.Load()
			}
			rate = min(sc.bandwidth, max(minScrubRate, int64(float64(used)/sc.interval.Seconds())))
		}
		sc.st.Rate = rate
	}
	sc.st.Running = true
	return sc.st.Started
}

func (sc *scrubber) finish() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.inPass, sc.pos = false, 0
	sc.st.Running = false
	sc.st.Completed = sc.st.Pass
	sc.st.Finished = time.Now()
}

// pass verifies every shard from the remembered position on.
func (sc *scrubber) pass(ctx context.Context) error {
	sc.mu.Lock()
	p := &pacer{ctx: ctx, rate: float64(sc.st.Rate), start: time.Now(), restart: &sc.restart}
	sc.mu.Unlock()
	units := len(sc.s.disks) * 256
	for {
		sc.mu.Lock()
		pos := sc.pos
		sc.mu.Unlock()
		if pos >= units {
			return nil
		}
		d := sc.s.disks[pos/256]
		if d.lock != nil {
			if err := sc.dir(ctx, d, pos%256, p); err != nil {
				return err
			}
		}
		sc.mu.Lock()
		sc.pos++
		sc.mu.Unlock()
	}
}

// dir verifies the shards of one of a disk's 256 shard directories.
func (sc *scrubber) dir(ctx context.Context, d *disk, prefix int, p *pacer) error {
	ents, err := os.ReadDir(fmt.Sprintf("%s/%02x", d.shards, prefix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		sc.s.log.Warn("scrub: list shards", "disk", d.path, "err", err)
	}
	for _, e := range ents {
		if sc.restart.Load() {
			return errRestart
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		id := e.Name()
		if !e.Type().IsRegular() || !ValidShardID(id) {
			continue
		}
		n, err := sc.s.verifyShard(ctx, id, p)
		switch {
		case err == nil:
		case errors.Is(err, errRestart), ctx.Err() != nil:
			return err
		case errors.Is(err, ErrNotFound):
			continue // deleted since the listing
		case errors.Is(err, ErrCorrupt):
			sc.mu.Lock()
			sc.st.Corrupt++
			sc.st.TotalCorrupt++
			sc.pending = append(sc.pending, CorruptShard{ID: id, Disk: d.id, Reason: "scrub: " + err.Error()})
			sc.mu.Unlock()
			sc.flush(ctx)
		default:
			sc.s.log.Warn("scrub: verify shard", "shard", id, "disk", d.path, "err", err)
			continue
		}
		sc.mu.Lock()
		sc.st.Shards++
		sc.st.TotalShards++
		sc.st.Bytes += n
		sc.st.TotalBytes += n
		sc.mu.Unlock()
	}
	return nil
}

// flush hands the corrupt shards found so far to the report function.
func (sc *scrubber) flush(ctx context.Context) {
	sc.mu.Lock()
	bad := sc.pending
	sc.pending = nil
	sc.mu.Unlock()
	if len(bad) == 0 || sc.report == nil {
		return
	}
	if err := sc.report(ctx, bad); err != nil {
		sc.s.log.Warn("scrub: report corrupt shards; will retry", "shards", len(bad), "err", err)
		sc.mu.Lock()
		sc.pending = append(bad, sc.pending...)
		sc.mu.Unlock()
	}
}

// pacer is the writer a scrub verification sends verified data to: it
// sleeps as needed to keep the pass at rate bytes/s.
type pacer struct {
	ctx     context.Context
	rate    float64
	start   time.Time
	n       int64
	restart *atomic.Bool
}

func (p *pacer) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	due := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	wait := time.Until(due)
	if wait < -time.Second {
		// Far behind (a slow disk, a long pause): catch up gently rather
		// than in a burst at full disk speed.
		p.start = p.start.Add(-wait - time.Second)
	}
	for wait > 0 {
		// In slices, so that a requested restart is not kept waiting.
		step := min(wait, 100*time.Millisecond)
		t := time.NewTimer(step)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return 0, p.ctx.Err()
		case <-t.C:
		}
		if p.restart.Load() {
			return 0, errRestart
		}
		wait -= step
	}
	return len(b), nil
}
