package mount_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta/metaapi"
	"github.com/talusfs/talus/mount"
)

const (
	rootKey    = "mountroot"
	rootSecret = "mount-root-secret"
	secret     = "mount-test-secret"
)

var verbose = flag.Bool("mount.log", false, "log the mount's and the cluster's warnings to stderr")

// env is the cluster every test shares; tests use their own buckets.
var env struct {
	cluster *dev.Cluster
	client  *client.Client
	log     *slog.Logger
	s3URL   string
}

// helperEnv, when set, makes the test binary a mount process of its own
// (for the tests that need a second process, or one to kill): it holds
// "meta address|bucket|mount point|kernel TTL".
const helperEnv = "TALUS_MOUNT_TEST_HELPER"

func TestMain(m *testing.M) {
	flag.Parse()
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperMain(spec))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		fmt.Println("skipping mount tests: /dev/fuse is missing")
		return 0
	}
	if os.Geteuid() != 0 {
		// They chown files, and detach the mounts of killed processes.
		fmt.Println("skipping mount tests: they need root")
		return 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "mount-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	level := slog.Level(100)
	if *verbose {
		level = slog.LevelWarn
	}
	env.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	env.cluster, err = dev.Start(ctx, dev.Options{Dir: dir, Secret: []byte(secret), Heartbeat: 200 * time.Millisecond, Logger: env.log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start cluster:", err)
		return 1
	}
	defer env.cluster.Stop()
	if env.client, err = env.cluster.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	gw, err := gateway.New(gateway.Config{Client: env.client, RootAccessKey: rootKey, RootSecretKey: rootSecret, Logger: env.log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	env.s3URL = srv.URL
	return m.Run()
}

var bucketSeq atomic.Int64

// newBucket creates a bucket for one test.
func newBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("m%d-%s", bucketSeq.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if err := env.client.Meta().CreateBucket(context.Background(), metaapi.Bucket{Name: name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// mountAt mounts bucket (optionally bucket/prefix) in this process, and
// unmounts it when the test ends.
func mountAt(t testing.TB, bucket string, opts mount.Options) string {
	t.Helper()
	dir := t.TempDir()
	opts.Client = env.client
	opts.Bucket = bucket
	opts.Logger = env.log
	m, err := mount.New(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(t, m) })
	return dir
}

// unmount retries while a process the test started still has files open.
func unmount(t testing.TB, m *mount.Mount) {
	var err error
	for range 50 {
		if err = m.Unmount(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("unmount: %v", err)
	syscall.Unmount(m.Dir(), syscall.MNT_DETACH)
}

func newS3() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(env.s3URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(rootKey, rootSecret, ""),
	})
}

// helper is a mount served by another process: this test binary,
// re-executed.
type helper struct {
	cmd *exec.Cmd
	dir string
}

// startHelper mounts bucket at dir in a child process and waits until it is
// mounted.
func startHelper(t testing.TB, bucket, dir string, opts mount.Options) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%s", helperEnv, env.cluster.MetaAddr(), bucket, dir, opts.KernelTTL))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, dir: dir}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "mounted" {
			err = errors.New(strings.TrimSpace(line))
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper mount: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper mount did not come up in 30s")
	}
	return h
}

// stop unmounts the helper's filesystem cleanly (SIGTERM) and waits.
func (h *helper) stop(t testing.TB) {
	h.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("helper mount exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.cmd.Process.Kill()
		<-done
		t.Error("helper mount did not stop in 30s")
	}
}

// kill ends the helper with SIGKILL and clears the dead mount.
func (h *helper) kill(t testing.TB) {
	h.cmd.Process.Kill()
	h.cmd.Wait()
	if err := syscall.Unmount(h.dir, syscall.MNT_DETACH); err != nil {
		t.Errorf("detach dead mount: %v", err)
	}
}

// helperMain serves one mount until SIGTERM.
func helperMain(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		fmt.Println("bad helper spec", spec)
		return 2
	}
	ttl, err := time.ParseDuration(parts[3])
	if err != nil {
		fmt.Println("bad helper spec", spec)
		return 2
	}
	cl, err := client.New(client.Config{Meta: []string{parts[0]}, Secret: []byte(secret)})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	m, err := mount.New(context.Background(), parts[2], mount.Options{Client: cl, Bucket: parts[1], KernelTTL: ttl})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("mounted")
	<-sig
	for range 100 {
		if err = m.Unmount(); err == nil {
			return 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "helper unmount:", err)
	return 1
}
