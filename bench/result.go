package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured: only the operations that started after the
// warm-up, and for latencies only those that succeeded. It marshals to the
// JSON that `talus bench --json` prints.
type Result struct {
	Target      string   `json:"target"`
	Workload    Workload `json:"workload"`
	Mix         string   `json:"mix,omitempty"`
	Size        string   `json:"size"`
	Concurrency int      `json:"concurrency"`
	// Objects is how many objects were stored before the run.
	Objects int `json:"prefilled,omitempty"`
	// Bucket and Prefix say where the run's objects went.
	Bucket string    `json:"bucket"`
	Prefix string    `json:"prefix"`
	Start  time.Time `json:"start"`
	Warmup float64   `json:"warmup_s"`
	// Seconds is the length of the measurement, to the end of its last
	// operation.
	Seconds     float64 `json:"seconds"`
	Interrupted bool    `json:"interrupted,omitempty"`
	// Total sums every operation; Ops has one entry per kind of operation
	// the workload does.
	Total OpResult   `json:"total"`
	Ops   []OpResult `json:"ops"`
	// Errors counts failures by operation and kind, most frequent first.
	Errors []ErrorCount `json:"errors"`
	// Timeline has one sample per second of the measurement.
	Timeline []Sample `json:"timeline"`
	// Cleanup says what clean-up removed.
	Cleanup string `json:"cleanup,omitempty"`
}

// OpResult measures one kind of operation.
type OpResult struct {
	Op        string  `json:"op"`
	Ops       int64   `json:"ops"` // succeeded
	Errors    int64   `json:"errors"`
	Bytes     int64   `json:"bytes"`
	OpsPerSec float64 `json:"ops_per_s"`
	MiBPerSec float64 `json:"mib_per_s"`
	Latency   Latency `json:"latency_ms"`
	// TTFB is the time to the first byte of a get's body.
	TTFB *Latency `json:"ttfb_ms,omitempty"`
}

