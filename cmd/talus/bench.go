package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/talusfs/talus/bench"
	"github.com/talusfs/talus/client"
)

const benchUsage = `usage: talus bench <workload> [flags]

Workloads:
  put     store new objects
  get     read prefilled objects at random (time to first byte included)
  mixed   gets, puts, deletes and stats in the ratio --mix
  list    page through the listing of prefilled objects
  delete  delete prefilled objects until none are left

Target: an S3 endpoint (--endpoint, with --access-key/--secret-key or
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or a talus cluster through the native
client (--meta, with --secret or TALUS_SECRET).

Examples:
  talus bench put --endpoint http://127.0.0.1:9000 --size 4KiB --concurrency 32
  talus bench get --meta 127.0.0.1:7700 --size 1KiB-64MiB --duration 1m --out results
  talus bench mixed --endpoint http://127.0.0.1:9000 --mix get=70,put=30 --json

Flags:
`

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	endpoint := fs.String("endpoint", "", "S3 endpoint URL (http:// or https://)")
	accessKey := fs.String("access-key", "", "S3 access key (default $AWS_ACCESS_KEY_ID)")
	secretKey := fs.String("secret-key", "", "S3 secret key (default $AWS_SECRET_ACCESS_KEY)")
	region := fs.String("region", "us-east-1", "S3 region to sign requests for")
	insecure := fs.Bool("insecure", false, "do not verify the S3 endpoint's TLS certificate")
	var metas listFlag
	fs.Var(&metas, "meta", "metadata server address of a talus cluster, for the native client; repeatable")
	secret := fs.String("secret", "", "cluster shared secret, with --meta (default $TALUS_SECRET)")
	size := fs.String("size", "1MiB", "object size (4KiB, 1MB, 4096) or range drawn log-uniformly (1KiB-64MiB)")
	concurrency := fs.Int("concurrency", bench.DefaultConcurrency, "requests in flight")
	duration := fs.Duration("duration", 0, "how long to measure (default 30s; with --count, until the count is reached, at most 24h)")
	count := fs.Int64("count", 0, "stop after this many operations")
	warmup := fs.Duration("warmup", 2*time.Second, "run this long before measuring (not for delete)")
	objects := fs.Int("objects", 0, "objects to prefill for get, mixed, list and delete (default: up to 2500, at most 1 GiB)")
	mix := fs.String("mix", "45:15:10:30", "mixed workload weights, get:put:delete:stat or get=N,put=N,...")
	listPage := fs.Int("list-page", bench.DefaultListPage, "keys per list request (1-1000)")
	bucket := fs.String("bucket", "", "bucket to use (default: a new one, deleted afterwards)")
	noCleanup := fs.Bool("no-cleanup", false, "leave the objects and the bucket behind")
	seed := fs.Uint64("seed", 0, "seed for sizes, keys and data (default random)")
	jsonOut := fs.Bool("json", false, "print the result as JSON instead of a table")
	out := fs.String("out", "", "also write result.json, timeline.csv and PNG charts into this directory")
	logLevel := fs.String("log-level", "warn", "native client log level: debug, info, warn or error")

	var workload string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		workload, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if workload == "" {
		return errors.New("bench: name a workload: put, get, mixed, list or delete (see talus bench -h)")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := bench.Config{
		Workload:    bench.Workload(workload),
		Concurrency: *concurrency,
		Duration:    *duration,
		Count:       *count,
		Warmup:      *warmup,
		Objects:     *objects,
		ListPage:    *listPage,
		Bucket:      *bucket,
		NoCleanup:   *noCleanup,
		Seed:        *seed,
	}
	if !slices.Contains(bench.Workloads(), cfg.Workload) {
		return fmt.Errorf("bench: workload %q is not one of put, get, mixed, list, delete", workload)
	}
	if *concurrency < 1 {
		return errors.New("bench: --concurrency must be at least 1")
	}
	if set["duration"] && *duration <= 0 {
		return errors.New("bench: --duration must be positive")
	}
	var err error
	if cfg.Sizes, err = bench.ParseSizes(*size); err != nil {
		return fmt.Errorf("bench: --size: %w", err)
	}
	if cfg.Sizes.Max == 0 {
		return errors.New("bench: --size must be at least 1 byte")
	}
	if set["mix"] && cfg.Workload != bench.WorkloadMixed {
		return errors.New("bench: --mix applies only to the mixed workload")
	}
	if set["objects"] && cfg.Workload == bench.WorkloadPut {
		return errors.New("bench: --objects applies only to the get, mixed, list and delete workloads")
	}
	if set["list-page"] && cfg.Workload != bench.WorkloadList {
		return errors.New("bench: --list-page applies only to the list workload")
	}
	if cfg.Workload == bench.WorkloadMixed {
		if cfg.Mix, err = bench.ParseMix(*mix); err != nil {
			return fmt.Errorf("bench: --mix: %w", err)
		}
	}

	switch {
	case *endpoint != "" && len(metas) > 0:
		return errors.New("bench: give either --endpoint (S3) or --meta (native client), not both")
	case *endpoint != "":
		ak, sk := *accessKey, *secretKey
		if ak == "" {
			ak = os.Getenv("AWS_ACCESS_KEY_ID")
		}
		if sk == "" {
			sk = os.Getenv("AWS_SECRET_ACCESS_KEY")
		}
		if ak == "" || sk == "" {
			return errors.New("bench: S3 credentials missing: give --access-key and --secret-key or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		t, err := bench.NewS3(bench.S3Config{
			Endpoint: *endpoint, AccessKey: ak, SecretKey: sk, Region: *region, Insecure: *insecure,
			CABundle: os.Getenv("AWS_CA_BUNDLE"), Conns: *concurrency + 16,
		})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		cfg.Target = t
	case len(metas) > 0:
		s := secretFrom(*secret)
		if len(s) == 0 {
			return errors.New("bench: the cluster secret is missing: give --secret or set TALUS_SECRET")
		}
		log, err := newLogger(*logLevel)
		if err != nil {
			return err
		}
		cl, err := client.New(client.Config{Meta: metas, Secret: s, Logger: log})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		cfg.Target = bench.NewNative(cl, strings.Join(metas, ","))
	default:
		return errors.New("bench: give a target: --endpoint URL for S3 or --meta ADDR for a talus cluster")
	}

	p := newProgressLine(os.Stderr)
	cfg.Progress = p.show
	res, err := bench.Run(ctx, cfg)
	p.finish()
	if res == nil {
		if ctx.Err() != nil {
			return errors.New("bench: interrupted before any measurement")
		}
		return fmt.Errorf("bench: %w", err)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(res); werr != nil {
			return werr
		}
	} else if werr := res.WriteTable(stdout); werr != nil {
		return werr
	}
	if *noCleanup {
		fmt.Fprintf(os.Stderr, "objects left in bucket %s under %s\n", res.Bucket, res.Prefix)
	}
	if *out != "" {
		if serr := res.Save(*out); serr != nil {
			return fmt.Errorf("bench: %w", serr)
		}
		fmt.Fprintf(os.Stderr, "results written to %s\n", *out)
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// progressLine prints progress reports on one line rewritten in place when
// the output is a terminal, and one line per report otherwise (logs, CI).
type progressLine struct {
	w     *os.File
	tty   bool
	phase string
	open  bool // a line without its newline is on screen
}

func newProgressLine(f *os.File) *progressLine {
	fi, err := f.Stat()
	return &progressLine{w: f, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *progressLine) show(pr bench.Progress) {
	if !p.tty {
		fmt.Fprintln(p.w, pr)
		return
	}
	if p.open && pr.Phase != p.phase {
		// Keep the last line of each phase on screen.
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", pr)
	p.phase, p.open = pr.Phase, true
}

func (p *progressLine) finish() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
