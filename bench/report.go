package bench

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Files Save writes into its directory.
const (
	ResultFile     = "result.json"
	TimelineFile   = "timeline.csv"
	ThroughputFile = "throughput.png"
	LatencyFile    = "latency.png"
)

// Save writes res into dir, creating it if need be: the JSON (ResultFile),
// the per-second timeline as CSV (TimelineFile) and two charts, throughput
// over time (ThroughputFile) and the latency distribution (LatencyFile).
func (res *Result) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	return errors.Join(
		writeFile(filepath.Join(dir, ResultFile), func(w io.Writer) error {
			_, err := w.Write(append(b, '\n'))
			return err
		}),
		writeFile(filepath.Join(dir, TimelineFile), res.WriteCSV),
		writeFile(filepath.Join(dir, ThroughputFile), res.throughputChart),
		writeFile(filepath.Join(dir, LatencyFile), res.latencyChart),
	)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	bw := bufio.NewWriter(f)
	err = errors.Join(write(bw), bw.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteCSV writes the timeline, one row per second of the measurement.
func (res *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"t_s", "seconds", "ops", "ops_per_s", "mib_per_s", "errors", "mean_latency_ms"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, s := range res.Timeline {
		cw.Write([]string{f(s.T), f(s.Seconds), strconv.FormatInt(s.Ops, 10), f(s.OpsPerSec()),
			f(s.MiBPerSec()), strconv.FormatInt(s.Errors, 10), f(s.MeanLatency)})
	}
	cw.Flush()
	return cw.Error()
}

func (res *Result) title() string {
	return fmt.Sprintf("%s %s x%d, %s", res.Workload, res.Size, res.Concurrency, res.Target)
}

// throughputChart draws MiB/s (when the workload moves bytes) above ops/s,
// second by second.
func (res *Result) throughputChart(w io.Writer) error {
	var plots []*plot.Plot
	if res.Total.Bytes > 0 {
		plots = append(plots, timePlot(res.Timeline, "MiB/s", Sample.MiBPerSec))
	}
	plots = append(plots, timePlot(res.Timeline, "ops/s", Sample.OpsPerSec))
	plots[0].Title.Text = res.title()

	const width, rowHeight = 8 * vg.Inch, 3 * vg.Inch
	img := vgimg.New(width, rowHeight*vg.Length(len(plots)))
	dc := draw.New(img)
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func timePlot(tl []Sample, unit string, y func(Sample) float64) *plot.Plot {
	p := plot.New()
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = unit
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())
	xys := make(plotter.XYs, 0, len(tl))
	for _, s := range tl {
		if s.Seconds > 0 {
			xys = append(xys, plotter.XY{X: s.T, Y: y(s)})
		}
	}
	if len(xys) > 0 {
		if l, err := plotter.NewLine(xys); err == nil {
			l.Color = plotutil.Color(0)
			l.Width = vg.Points(1.5)
			p.Add(l)
		}
	}
	return p
}

// latencyChart draws each operation's latency by percentile, on an axis
// that gives each "nine" (90%, 99%, 99.9%, ...) the same width, so that the
// tail is as visible as the median.
func (res *Result) latencyChart(w io.Writer) error {
	p := plot.New()
	p.Title.Text = res.title()
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	maxNines := 1.0
	i := 0
	add := func(name string, l Latency) {
		if l.Hist == nil || l.Hist.Count() == 0 {
			return
		}
		xys, nines := percentileCurve(l.Hist)
		maxNines = max(maxNines, nines)
		line, err := plotter.NewLine(xys)
		if err != nil {
			return
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		i++
		p.Add(line)
		p.Legend.Add(name, line)
	}
	for _, or := range res.Ops {
		add(or.Op, or.Latency)
		if or.TTFB != nil {
			add(or.Op+" ttfb", *or.TTFB)
		}
	}
	var ticks []plot.Tick
	for n := 0; float64(n) <= math.Ceil(maxNines); n++ {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: ninesLabel(n)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = 0, math.Ceil(maxNines)
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

// percentileCurve returns points (nines(q), latency at q) for the top of each
// bucket of h, where nines(q) = -log10(1-q): 1 at the 90th percentile, 2 at
// the 99th. The last point, q = 1, is drawn at the resolution n values give,
// nines = log10(n).
func percentileCurve(h *Histogram) (plotter.XYs, float64) {
	n := float64(h.Count())
	top := math.Log10(n)
	var xys plotter.XYs
	var seen uint64
	for v, c := range h.Buckets() {
		if seen == 0 {
			xys = append(xys, plotter.XY{X: 0, Y: float64(v) / 1e6})
		}
		seen += c
		x := top
		if q := float64(seen) / n; q < 1 {
			x = -math.Log10(1 - q)
		}
		xys = append(xys, plotter.XY{X: x, Y: float64(v) / 1e6})
	}
	return xys, top
}

func ninesLabel(n int) string {
	// 1 - 10^-n as a percentage: 0%, 90%, 99%, 99.9%, ...
	return strconv.FormatFloat(100*(1-math.Pow(10, -float64(n))), 'f', max(n-2, 0), 64) + "%"
}
