// Command talus is the one talus binary: every server role and every tool is
// a subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run a whole cluster (metadata, 6 chunk servers, S3 gateway) in one process", runDev},
		{"meta", "run a metadata server", runMeta},
		{"chunk", "run a chunk server", runChunk},
		{"gateway", "run an S3 gateway", runGateway},
		{"admin", "administer a cluster: users, buckets", runAdmin},
		{"bench", "benchmark an S3 endpoint or a talus cluster", runBench},
		{"mount", "mount a bucket as a filesystem (FUSE)", runMount},
		{"umount", "unmount a mounted bucket", runUmount},
		{"probe", "health check: exit 0 if a URL answers 2xx (for containers without a shell)", runProbe},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "talus: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout)
		}
	}
	return fmt.Errorf("unknown command %q (run 'talus help' for the list)", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: talus <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlags returns a flag set whose errors come back to the caller instead of
// exiting, so every failure is reported the same way.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("talus "+name, flag.ContinueOnError)
	return fs
}

// parse parses flags and refuses stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// listFlag collects a repeatable flag (also accepting comma-separated values).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

func secretFrom(flagValue string) []byte {
	if flagValue != "" {
		return []byte(flagValue)
	}
	return []byte(os.Getenv("TALUS_SECRET"))
}
