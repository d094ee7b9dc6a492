// Command testserver runs a dev cluster with an S3 gateway in front of it,
// for driving the gateway with real S3 tools (test/s3/*) before the talus
// binary wires one up.
//
//	go run ./gateway/internal/testserver -addr 127.0.0.1:9000 -dir /tmp/talus
//
// The root credentials come from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY. It prints the endpoint once serving and runs until
// interrupted. With -meta it starts no cluster and serves only a gateway in
// front of the cluster at that address, which lets a gateway's memory be
// measured apart from the servers behind it:
//
//	go run ./gateway/internal/testserver -addr :9000 -meta-port 7700
//	go run ./gateway/internal/testserver -addr :9001 -meta 127.0.0.1:7700
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/talusfs/talus/client"
	"github.com/talusfs/talus/gateway"
	"github.com/talusfs/talus/internal/dev"
	"github.com/talusfs/talus/meta/metaapi"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:9000", "address to serve S3 on")
	dir := flag.String("dir", "", "data directory (default: a new temporary one)")
	domain := flag.String("domain", "", "domain for virtual-host-style requests")
	verbose := flag.Bool("v", false, "log gateway requests that fail")
	metaAddr := flag.String("meta", "", "serve only a gateway, for the cluster whose metadata server is here")
	metaPort := flag.Int("meta-port", 0, "port of the dev cluster's metadata server (0: any)")
	var users userFlag
	flag.Var(&users, "user", "create an S3 user ACCESS:SECRET besides root; repeatable")
	flag.Parse()
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return errors.New("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the root credentials to serve")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	secretKey := []byte("testserver")
	var cl *client.Client
	var err error
	if *metaAddr != "" {
		cl, err = client.New(client.Config{Meta: []string{*metaAddr}, Secret: secretKey, Logger: log})
	} else {
		if *dir == "" {
			d, err := os.MkdirTemp("", "talus-testserver-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(d)
			*dir = d
		}
		c, err := dev.Start(ctx, dev.Options{Dir: *dir, Secret: secretKey, Heartbeat: 200 * time.Millisecond, Logger: log, MetaPort: *metaPort})
		if err != nil {
			return err
		}
		defer c.Stop()
		fmt.Fprintf(os.Stderr, "metadata server at %s\n", c.MetaAddr())
		cl, err = c.Client()
	}
	if err != nil {
		return err
	}
	for _, u := range users {
		err := cl.Meta().PutUser(ctx, metaapi.User{AccessKey: u[0], SecretKey: u[1], Created: time.Now()})
		if err != nil && !errors.Is(err, metaapi.ErrUserExists) {
			return fmt.Errorf("create user %s: %w", u[0], err)
		}
	}
	gw, err := gateway.New(gateway.Config{Client: cl, RootAccessKey: key, RootSecretKey: secret, Domain: *domain, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gw.Handler(), MaxHeaderBytes: 1 << 20, ReadHeaderTimeout: 30 * time.Second}
	go gw.Run(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("http://%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// userFlag collects -user ACCESS:SECRET pairs.
type userFlag [][2]string

func (u *userFlag) String() string { return fmt.Sprint(len(*u), " users") }

func (u *userFlag) Set(v string) error {
	key, secret, ok := strings.Cut(v, ":")
	if !ok || key == "" || secret == "" {
		return errors.New("want ACCESS:SECRET")
	}
	*u = append(*u, [2]string{key, secret})
	return nil
}
