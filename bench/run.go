package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of a run.
const (
	DefaultDuration    = 30 * time.Second
	DefaultConcurrency = 16
	DefaultSize        = 1 << 20
	DefaultListPage    = 1000
	// MaxDuration bounds every run, including one bounded only by Count.
	MaxDuration = 24 * time.Hour
	// MaxConcurrency bounds the number of workers.
	MaxConcurrency = 10000

	// An operation still running this long after the end of the run is
	// cancelled and counted as a Timeout, so that one stuck request cannot
	// hold the run open.
	stragglerGrace = time.Minute
	cleanUpTimeout = 10 * time.Minute
	// Prefill at most this many objects and bytes unless told otherwise.
	defaultObjects   = 2500
	prefillByteLimit = 1 << 30
	// readBufSize matches the S3 transport's read buffer, so that reads
	// of response bodies bypass it instead of copying through it.
	readBufSize = 64 << 10
)

// Config describes a run. Only Target and Workload are required.
type Config struct {
	Target   Target
	Workload Workload
	// Mix weighs the mixed workload's operations; zero means DefaultMix.
	Mix Mix
	// Sizes of the objects written; zero means DefaultSize.
	Sizes Sizes
	// Concurrency is the number of workers, each with one request in
	// flight at a time; default DefaultConcurrency.
	Concurrency int
	// Duration is how long to measure, after the warm-up. Zero means
	// DefaultDuration, or MaxDuration if Count is set.
	Duration time.Duration
	// Count, if positive, ends the measurement after this many operations.
	Count int64
	// Warmup is how long to run the workload before measuring. The delete
	// workload has none: each of its operations uses up an object.
	Warmup time.Duration
	// Objects is how many objects the get, mixed, list and delete workloads
	// store before they start. Zero picks enough for the workers to choose
	// from without rewriting a GiB: max(Concurrency, min(2500, 1 GiB / mean
	// size)); for delete, Count if set.
	Objects int
	// ListPage is how many keys one list operation asks for (1-1000,
	// default DefaultListPage).
	ListPage int
	// Bucket to use. Empty means a new bucket named talus-bench-<random>.
	// A bucket the run did not create is left in place; the objects the run
	// wrote, all under a prefix of their own, are removed either way.
	Bucket string
	// NoCleanup leaves the objects and the bucket behind.
	NoCleanup bool
	// Seed makes the object sizes, keys, contents and the bucket name
	// reproducible; zero picks one at random.
	Seed uint64
	// Progress, if set, is called about once a second, from one goroutine.
	Progress func(Progress)
}

// Progress is a snapshot of a running benchmark.
type Progress struct {
	// Phase is "prefill", "warmup", "run" or "cleanup".
	Phase   string
	Elapsed time.Duration // in the phase
	// Done counts the phase's operations so far, failed ones included;
	// Total is how many it will do, or 0 if that depends on time.
	Done, Total int64
	Errors      int64 // failed operations in the phase so far
	// OpsPerSec and MiBPerSec are the rates over the last second.
	OpsPerSec, MiBPerSec float64
}

// String formats p as a one-line progress report.
func (p Progress) String() string {
	s := fmt.Sprintf("%-7s %5s %9.0f ops/s %9.2f MiB/s %6d errors", p.Phase,
		p.Elapsed.Round(time.Second), p.OpsPerSec, p.MiBPerSec, p.Errors)
	if p.Total > 0 {
		s += fmt.Sprintf("  %d/%d", p.Done, p.Total)
	}
	return s
}