// Latency summarizes a latency distribution, in milliseconds. Min, Max and
// Mean are exact; the percentiles are within RelativeError.
type Latency struct {
	Mean  float64 `json:"mean"`
	Min   float64 `json:"min"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
	// Hist is the distribution itself, for charts and comparisons.
	Hist *Histogram `json:"-"`
}

func newLatency(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{
		Mean: ms(h.Mean()), Min: ms(h.Min()), Max: ms(h.Max()),
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)),
		Count: h.Count(), Hist: h,
	}
}

// ErrorCount counts failures of one kind of one operation.
type ErrorCount struct {
	Op    string `json:"op"`
	Kind  string `json:"kind"` // see ErrorKind
	Count int64  `json:"count"`
	// Example is the message of the first such failure.
	Example string `json:"example"`
}

// Sample covers one interval (a second; the last may be shorter) of the
// measurement.
type Sample struct {
	// T is when the interval ended, in seconds from the measurement start.
	T       float64 `json:"t"`
	Seconds float64 `json:"seconds"`
	Ops     int64   `json:"ops"` // succeeded
	Bytes   int64   `json:"bytes"`
	Errors  int64   `json:"errors"`
	// MeanLatency is the mean latency of the interval's successful
	// operations, in milliseconds.
	MeanLatency float64 `json:"mean_latency_ms"`
}

func newSample(t, d time.Duration, delta totals) Sample {
	s := Sample{T: t.Seconds(), Seconds: d.Seconds(), Ops: delta.ops, Bytes: delta.bytes, Errors: delta.errs}
	if delta.ops > 0 {
		s.MeanLatency = float64(delta.latNs) / float64(delta.ops) / 1e6
	}
	return s
}

// plus extends s by the interval t that follows it.
func (s Sample) plus(t Sample) Sample {
	u := Sample{T: t.T, Seconds: s.Seconds + t.Seconds, Ops: s.Ops + t.Ops, Bytes: s.Bytes + t.Bytes, Errors: s.Errors + t.Errors}
	if u.Ops > 0 {
		u.MeanLatency = (s.MeanLatency*float64(s.Ops) + t.MeanLatency*float64(t.Ops)) / float64(u.Ops)
	}
	return u
}

// OpsPerSec is the interval's rate of successful operations.
func (s Sample) OpsPerSec() float64 { return float64(s.Ops) / s.Seconds }

// MiBPerSec is the interval's throughput.
func (s Sample) MiBPerSec() float64 { return float64(s.Bytes) / (1 << 20) / s.Seconds }

// result merges the workers' measurements.
func (r *run) result(begin time.Time, elapsed time.Duration, timeline []Sample, interrupted bool) *Result {
	res := &Result{
		Target:      r.t.String(),
		Workload:    r.cfg.Workload,
		Size:        r.cfg.Sizes.String(),
		Concurrency: r.cfg.Concurrency,
		Objects:     r.cfg.Objects,
		Bucket:      r.bucket,
		Prefix:      r.prefix,
		Start:       begin,
		Warmup:      r.cfg.Warmup.Seconds(),
		Seconds:     elapsed.Seconds(),
		Interrupted: interrupted,
		Timeline:    timeline,
		Errors:      []ErrorCount{},
	}
	if r.cfg.Workload == WorkloadMixed {
		res.Mix = r.cfg.Mix.String()
	}
	var all Histogram
	total := OpResult{Op: "total"}
	for o := range numOps {
		if !r.does(o) {
			continue
		}
		or := OpResult{Op: o.String()}
		var h Histogram
		for _, w := range r.workers {
			st := &w.stats[o]
			h.Merge(&st.lat)
			or.Ops += st.ok
			or.Bytes += st.bytes
			or.Errors += st.failed
		}
		r.rates(&or, elapsed)
		or.Latency = newLatency(&h)
		if o == opGet {
			var t Histogram
			for _, w := range r.workers {
				t.Merge(&w.ttfb)
			}
			l := newLatency(&t)
			or.TTFB = &l
		}
		res.Ops = append(res.Ops, or)
		all.Merge(&h)
		total.Ops += or.Ops
		total.Bytes += or.Bytes
		total.Errors += or.Errors
	}
	r.rates(&total, elapsed)
	total.Latency = newLatency(&all)
	res.Total = total

	byKey := make(map[errKey]*ErrorCount)
	for _, w := range r.workers {
		for k, e := range w.errs {
			if m := byKey[k]; m != nil {
				m.Count += e.Count
			} else {
				c := *e
				byKey[k] = &c
			}
		}
	}
	for _, e := range byKey {
		res.Errors = append(res.Errors, *e)
	}
	slices.SortFunc(res.Errors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Op, b.Op), cmp.Compare(a.Kind, b.Kind))
	})
	return res
}

// does reports whether the workload performs o.
func (r *run) does(o op) bool {
	switch r.cfg.Workload {
	case WorkloadPut:
		return o == opPut
	case WorkloadGet:
		return o == opGet
	case WorkloadList:
		return o == opList
	case WorkloadDelete:
		return o == opDelete
	}
	m := r.cfg.Mix
	// A mixed run puts in place of what it cannot do with an empty pool.
	return o == opPut || (o == opGet && m.Get > 0) || (o == opDelete && m.Delete > 0) || (o == opStat && m.Stat > 0)
}

func (r *run) rates(or *OpResult, elapsed time.Duration) {
	if s := elapsed.Seconds(); s > 0 {
		or.OpsPerSec = float64(or.Ops) / s
		or.MiBPerSec = float64(or.Bytes) / (1 << 20) / s
	}
}

// WriteTable writes res as a human-readable table.
func (res *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	what := string(res.Workload)
	if res.Mix != "" {
		what += " (" + res.Mix + ")"
	}
	fmt.Fprintf(&b, "%s, %s objects, %d workers, %.1fs against %s", what, res.Size,
		res.Concurrency, res.Seconds, res.Target)
	if res.Interrupted {
		b.WriteString(" (interrupted)")
	}
	b.WriteString("; latencies in ms\n\n")
	// The table is right-aligned; names padded to one width read as a
	// left-aligned first column.
	width := len("total")
	for _, or := range res.Ops {
		width = max(width, len(or.Op))
		if or.TTFB != nil {
			width = max(width, len(or.Op+" ttfb"))
		}
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tops\tops/s\tMiB/s\tmean\tp50\tp90\tp99\tp99.9\tmax\terrors\t\n", width, "op")
	row := func(name string, or OpResult, l Latency, counts bool) {
		name = fmt.Sprintf("%-*s", width, name)
		if counts {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t", name, or.Ops, or.OpsPerSec, or.MiBPerSec)
		} else {
			fmt.Fprintf(tw, "%s\t\t\t\t", name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t", ms(l.Mean), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
		if counts {
			fmt.Fprintf(tw, "%d\t\n", or.Errors)
		} else {
			fmt.Fprint(tw, "\t\n")
		}
	}
	for _, or := range res.Ops {
		row(or.Op, or, or.Latency, true)
		if or.TTFB != nil {
			row(or.Op+" ttfb", or, *or.TTFB, false)
		}
	}
	if len(res.Ops) > 1 {
		row("total", res.Total, res.Total.Latency, true)
	}
	tw.Flush()
	if len(res.Errors) > 0 {
		b.WriteString("\nerrors:\n")
		for _, e := range res.Errors {
			fmt.Fprintf(&b, "  %s %s: %d (e.g. %s)\n", e.Op, e.Kind, e.Count, e.Example)
		}
	}
	if res.Cleanup != "" {
		fmt.Fprintf(&b, "\nclean-up: %s\n", res.Cleanup)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms formats milliseconds with three significant digits or so.
func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
