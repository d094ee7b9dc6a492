package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The section of the results file this program owns lies between these
// lines, which it writes too.
const (
	beginMarker = "<!-- compare:begin -->"
	endMarker   = "<!-- compare:end -->"
)

// Charts writeCharts makes.
const (
	throughputChart = "compare-throughput.png"
	latencyChart    = "compare-p99.png"
)

// markdown renders the comparison, with pre (Markdown) under the heading.
// chartDir is where the charts are relative to the results file, or "" to
// leave them out.
func (c *comparison) markdown(pre, chartDir string) string {
	a, b := c.targets[0], c.targets[1]
	var s strings.Builder
	s.WriteString(beginMarker + "\n")
	s.WriteString("<!-- Written by bench/compare.sh; running it again replaces everything down to the end marker. -->\n\n")
	fmt.Fprintf(&s, "## Side by side: %s and %s (`make compare`)\n\n", a, b)
	if pre = strings.TrimSpace(pre); pre != "" {
		s.WriteString(pre + "\n\n")
	}
	rounds := fmt.Sprintf("Medians of %d rounds", c.rounds)
	if c.rounds == 1 {
		rounds = "One round"
	}
	fmt.Fprintf(&s, "%s. Ratios are %s / %s: above 1 %s has the higher throughput, and for p99 below 1 the lower latency. "+
		"Throughput is in MiB/s for puts and gets of large objects, else in operations per second; p99 is over every "+
		"operation of a run (for mixed, its gets, puts, deletes and stats together).\n\n", rounds, a, b, a)
	fmt.Fprintf(&s, "| scenario | %s | %s | %s / %s | %s p99 | %s p99 | %s / %s | errors (%s, %s) |\n", a, b, a, b, a, b, a, b, a, b)
	s.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range c.scenarios {
		tpA, latA, errA := sc.medians(0)
		tpB, latB, errB := sc.medians(1)
		fmt.Fprintf(&s, "| %s | %s %s | %s %s | **%s** | %s ms | %s ms | **%s** | %d, %d |\n", sc.label,
			num(tpA), sc.unit(), num(tpB), sc.unit(), fixed2(ratio(tpA, tpB)),
			num(latA), num(latB), fixed2(ratio(latA, latB)), errA, errB)
	}
	if chartDir != "" {
		fmt.Fprintf(&s, "\n![median throughput, every round as a dot](%s)\n![median p99 latency, every round as a dot](%s)\n",
			filepath.ToSlash(filepath.Join(chartDir, throughputChart)), filepath.ToSlash(filepath.Join(chartDir, latencyChart)))
	}
	s.WriteString("\nEvery run, in the order they ran (latencies in ms; TTFB is a get's time to its first byte; " +
		"*others* and *idle peer* are the cores that other processes and the store not under test kept busy meanwhile):\n\n")
	s.WriteString("| scenario | round | target | ops/s | MiB/s | p50 | p99 | p99.9 | TTFB p99 | errors | others | idle peer |\n")
	s.WriteString("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range c.scenarios {
		for _, r := range c.inOrder(sc) {
			f := figuresOf(r.res)
			ttfb := ""
			if f.ttfbP99 > 0 {
				ttfb = num(f.ttfbP99)
			}
			others, idle := "", ""
			if r.hasCPU {
				others, idle = strconv.FormatFloat(r.others, 'f', 2, 64), strconv.FormatFloat(r.idle, 'f', 2, 64)
			}
			fmt.Fprintf(&s, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", sc.label, r.round, r.target,
				num(f.opsPerSec), num(f.mibPerSec), num(f.p50), num(f.p99), num(f.p999), ttfb, f.errors, others, idle)
		}
	}
	s.WriteString("\n" + endMarker + "\n")
	return s.String()
}

// inOrder returns a scenario's runs in the order they were made.
func (c *comparison) inOrder(sc *scenario) []runResult {
	var rs []runResult
	for _, r := range c.runs {
		if r.scenario == sc.name {
			rs = append(rs, r)
		}
	}
	return rs
}

// num formats a figure with about three significant digits, and thousands
// separated.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v >= 1000:
		digits := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		var b strings.Builder
		for i, d := range digits {
			if i > 0 && (len(digits)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(d)
		}
		return b.String()
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fixed2(v float64) string {
	if v == 0 {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// replaceSection writes section into the Markdown file name in place of
// the one between the markers, or at its end if it has none yet.
func replaceSection(name, section string) error {
	old, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("update %s: %w", name, err)
	}
	doc := string(old)
	begin := strings.Index(doc, beginMarker)
	end := strings.Index(doc, endMarker)
	switch {
	case begin >= 0 && end > begin:
		rest := doc[end+len(endMarker):]
		rest = strings.TrimPrefix(rest, "\n")
		doc = doc[:begin] + section + rest
	case begin >= 0 || end >= 0:
		return fmt.Errorf("update %s: it has only one of the lines %q and %q", name, beginMarker, endMarker)
	default:
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("update %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("update %s: %w", name, err)
	}
	return nil
}

// writeCharts draws, per scenario, each target's median as a bar and each
// round as a dot: throughput into throughputChart, p99 into latencyChart.
func (c *comparison) writeCharts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	tp := func(sc *scenario, f figures) float64 { return sc.throughput(f) }
	lat := func(_ *scenario, f figures) float64 { return f.p99 }
	if err := c.chart(filepath.Join(dir, throughputChart), tp, func(sc *scenario) string { return sc.unit() }); err != nil {
		return err
	}
	return c.chart(filepath.Join(dir, latencyChart), lat, func(*scenario) string { return "p99 (ms)" })
}

func (c *comparison) chart(path string, value func(*scenario, figures) float64, unit func(*scenario) string) error {
	const cols = 4
	rows := (len(c.scenarios) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, sc := range c.scenarios {
		p, err := c.panel(sc, value, unit(sc))
		if err != nil {
			return fmt.Errorf("chart %s: %w", path, err)
		}
		grid[i/cols][i%cols] = p
	}
	const width, rowHeight = 12 * vg.Inch, 3 * vg.Inch
	img := vgimg.New(width, rowHeight*vg.Length(rows))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 6,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for i, row := range grid {
		for j, p := range row {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return nil
}

// panel is one scenario's bars: a target's median, with its rounds as dots.
func (c *comparison) panel(sc *scenario, value func(*scenario, figures) float64, unit string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = sc.short
	p.Y.Label.Text = unit
	p.Y.Tick.Marker = plainTicks{}
	p.Add(plotter.NewGrid())
	top := 0.0
	for t, runs := range sc.runs {
		var vals []float64
		var dots plotter.XYs
		for _, r := range runs {
			v := value(sc, figuresOf(r.res))
			vals = append(vals, v)
			dots = append(dots, plotter.XY{X: float64(t), Y: v})
			top = max(top, v)
		}
		bar, err := plotter.NewBarChart(plotter.Values{median(vals)}, vg.Points(40))
		if err != nil {
			return nil, err
		}
		bar.XMin = float64(t)
		bar.Color = plotutil.Color(t)
		bar.LineStyle.Width = 0
		p.Add(bar)
		rounds, err := plotter.NewScatter(dots)
		if err != nil {
			return nil, err
		}
		rounds.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
		p.Add(rounds)
	}
	p.NominalX(c.targets...)
	// Room above the highest dot, which would otherwise sit on the frame.
	p.Y.Min, p.Y.Max = 0, max(top*1.1, p.Y.Max)
	return p, nil
}

// plainTicks are gonum's default ticks labelled without trailing zeros
// ("500", not "500.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'g', 6, 64)
		}
	}
	return ticks
}