// check validates c and fills in its defaults.
func (c *Config) check() error {
	if c.Target == nil {
		return errors.New("no target to benchmark")
	}
	switch c.Workload {
	case WorkloadPut, WorkloadGet, WorkloadList, WorkloadDelete:
	case WorkloadMixed:
		if c.Mix == (Mix{}) {
			c.Mix = DefaultMix()
		}
		if c.Mix.Get < 0 || c.Mix.Put < 0 || c.Mix.Delete < 0 || c.Mix.Stat < 0 || c.Mix.total() == 0 {
			return fmt.Errorf("mix %v: weights must be non-negative and not all zero", c.Mix)
		}
	default:
		return fmt.Errorf("workload %q is not one of put, get, mixed, list, delete", c.Workload)
	}
	if c.Sizes == (Sizes{}) {
		c.Sizes = Sizes{DefaultSize, DefaultSize}
	}
	if c.Sizes.Min < 0 || c.Sizes.Max < c.Sizes.Min {
		return fmt.Errorf("object sizes %d-%d are not a range of byte counts", c.Sizes.Min, c.Sizes.Max)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Concurrency < 0 || c.Concurrency > MaxConcurrency {
		return fmt.Errorf("concurrency %d is not between 1 and %d", c.Concurrency, MaxConcurrency)
	}
	if c.Count < 0 {
		return fmt.Errorf("count %d is negative", c.Count)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
		if c.Count > 0 {
			c.Duration = MaxDuration
		}
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return fmt.Errorf("duration %v is not between 0 and %v", c.Duration, MaxDuration)
	}
	if c.Warmup < 0 || c.Warmup > MaxDuration {
		return fmt.Errorf("warm-up %v is not between 0 and %v", c.Warmup, MaxDuration)
	}
	if c.Workload == WorkloadDelete {
		c.Warmup = 0
	}
	if c.ListPage == 0 {
		c.ListPage = DefaultListPage
	}
	if c.ListPage < 1 || c.ListPage > 1000 {
		return fmt.Errorf("list page of %d keys is not between 1 and 1000", c.ListPage)
	}
	if c.Objects < 0 {
		return fmt.Errorf("object count %d is negative", c.Objects)
	}
	if c.Objects == 0 {
		switch {
		case c.Workload == WorkloadPut:
		case c.Workload == WorkloadDelete && c.Count > 0:
			c.Objects = int(min(c.Count, 1<<30))
		default:
			c.Objects = max(c.Concurrency, int(min(defaultObjects, prefillByteLimit/max(c.Sizes.Mean(), 1))))
		}
	}
	if c.Workload == WorkloadPut {
		c.Objects = 0
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return nil
}

// Run runs the benchmark cfg describes and returns its measurements. The run
// ends when the duration or the count is reached, the delete workload runs
// out of objects, or ctx is cancelled: then the Result covers what was
// measured so far and says it was interrupted. Clean-up runs in every case
// unless cfg.NoCleanup, even after ctx is cancelled; if only the clean-up
// fails, Run returns the Result together with the error.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := newRun(cfg)
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	if !cfg.NoCleanup {
		defer func() {
			summary, cerr := r.cleanUp(ctx)
			if res != nil {
				res.Cleanup = summary
			}
			if cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
	}
	if err := r.prefill(ctx); err != nil {
		return nil, err
	}
	return r.measure(ctx), nil
}

// run is the state of one Run.
type run struct {
	cfg     Config
	t       Target
	bucket  string
	created bool   // by this run, so it deletes it
	prefix  string // of every key this run writes
	gen     *Generator
	workers []*worker
	shared  []object // the get workload's objects, read-only once prefilled

	measureStart, end time.Time
	issued            atomic.Int64 // measured operations started, for Count
	// uncertain is set once an operation fails: the store may still
	// complete it after this side gave up, so clean-up must look twice.
	uncertain atomic.Bool
}

type object struct {
	key  string
	size int64
}

func newRun(cfg Config) *run {
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0))
	id := strconv.FormatUint(rnd.Uint64()>>32, 16)
	r := &run{
		cfg:    cfg,
		t:      cfg.Target,
		bucket: cfg.Bucket,
		prefix: "bench-" + id + "/",
		gen:    NewGenerator(rnd.Uint64()),
	}
	if r.bucket == "" {
		r.bucket = "talus-bench-" + id
	}
	for i := range cfg.Concurrency {
		w := &worker{r: r, id: i, rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
		w.body.g = r.gen
		if cfg.Workload == WorkloadGet || cfg.Workload == WorkloadMixed {
			w.buf = make([]byte, readBufSize)
		}
		r.workers = append(r.workers, w)
	}
	return r
}

// setUp creates the bucket unless the user named one that exists.
func (r *run) setUp(ctx context.Context) error {
	exists, err := r.t.BucketExists(ctx, r.bucket)
	switch {
	case err != nil:
		return err
	case exists && r.cfg.Bucket == "":
		// Never adopt, and later delete, someone else's bucket.
		return fmt.Errorf("bucket %s already exists", r.bucket)
	case exists:
		return nil
	}
	if err := r.t.CreateBucket(ctx, r.bucket); err != nil {
		return err
	}
	r.created = true
	return nil
}

// prefill stores cfg.Objects objects, dealt round-robin to the workers.
func (r *run) prefill(ctx context.Context) error {
	n := r.cfg.Objects
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wt := r.watch("prefill", int64(n), time.Time{})
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() {
			for i := w.id; i < n && ctx.Err() == nil; i += len(r.workers) {
				start := time.Now()
				obj, err := w.put(ctx)
				w.live.add(obj.size, time.Since(start), err)
				if err != nil {
					r.uncertain.Store(true)
					cancel(err)
					return
				}
				w.pool = append(w.pool, obj)
			}
		})
	}
	wg.Wait()
	wt.stop()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	if r.cfg.Workload == WorkloadGet {
		for _, w := range r.workers {
			r.shared = append(r.shared, w.pool...)
			w.pool = nil
		}
	}
	if r.cfg.Workload == WorkloadList {
		for _, w := range r.workers {
			w.pool = nil
		}
	}
	return nil
}

