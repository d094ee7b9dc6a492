package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/meta/metaapi"
)

// buildTalus compiles the binary once per test run.
func buildTalus(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "talus")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type devProcess struct {
	meta, s3 string
	profiles string // the --pprof address, if given
	secret   []byte
	dir      string
}

// startDev runs `talus dev` as a real process and parses where it listens.
func startDev(t testing.TB, bin string, extra ...string) devProcess {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"dev", "--dir", dir, "--meta-port", "0", "--chunk-port", "0", "--s3-port", "0"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	var p devProcess
	p.dir = dir
	sc := bufio.NewScanner(stdout)
	addr := regexp.MustCompile(`http://(\S+)`)
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		m := addr.FindStringSubmatch(line)
		switch {
		case strings.Contains(line, "metadata") && m != nil:
			p.meta = m[1]
		case strings.Contains(line, "S3 gateway") && m != nil:
			p.s3 = m[1]
		case strings.Contains(line, "profiles") && m != nil:
			p.profiles = m[1]
		case strings.HasPrefix(line, "Ctrl-C"):
			go io.Copy(io.Discard, stdout)
			secret, err := os.ReadFile(filepath.Join(dir, "secret"))
			if err != nil {
				t.Fatal(err)
			}
			p.secret = bytes.TrimSpace(secret)
			return p
		}
	}
	t.Fatalf("talus dev exited before it was ready: %v", sc.Err())
	return p
}

func TestDevCommand(t *testing.T) {
	bin := buildTalus(t)
	p := startDev(t, bin, "--pprof", "127.0.0.1:0")
	// Profiles are served where it says, and only there.
	resp, err := http.Get("http://" + p.profiles + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/cmdline: %s", p.profiles, resp.Status)
	}
	cl, err := client.New(client.Config{Meta: []string{p.meta}, Secret: p.secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: "smoke"}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("talus "), 300000)
	if _, err := cl.Put(ctx, "smoke", "k", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Get(ctx, "smoke", "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Fatal("read back different bytes")
	}
	// A client without the cluster secret is refused.
	bad, _ := client.New(client.Config{Meta: []string{p.meta}, Secret: []byte("wrong")})
	if _, err := bad.Put(ctx, "smoke", "x", strings.NewReader("x"), 1, client.PutOptions{}); err == nil {
		t.Fatal("a client with the wrong secret could write")
	}
}

// A --pprof address that cannot be listened on stops talus dev with an
// error that names it, before anything starts.
func TestDevBadProfileAddress(t *testing.T) {
	bin := buildTalus(t)
	cmd := exec.Command(bin, "dev", "--dir", t.TempDir(), "--meta-port", "0", "--chunk-port", "0", "--s3-port", "0", "--pprof", "256.0.0.1:1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("talus dev with a bad --pprof address succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "profiles: listen on 256.0.0.1:1") || strings.Count(strings.TrimSpace(string(out)), "\n") > 1 {
		t.Errorf("talus dev with a bad --pprof address said:\n%s", out)
	}
}

// patternReader yields n pseudo-random bytes without holding them.
type patternReader struct {
	n, off int64
	state  uint64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		if r.off%8 == 0 {
			r.state = r.state*6364136223846793005 + 1442695040888963407
		}
		p[i] = byte(r.state >> (8 * (r.off % 8)))
		r.off++
	}
	return len(p), nil
}

// TestStreamingMemory streams a 1 GiB object into and out of a `talus dev`
// process and samples this process's heap — the client's alone, since the
// servers run in the other process — every 10 ms.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	bin := buildTalus(t)
	p := startDev(t, bin)
	cl, err := client.New(client.Config{Meta: []string{p.meta}, Secret: p.secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.Meta().CreateBucket(ctx, metaapi.Bucket{Name: "mem"}); err != nil {
		t.Fatal(err)
	}
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	const size = 1 << 30
	want := sha256.New()
	io.Copy(want, &patternReader{n: size})
	runtime.GC()
	if _, err := cl.Put(ctx, "mem", "big", &patternReader{n: size}, -1, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	putPeak := peak.Swap(0)
	r, err := cl.Get(ctx, "mem", "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	if _, err := io.Copy(got, r); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	getPeak := peak.Load()
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("1 GiB object read back with a different sha256")
	}
	t.Logf("client heap in use, peak: PUT %d MiB, GET %d MiB", putPeak>>20, getPeak>>20)
	if putPeak > 64<<20 || getPeak > 64<<20 {
		t.Fatalf("streaming 1 GiB held more than 64 MiB of client heap: PUT %d MiB, GET %d MiB", putPeak>>20, getPeak>>20)
	}
}

func TestAdminCommands(t *testing.T) {
	bin := buildTalus(t)
	p := startDev(t, bin)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"admin"}, args...)...)
		cmd.Env = append(os.Environ(), "TALUS_SECRET="+string(p.secret), "TALUS_META="+p.meta)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, _, err := run("user", "add", "alice", "--secret-key", "alicesecret1234", "--bucket", "shared")
	if err != nil || !strings.Contains(out, "alicesecret1234") {
		t.Fatalf("user add: %v %q", err, out)
	}
	_, stderr, err := run("user", "add", "alice", "--secret-key", "x")
	if err == nil || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("duplicate user add: err %v, stderr %q; want a one-line error and a non-zero exit", err, stderr)
	}
	out, _, err = run("user", "list", "--json")
	var users []metaapi.User
	if err != nil || json.Unmarshal([]byte(out), &users) != nil || len(users) != 1 || users[0].AccessKey != "alice" || users[0].SecretKey != "" {
		t.Fatalf("user list --json: %v %q", err, out)
	}
	if _, _, err := run("bucket", "create", "adminmade"); err != nil {
		t.Fatal(err)
	}
	out, _, err = run("bucket", "list")
	if err != nil || !strings.Contains(out, "adminmade") {
		t.Fatalf("bucket list: %v %q", err, out)
	}
	_, stderr, err = run("bucket", "create", "Bad_Name")
	if err == nil || !strings.Contains(stderr, "invalid name") {
		t.Fatalf("bad bucket name: %v %q", err, stderr)
	}
	if _, _, err := run("user", "remove", "alice"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = run("user", "frobnicate")
	if err == nil || stderr == "" {
		t.Fatalf("unknown command: %v %q", err, stderr)
	}
}
