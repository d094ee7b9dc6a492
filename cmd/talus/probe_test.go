package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestProbe runs `talus probe` as a container health check would, against a
// real `talus dev`: the exit status says whether the endpoint is ready, and a
// failure is one line on stderr.
func TestProbe(t *testing.T) {
	bin := buildTalus(t)
	t.Setenv("TALUS_ROOT_USER", "probeuser")
	t.Setenv("TALUS_ROOT_PASSWORD", "probepassword123")
	p := startDev(t, bin)

	probe := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"probe"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("probe %v: stderr is not one line: %q", args, errb.String())
		}
		return out.String() + errb.String(), err
	}

	if out, err := probe(nil, "http://"+p.meta+"/readyz"); err != nil || !strings.Contains(out, "200") {
		t.Fatalf("metadata /readyz: %v %q", err, out)
	}
	if out, err := probe(nil, "-q", "http://"+p.meta+"/readyz"); err != nil || out != "" {
		t.Fatalf("probe -q: %v %q, want silence", err, out)
	}
	// The flags may come before the URL too.
	if out, err := probe(nil, "--s3", "http://"+p.s3+"/"); err != nil {
		t.Fatalf("signed ListBuckets through the gateway: %v %q", err, out)
	}
	if out, err := probe(nil, "http://"+p.s3+"/", "--s3", "--timeout", "5s"); err != nil {
		t.Fatalf("signed ListBuckets, flags after the URL: %v %q", err, out)
	}

	// Not ready, not reachable, not authorized, not a URL: non-zero exit.
	if out, err := probe(nil, "http://"+p.s3+"/"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("unsigned request to the gateway: %v %q, want a 403 failure", err, out)
	}
	if out, err := probe([]string{"TALUS_ROOT_PASSWORD=wrong"}, "--s3", "http://"+p.s3+"/"); err == nil {
		t.Fatalf("wrong password: passed: %q", out)
	}
	if out, err := probe([]string{"TALUS_ROOT_USER="}, "--s3", "http://"+p.s3+"/"); err == nil || !strings.Contains(out, "TALUS_ROOT_USER") {
		t.Fatalf("no credentials: %v %q", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if out, err := probe(nil, "--timeout", "2s", "http://"+closed+"/readyz"); err == nil {
		t.Fatalf("closed port: passed: %q", out)
	}
	for _, args := range [][]string{{}, {"not a url"}, {"ftp://x/"}, {"http://a/", "http://b/"}} {
		if out, err := probe(nil, args...); err == nil {
			t.Fatalf("probe %q: passed: %q", args, out)
		}
	}
}