// measure runs the workload through the warm-up and the measurement.
func (r *run) measure(ctx context.Context) *Result {
	begin := time.Now()
	r.measureStart = begin.Add(r.cfg.Warmup)
	r.end = r.measureStart.Add(r.cfg.Duration)
	opCtx, cancel := context.WithDeadline(ctx, r.end.Add(stragglerGrace))
	defer cancel()
	wt := r.watch("run", r.cfg.Count, r.measureStart)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.loop(opCtx, ctx) })
	}
	wg.Wait()
	elapsed := max(time.Since(r.measureStart), 0)
	timeline := wt.stop()
	return r.result(begin, elapsed, timeline, ctx.Err() != nil)
}

// worker issues one request at a time. Everything in it belongs to its
// goroutine except live, which the progress reports read.
type worker struct {
	r    *run
	id   int
	rnd  *rand.Rand
	body Body
	buf  []byte // for GET bodies
	key  []byte // scratch for building keys
	seq  int
	pool []object // this worker's objects (mixed, delete)

	listAfter string // where this worker's listing continues

	live  liveCounters
	stats [numOps]opStats // measured operations only
	ttfb  Histogram
	errs  map[errKey]*ErrorCount
}

type opStats struct {
	lat    Histogram
	ok     int64
	bytes  int64
	failed int64
}

type errKey struct {
	op   op
	kind string
}

// loop runs operations until the run ends. ctx bounds each operation; parent
// is the caller's context, whose cancellation stops the run without counting
// the operations it cut short as failures.
func (w *worker) loop(ctx, parent context.Context) {
	r := w.r
	for {
		start := time.Now()
		if !start.Before(r.end) || parent.Err() != nil {
			return
		}
		o, ok := w.next()
		if !ok {
			return
		}
		measured := !start.Before(r.measureStart)
		if measured && r.cfg.Count > 0 && r.issued.Add(1) > r.cfg.Count {
			return
		}
		n, ttfb, err := w.do(ctx, o, start)
		lat := time.Since(start)
		if err != nil {
			r.uncertain.Store(true)
			if parent.Err() != nil {
				return
			}
		}
		w.live.add(n, lat, err)
		if !measured {
			continue
		}
		st := &w.stats[o]
		if err != nil {
			st.failed++
			w.countError(o, err)
			continue
		}
		st.ok++
		st.bytes += n
		st.lat.Record(lat)
		if o == opGet {
			w.ttfb.Record(ttfb)
		}
	}
}

