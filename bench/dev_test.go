package bench_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talusfs/talus/bench"
)

// binDir holds the talus binary that talusBinary builds; TestMain makes
// and removes it.
var (
	binDir  string
	binOnce sync.Once
	binErr  error
)

// talusBinary builds the talus command, once for every test that runs it.
func talusBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the talus binary")
	}
	bin := filepath.Join(binDir, "talus")
	binOnce.Do(func() {
		build := exec.Command("go", "build", "-o", bin, "../cmd/talus")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bin
}

// talusDev is a `talus dev` process.
type talusDev struct {
	s3, meta, secret string
}

// startTalusDev runs `talus dev` on free ports, with its data in a
// directory of its own, until the test ends.
func startTalusDev(t *testing.T, bin, user, password string) talusDev {
	t.Helper()
	dir := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "stderr")
	stderr, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(bin, "dev", "--dir", dir, "--meta-port", "0", "--chunk-port", "0", "--s3-port", "0")
	cmd.Env = append(os.Environ(), "TALUS_ROOT_USER="+user, "TALUS_ROOT_PASSWORD="+password)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan talusDev, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var d talusDev
		addr := regexp.MustCompile(`http://(\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			m := addr.FindStringSubmatch(line)
			switch {
			case strings.Contains(line, "metadata") && m != nil:
				d.meta = m[1]
			case strings.Contains(line, "S3 gateway") && m != nil:
				d.s3 = "http://" + m[1]
			case strings.HasPrefix(line, "Ctrl-C"):
				ready <- d
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case d := <-ready:
		secret, err := os.ReadFile(filepath.Join(dir, "secret"))
		if err != nil {
			t.Fatal(err)
		}
		d.secret = strings.TrimSpace(string(secret))
		return d
	case <-exited:
		log, _ := os.ReadFile(logFile)
		t.Fatalf("talus dev exited before it was ready:\n%s", log)
	case <-time.After(time.Minute):
		t.Fatal("talus dev was not ready within a minute")
	}
	return talusDev{}
}

// TestAgainstTalusDev runs the talus binary's bench for a few seconds
// against a `talus dev` process, over S3 and through the native client, and
// checks what it reports: the JSON, the progress lines, the files of --out.
func TestAgainstTalusDev(t *testing.T) {
	bin := talusBinary(t)
	const user, password = "devbench", "devbench-secret"
	d := startTalusDev(t, bin, user, password)
	talus := func(env []string, args ...string) (stdout []byte, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("talus %s: %v\n%s", strings.Join(args, " "), err, e.String())
		}
		return o.Bytes(), e.String()
	}

	out, progress := talus([]string{"AWS_ACCESS_KEY_ID=" + user, "AWS_SECRET_ACCESS_KEY=" + password},
		"bench", "put", "--endpoint", d.s3, "--size", "1KiB-1MiB", "--concurrency", "8",
		"--duration", "3s", "--warmup", "1s", "--json")
	r := decode(t, out)
	if r.Workload != "put" || r.Total.Bytes <= 0 || r.Seconds < 3 || !strings.HasSuffix(r.Cleanup, "and bucket "+r.Bucket) {
		t.Errorf("put: workload %s, %d bytes in %.1fs, clean-up %q", r.Workload, r.Total.Bytes, r.Seconds, r.Cleanup)
	}
	// Not a terminal: one progress line per second, through every phase.
	for _, want := range []string{"warmup ", "run ", "ops/s", "MiB/s", "errors"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}

	dir := filepath.Join(t.TempDir(), "out")
	out, _ = talus([]string{"TALUS_SECRET=" + d.secret}, "bench", "get", "--meta", d.meta,
		"--size", "256KiB", "--concurrency", "4", "--duration", "2s", "--warmup", "500ms", "--objects", "20",
		"--json", "--out", dir)
	r = decode(t, out)
	if r.Workload != "get" || len(r.Ops) != 1 || r.Ops[0].TTFB == nil || r.Total.Bytes != r.Total.Ops*256<<10 {
		t.Errorf("get: workload %s, operations %v, %d bytes in %d gets", r.Workload, opNames(r), r.Total.Bytes, r.Total.Ops)
	}
	saved, err := os.ReadFile(filepath.Join(dir, bench.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	if json.Unmarshal(out, &a) != nil || json.Unmarshal(saved, &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("%s differs from what --json printed", bench.ResultFile)
	}
	for _, f := range []string{bench.TimelineFile, bench.ThroughputFile, bench.LatencyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("--out wrote no %s (%v)", f, err)
		}
	}
}
