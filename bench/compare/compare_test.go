package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talusfs/talus/bench"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{900, 1, 5}, 5}, // one bad round does not move it
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its input: %v", c.in)
			}
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0.00", 3.14159: "3.14", 12.34: "12.3", 123.4: "123", 1234.5: "1,235", 1234567: "1,234,567",
	} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// result is a run's JSON as talus bench writes it, with the figures a
// comparison reads.
func result(workload bench.Workload, size string, conc int, opsPerSec, mibPerSec, p99 float64) bench.Result {
	lat := bench.Latency{P50: p99 / 2, P90: p99 * 0.9, P99: p99, P999: p99 * 1.1, Count: 100}
	r := bench.Result{
		Workload: workload, Size: size, Concurrency: conc, Seconds: 8,
		Total: bench.OpResult{Op: "total", Ops: 100, OpsPerSec: opsPerSec, MiBPerSec: mibPerSec, Latency: lat},
	}
	op := r.Total
	op.Op = string(workload)
	if workload == bench.WorkloadGet {
		ttfb := lat
		ttfb.P99 = p99 / 3
		op.TTFB = &ttfb
	}
	r.Ops = []bench.OpResult{op}
	return r
}

// writeRuns writes three rounds of two scenarios against two targets, with
// throughputs that make the medians 300 (talus) and 100 (MinIO) for the
// 1 MiB put and 2000 and 1000 ops/s for the 4 KiB get.
func writeRuns(t *testing.T, dir string) string {
	t.Helper()
	tsv := "# round\tscenario\ttarget\tresult\tothers\tidle\n"
	put := map[string][]float64{"talus": {300, 250, 310}, "MinIO": {100, 90, 500}}
	get := map[string][]float64{"talus": {2000, 1900, 2100}, "MinIO": {1000, 999, 1001}}
	for round := 1; round <= 3; round++ {
		for _, target := range []string{"talus", "MinIO"} {
			p99 := 10.0
			if target == "MinIO" {
				p99 = 40
			}
			v := put[target][round-1]
			runs := map[string]bench.Result{
				"put-1MiB": result(bench.WorkloadPut, "1MiB", 16, v, v, p99),
				"get-4KiB": result(bench.WorkloadGet, "4KiB", 32, get[target][round-1], get[target][round-1]/256, p99),
			}
			for _, name := range []string{"put-1MiB", "get-4KiB"} {
				file := fmt.Sprintf("r%d-%s-%s.json", round, name, target)
				b, err := json.Marshal(runs[name])
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
					t.Fatal(err)
				}
				tsv += fmt.Sprintf("%d\t%s\t%s\t%s\t0.25\t0.01\n", round, name, target, file)
			}
		}
	}
	path := filepath.Join(dir, "runs.tsv")
	if err := os.WriteFile(path, []byte(tsv), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	runs := writeRuns(t, dir)
	results := filepath.Join(dir, "RESULTS.md")
	before := "# results\n\nearlier findings\n"
	if err := os.WriteFile(results, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	pre := filepath.Join(dir, "preamble.md")
	if err := os.WriteFile(pre, []byte("Machine: a test.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	charts := filepath.Join(dir, "charts")
	args := []string{"-runs", runs, "-preamble", pre, "-results", results, "-charts", charts}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		before, "Machine: a test.", "Medians of 3 rounds",
		// Medians 300 and 100 MiB/s, p99 10 and 40 ms.
		"| PUT 1MiB ×16 | 300 MiB/s | 100 MiB/s | **3.00** | 10.0 ms | 40.0 ms | **0.25** | 0, 0 |",
		"| GET 4KiB ×32 | 2,000 ops/s | 1,000 ops/s | **2.00** |",
		"](charts/" + throughputChart + ")",
		// Every run, in order, with the TTFB of the gets.
		"| PUT 1MiB ×16 | 3 | MinIO | 500 | 500 | 20.0 | 40.0 | 44.0 |  | 0 | 0.25 | 0.01 |",
		"| GET 4KiB ×32 | 1 | talus | 2,000 | 7.81 | 5.00 | 10.0 | 11.0 | 3.33 | 0 |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("results lack %q:\n%s", want, doc)
		}
	}
	if i, j := strings.Index(doc, "| PUT 1MiB ×16 | 1 | talus"), strings.Index(doc, "| PUT 1MiB ×16 | 1 | MinIO"); i < 0 || j < i {
		t.Errorf("runs out of order:\n%s", doc)
	}
	for _, f := range []string{throughputChart, latencyChart} {
		b, err := os.ReadFile(filepath.Join(charts, f))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n")) {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}

	// Again: the section is replaced, not added, and what follows it stays.
	if err := os.WriteFile(results, []byte(doc+"\n## later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(args); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), beginMarker); n != 1 || !strings.HasSuffix(string(b), endMarker+"\n\n## later\n") ||
		!strings.HasPrefix(string(b), before) {
		t.Errorf("after a second run, %d sections:\n%s", n, b)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	runs := writeRuns(t, dir)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oneTarget := write("one.tsv", "1\tput-1MiB\ttalus\tr1-put-1MiB-talus.json\n")
	badRound := write("round.tsv", "first\tput-1MiB\ttalus\tr1-put-1MiB-talus.json\n")
	missing := write("missing.tsv", "1\tput-1MiB\ttalus\tnothere.json\n1\tput-1MiB\tMinIO\tnothere.json\n")
	halfSection := write("half.md", "# results\n"+beginMarker+"\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "give -runs"},
		{[]string{"-runs", oneTarget}, "needs two"},
		{[]string{"-runs", badRound}, "not a positive number"},
		{[]string{"-runs", missing}, "nothere.json"},
		{[]string{"-runs", runs, "-results", halfSection}, "only one of the lines"},
	} {
		err := run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q): %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