// next picks the next operation; false means there is nothing left to do.
func (w *worker) next() (op, bool) {
	switch w.r.cfg.Workload {
	case WorkloadPut:
		return opPut, true
	case WorkloadGet:
		return opGet, len(w.r.shared) > 0
	case WorkloadList:
		return opList, true
	case WorkloadDelete:
		return opDelete, len(w.pool) > 0
	}
	m := w.r.cfg.Mix
	o := m.pick(w.rnd.IntN(m.total()))
	if o != opPut && len(w.pool) == 0 {
		o = opPut // nothing of its own left to read or delete
	}
	return o, true
}

// do performs one operation and returns the bytes it moved and, for a get,
// the time to its first byte.
func (w *worker) do(ctx context.Context, o op, start time.Time) (int64, time.Duration, error) {
	r := w.r
	switch o {
	case opPut:
		obj, err := w.put(ctx)
		if err != nil {
			return 0, 0, err
		}
		if r.cfg.Workload == WorkloadMixed {
			w.pool = append(w.pool, obj)
		}
		return obj.size, 0, nil
	case opGet:
		obj := w.pick()
		rc, err := r.t.Get(ctx, r.bucket, obj.key)
		if err != nil {
			return 0, 0, err
		}
		n, ttfb, err := drain(rc, w.buf, start)
		rc.Close()
		if err != nil {
			return n, ttfb, fmt.Errorf("get %s/%s: %w", r.bucket, obj.key, err)
		}
		if n != obj.size {
			return n, ttfb, fmt.Errorf("get %s/%s: read %d bytes of %d: %w", r.bucket, obj.key, n, obj.size, ErrWrongSize)
		}
		return n, ttfb, nil
	case opStat:
		obj := w.pick()
		size, err := r.t.Stat(ctx, r.bucket, obj.key)
		if err == nil && size != obj.size {
			err = fmt.Errorf("stat %s/%s: size %d, wrote %d: %w", r.bucket, obj.key, size, obj.size, ErrWrongSize)
		}
		return 0, 0, err
	case opDelete:
		// Taken out of the pool whatever the outcome: after a failure the
		// object's state is unknown, and clean-up lists what is left.
		return 0, 0, r.t.Delete(ctx, r.bucket, w.take().key)
	case opList:
		keys, more, err := r.t.List(ctx, r.bucket, r.prefix, w.listAfter, r.cfg.ListPage)
		w.listAfter = ""
		if err == nil && more && len(keys) > 0 {
			w.listAfter = keys[len(keys)-1]
		}
		return 0, 0, err
	}
	panic("unknown operation " + o.String())
}

// put stores a new object of a size drawn from the distribution.
func (w *worker) put(ctx context.Context) (object, error) {
	r := w.r
	w.key = append(w.key[:0], r.prefix...)
	w.key = append(w.key, 'w')
	w.key = strconv.AppendInt(w.key, int64(w.id), 10)
	w.key = append(w.key, '-')
	w.key = strconv.AppendInt(w.key, int64(w.seq), 10)
	w.seq++
	obj := object{key: string(w.key), size: r.cfg.Sizes.draw(w.rnd)}
	w.body.Reset(w.rnd.Uint64(), obj.size)
	return obj, r.t.Put(ctx, r.bucket, obj.key, &w.body, obj.size)
}

