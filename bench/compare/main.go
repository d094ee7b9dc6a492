// Command compare reports a side-by-side benchmark of two stores: it reads
// the `talus bench --json` results that bench/compare.sh collected, round
// after round, of the same scenarios against talus and against MinIO, and
// writes their medians and the ratios between them as a section of
// bench/RESULTS.md, together with charts.
//
//	go run ./bench/compare -runs DIR/runs.tsv -preamble DIR/preamble.md \
//	    -results bench/RESULTS.md -charts bench
//
// The runs file has one line per run: round, scenario, target and the path
// of the result JSON, separated by tabs, optionally followed by how many
// cores other processes kept busy during the run and how many the idle
// target did (which say how far to trust the run on a shared machine). Scenarios and targets are reported
// in the order they first appear; there must be exactly two targets, and the
// ratios are the first's figures over the second's.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/talusfs/talus/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	runsFile := fs.String("runs", "", "tab-separated runs: round, scenario, target, result JSON file")
	preamble := fs.String("preamble", "", "Markdown to put at the head of the section (machine, versions, commands)")
	results := fs.String("results", "", "Markdown file whose comparison section to write (replaced if there, else appended)")
	charts := fs.String("charts", "", "directory to write "+throughputChart+" and "+latencyChart+" into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runsFile == "" || fs.NArg() > 0 {
		return errors.New("give -runs FILE (and optionally -preamble, -results, -charts), no arguments")
	}
	runs, err := readRuns(*runsFile)
	if err != nil {
		return err
	}
	cmp, err := newComparison(runs)
	if err != nil {
		return err
	}
	var pre string
	if *preamble != "" {
		b, err := os.ReadFile(*preamble)
		if err != nil {
			return fmt.Errorf("read preamble: %w", err)
		}
		pre = string(b)
	}
	chartDir := ""
	if *charts != "" {
		if err := cmp.writeCharts(*charts); err != nil {
			return err
		}
		chartDir = *charts
		if *results != "" {
			// The section links the charts relative to where it lives.
			if rel, err := filepath.Rel(filepath.Dir(*results), *charts); err == nil {
				chartDir = rel
			}
		}
	}
	section := cmp.markdown(pre, chartDir)
	if *results == "" {
		fmt.Print(section)
		return nil
	}
	return replaceSection(*results, section)
}

// runResult is one run of one scenario against one target.
type runResult struct {
	round            int
	scenario, target string
	res              *bench.Result
	// others and idle are the cores other processes and the idle target
	// kept busy during the run; hasCPU says whether they were measured.
	others, idle float64
	hasCPU       bool
}

// readRuns reads the runs file and the results it names. Relative result
// paths are taken from the runs file's directory.
func readRuns(name string) ([]runResult, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	defer f.Close()
	var runs []runResult
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(fields) != 4 && len(fields) != 6 {
			return nil, fmt.Errorf("%s:%d: want round, scenario, target, file and optionally two CPU figures, separated by tabs", name, line)
		}
		round, err := strconv.Atoi(fields[0])
		if err != nil || round < 1 {
			return nil, fmt.Errorf("%s:%d: round %q is not a positive number", name, line, fields[0])
		}
		path := fields[3]
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(name), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		var res bench.Result
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("%s:%d: result %s: %w", name, line, path, err)
		}
		r := runResult{round: round, scenario: fields[1], target: fields[2], res: &res}
		if len(fields) == 6 {
			r.others, err = strconv.ParseFloat(fields[4], 64)
			if err == nil {
				r.idle, err = strconv.ParseFloat(fields[5], 64)
			}
			if err != nil {
				return nil, fmt.Errorf("%s:%d: CPU figures %q, %q are not numbers", name, line, fields[4], fields[5])
			}
			r.hasCPU = true
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return runs, nil
}

// figures are the numbers a comparison looks at in one run.
type figures struct {
	opsPerSec, mibPerSec float64
	p50, p99, p999       float64 // ms, of every operation of the run
	ttfbP99              float64 // ms, gets only; 0 if none
	errors               int64
}