// pick returns an object to read.
func (w *worker) pick() object {
	if w.r.cfg.Workload == WorkloadGet {
		return w.r.shared[w.rnd.IntN(len(w.r.shared))]
	}
	return w.pool[w.rnd.IntN(len(w.pool))]
}

// take removes an object to delete from the worker's pool: the oldest for
// the delete workload, a random one for mixed.
func (w *worker) take() object {
	i := 0
	if w.r.cfg.Workload == WorkloadMixed {
		i = w.rnd.IntN(len(w.pool))
	}
	obj := w.pool[i]
	last := len(w.pool) - 1
	w.pool[i] = w.pool[last]
	w.pool[last] = object{}
	w.pool = w.pool[:last]
	return obj
}

// countError counts a measured failure by operation and kind, keeping the
// first message of each as an example.
func (w *worker) countError(o op, err error) {
	if w.errs == nil {
		w.errs = make(map[errKey]*ErrorCount)
	}
	k := errKey{o, ErrorKind(err)}
	e := w.errs[k]
	if e == nil {
		e = &ErrorCount{Op: o.String(), Kind: k.kind, Example: err.Error()}
		w.errs[k] = e
	}
	e.Count++
}

// drain reads r to the end into buf, timing the first byte from start.
func drain(r io.Reader, buf []byte, start time.Time) (n int64, ttfb time.Duration, err error) {
	for {
		k, err := r.Read(buf)
		if n == 0 && (k > 0 || err != nil) {
			ttfb = time.Since(start)
		}
		n += int64(k)
		if err == io.EOF {
			return n, ttfb, nil
		}
		if err != nil {
			return n, ttfb, err
		}
	}
}