func figuresOf(res *bench.Result) figures {
	t := res.Total
	f := figures{
		opsPerSec: t.OpsPerSec, mibPerSec: t.MiBPerSec,
		p50: t.Latency.P50, p99: t.Latency.P99, p999: t.Latency.P999,
		errors: t.Errors,
	}
	for _, o := range res.Ops {
		if o.TTFB != nil && res.Workload == bench.WorkloadGet {
			f.ttfbP99 = o.TTFB.P99
		}
	}
	return f
}

// scenario is one workload, size and concurrency, run against every target.
type scenario struct {
	name  string
	label string // "MIXED 1MiB ×16 (get=45,put=15,delete=10,stat=30)"
	short string // "MIXED 1MiB ×16", for chart titles
	// bytes says whether throughput reads best in MiB/s (large objects
	// put or got) or in operations per second.
	bytes bool
	// runs[t] are the runs against target t, in round order.
	runs [][]runResult
}

// comparison is every scenario against two targets.
type comparison struct {
	runs      []runResult // in the order they were made
	targets   []string
	scenarios []*scenario
	rounds    int
}

func newComparison(runs []runResult) (*comparison, error) {
	if len(runs) == 0 {
		return nil, errors.New("no runs to compare")
	}
	c := &comparison{runs: runs}
	byName := map[string]*scenario{}
	for _, r := range runs {
		if !slices.Contains(c.targets, r.target) {
			c.targets = append(c.targets, r.target)
		}
	}
	if len(c.targets) != 2 {
		return nil, fmt.Errorf("runs against %d targets (%s); a comparison needs two", len(c.targets), strings.Join(c.targets, ", "))
	}
	for _, r := range runs {
		s := byName[r.scenario]
		if s == nil {
			s = &scenario{name: r.scenario, label: label(r.res), short: shortLabel(r.res), runs: make([][]runResult, 2)}
			sizes, err := bench.ParseSizes(r.res.Size)
			s.bytes = err == nil && sizes.Mean() >= 64<<10 &&
				(r.res.Workload == bench.WorkloadPut || r.res.Workload == bench.WorkloadGet)
			byName[r.scenario] = s
			c.scenarios = append(c.scenarios, s)
		}
		t := slices.Index(c.targets, r.target)
		s.runs[t] = append(s.runs[t], r)
		c.rounds = max(c.rounds, r.round)
	}
	for _, s := range c.scenarios {
		for t, rs := range s.runs {
			if len(rs) == 0 {
				return nil, fmt.Errorf("scenario %s was not run against %s", s.name, c.targets[t])
			}
			slices.SortFunc(rs, func(a, b runResult) int { return a.round - b.round })
		}
	}
	return c, nil
}

func label(res *bench.Result) string {
	l := shortLabel(res)
	if res.Mix != "" {
		l += " (" + res.Mix + ")"
	}
	return l
}

func shortLabel(res *bench.Result) string {
	return fmt.Sprintf("%s %s ×%d", strings.ToUpper(string(res.Workload)), res.Size, res.Concurrency)
}

// throughput is the figure a scenario's throughput is compared by.
func (s *scenario) throughput(f figures) float64 {
	if s.bytes {
		return f.mibPerSec
	}
	return f.opsPerSec
}

func (s *scenario) unit() string {
	if s.bytes {
		return "MiB/s"
	}
	return "ops/s"
}

// medians returns target t's median throughput and p99 latency, and its
// errors summed over the rounds.
func (s *scenario) medians(t int) (throughput, p99 float64, errs int64) {
	var tp, lat []float64
	for _, r := range s.runs[t] {
		f := figuresOf(r.res)
		tp = append(tp, s.throughput(f))
		lat = append(lat, f.p99)
		errs += f.errors
	}
	return median(tp), median(lat), errs
}

// median is the middle value, or the mean of the two middle values of an
// even number of them; 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio is a/b, or 0 when b is 0 (nothing to compare against).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