// cleanUp deletes every object under the run's prefix, and the bucket if
// the run created it. It runs to completion (or cleanUpTimeout) even when
// ctx is already cancelled: an interrupted run should not leave data behind.
func (r *run) cleanUp(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanUpTimeout)
	defer cancel()
	wt := r.watch("cleanup", 0, time.Time{})
	var deleted int64
	var err error
	for pass := 1; ; pass++ {
		var n int64
		n, err = r.deleteAll(ctx)
		deleted += n
		// A write that failed or was cut short on this side may still
		// complete on the server's: look again once it has had the time.
		if err != nil || n == 0 || !r.uncertain.Load() || pass == 5 {
			break
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	wt.stop()
	summary := fmt.Sprintf("deleted %d objects", deleted)
	if err != nil {
		return summary, fmt.Errorf("clean up: %w", err)
	}
	if !r.created {
		return summary, nil
	}
	if err := r.t.DeleteBucket(ctx, r.bucket); err != nil {
		return summary, fmt.Errorf("clean up: %w", err)
	}
	return summary + " and bucket " + r.bucket, nil
}

// deleteAll deletes the objects a listing of the run's prefix finds, one
// worker per goroutine, and returns how many it deleted.
func (r *run) deleteAll(ctx context.Context) (int64, error) {
	keys := make(chan string, 2*len(r.workers))
	var (
		deleted, failed atomic.Int64
		mu              sync.Mutex
		firstErr        error
		wg              sync.WaitGroup
	)
	for _, w := range r.workers {
		wg.Go(func() {
			for k := range keys {
				start := time.Now()
				err := r.t.Delete(ctx, r.bucket, k)
				w.live.add(0, time.Since(start), err)
				if err == nil {
					deleted.Add(1)
					continue
				}
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	listErr := r.eachKey(ctx, func(k string) bool {
		select {
		case keys <- k:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(keys)
	wg.Wait()
	switch {
	case listErr != nil:
		return deleted.Load(), listErr
	case failed.Load() > 0:
		return deleted.Load(), fmt.Errorf("%d objects could not be deleted, the first: %w", failed.Load(), firstErr)
	}
	return deleted.Load(), nil
}

// eachKey calls fn with every key under the run's prefix until fn returns
// false.
func (r *run) eachKey(ctx context.Context, fn func(string) bool) error {
	after := ""
	for {
		keys, more, err := r.t.List(ctx, r.bucket, r.prefix, after, 1000)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !fn(k) {
				return ctx.Err()
			}
		}
		if !more || len(keys) == 0 {
			return nil
		}
		after = keys[len(keys)-1]
	}
}

// liveCounters are a worker's running totals, written by the worker and
// read once a second for the progress reports and the timeline.
type liveCounters struct {
	ops, bytes, errs, latNs atomic.Int64
}

func (c *liveCounters) add(bytes int64, lat time.Duration, err error) {
	if err != nil {
		c.errs.Add(1)
		return
	}
	c.ops.Add(1)
	c.bytes.Add(bytes)
	c.latNs.Add(int64(lat))
}

type totals struct{ ops, bytes, errs, latNs int64 }

func (t totals) minus(u totals) totals {
	return totals{t.ops - u.ops, t.bytes - u.bytes, t.errs - u.errs, t.latNs - u.latNs}
}

func (r *run) totals() totals {
	var t totals
	for _, w := range r.workers {
		t.ops += w.live.ops.Load()
		t.bytes += w.live.bytes.Load()
		t.errs += w.live.errs.Load()
		t.latNs += w.live.latNs.Load()
	}
	return t
}

// watcher samples the workers' counters once a second for the progress
// reports and, in the measured part of a run, the timeline.
type watcher struct {
	quit     chan struct{}
	done     chan struct{}
	timeline []Sample
}

// watch starts sampling a phase. If measure is set the phase is the run:
// "warmup" until measure, "run" after it, with samples taken on whole
// seconds from measure on and kept for the timeline.
func (r *run) watch(phase string, total int64, measure time.Time) *watcher {
	wt := &watcher{quit: make(chan struct{}), done: make(chan struct{})}
	begin := time.Now()
	base := r.totals()
	go func() {
		defer close(wt.done)
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		warm := measure.After(begin)
		phaseStart := begin
		if !measure.IsZero() && !warm {
			phaseStart = measure
		}
		prev, prevT, next := base, phaseStart, phaseStart.Add(time.Second)
		for {
			due := next
			if warm && measure.Before(due) {
				due = measure
			}
			timer.Reset(time.Until(due))
			final := false
			select {
			case <-timer.C:
			case <-wt.quit:
				final = true
			}
			now, cur := time.Now(), r.totals()
			d, delta := now.Sub(prevT), cur.minus(prev)
			name := phase
			if warm {
				name = "warmup"
			}
			if !measure.IsZero() && !warm && d > 0 {
				s := newSample(now.Sub(measure), d, delta)
				if n := len(wt.timeline); final && n > 0 && d < time.Second/2 {
					// The operations in flight at the end finish in a
					// sliver of a second; as a sample of its own it would
					// show as a spike.
					s = wt.timeline[n-1].plus(s)
					wt.timeline = wt.timeline[:n-1]
				}
				wt.timeline = append(wt.timeline, s)
			}
			if !final && r.cfg.Progress != nil {
				done := cur.minus(base)
				r.cfg.Progress(Progress{
					Phase: name, Elapsed: now.Sub(phaseStart),
					Done: done.ops + done.errs, Total: total, Errors: done.errs,
					OpsPerSec: float64(delta.ops) / d.Seconds(),
					MiBPerSec: float64(delta.bytes) / (1 << 20) / d.Seconds(),
				})
			}
			if final {
				return
			}
			if warm && !now.Before(measure) {
				// The measurement starts: count from here, on its own
				// whole seconds.
				warm, base, phaseStart = false, cur, measure
				next = measure.Add(time.Second)
			}
			for !next.After(now) {
				next = next.Add(time.Second)
			}
			prev, prevT = cur, now
		}
	}()
	return wt
}

// stop takes a last sample and returns the timeline.
func (wt *watcher) stop() []Sample {
	close(wt.quit)
	<-wt.done
	return wt.timeline
}
