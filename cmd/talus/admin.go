package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/talusfs/talus/meta/metaapi"
)

// adminEnv is what every admin command needs: where the metadata service is,
// the cluster secret, and how to print.
type adminEnv struct {
	meta   *metaapi.Client
	secret []byte
	json   bool
	stdout io.Writer
}

func adminFlags(name string) (*flag.FlagSet, func() (*adminEnv, error)) {
	fs := newFlags("admin " + name)
	var metas listFlag
	fs.Var(&metas, "meta", "metadata server address (default $TALUS_META or 127.0.0.1:7700, where `talus dev` listens)")
	secret := fs.String("secret", "", "cluster secret (default $TALUS_SECRET, else ./talus-data/secret of a local `talus dev`)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	return fs, func() (*adminEnv, error) {
		if len(metas) == 0 {
			if env := os.Getenv("TALUS_META"); env != "" {
				metas.Set(env)
			} else {
				metas = listFlag{"127.0.0.1:7700"}
			}
		}
		s := secretFrom(*secret)
		if len(s) == 0 {
			if b, err := os.ReadFile(filepath.Join("talus-data", "secret")); err == nil {
				s = []byte(strings.TrimSpace(string(b)))
			}
		}
		mc, err := metaapi.NewClient(metas, s, nil)
		if err != nil {
			return nil, err
		}
		return &adminEnv{meta: mc, secret: s, json: *asJSON}, nil
	}
}

func runAdmin(ctx context.Context, args []string, stdout io.Writer) error {
	groups := map[string]map[string]func(context.Context, []string, io.Writer) error{
		"user":   {"add": adminUserAdd, "list": adminUserList, "remove": adminUserRemove},
		"bucket": {"list": adminBucketList, "create": adminBucketCreate, "delete": adminBucketDelete},
		"meta":   {"status": adminMetaStatus, "add": adminMetaAdd, "remove": adminMetaRemove},
		"node":   {"list": adminNodeList, "drain": adminNodeDrain, "remove": adminNodeRemove},
		"scrub":  {"start": adminScrubStart, "status": adminScrubStatus},
	}
	if fn := clusterCommand(args); fn != nil {
		return fn(ctx, args[1:], stdout)
	}
	if len(args) < 2 {
		fmt.Fprintln(stdout, "usage: talus admin user add|list|remove, talus admin bucket list|create|delete")
		return errors.New("admin: name a command, e.g. 'talus admin user list'")
	}
	g, ok := groups[args[0]]
	if !ok {
		return fmt.Errorf("admin: unknown command %q", args[0])
	}
	fn, ok := g[args[1]]
	if !ok {
		return fmt.Errorf("admin %s: unknown command %q", args[0], args[1])
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return fn(ctx, args[2:], stdout)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func adminUserAdd(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("user add")
	secretKey := fs.String("secret-key", "", "the new key's secret (default: generated)")
	var buckets listFlag
	fs.Var(&buckets, "bucket", "bucket the key may use besides its own; repeatable")
	accessKey, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if accessKey == "" {
		return errors.New("admin user add: give the access key, e.g. 'talus admin user add alice'")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if *secretKey == "" {
		var b [20]byte
		rand.Read(b[:])
		*secretKey = hex.EncodeToString(b[:])
	}
	u := metaapi.User{AccessKey: accessKey, SecretKey: *secretKey, Buckets: buckets}
	if err := e.meta.PutUser(ctx, u); err != nil {
		return fmt.Errorf("add user %s: %w", accessKey, err)
	}
	if e.json {
		return printJSON(stdout, u)
	}
	fmt.Fprintf(stdout, "access key: %s\nsecret key: %s\n", u.AccessKey, u.SecretKey)
	return nil
}

func adminUserList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("user list")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	us, err := e.meta.Users(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	if e.json {
		return printJSON(stdout, us)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS KEY\tBUCKETS\tCREATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.AccessKey, strings.Join(u.Buckets, ","), u.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func adminUserRemove(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("user remove")
	accessKey, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if accessKey == "" {
		return errors.New("admin user remove: give the access key to remove")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.DeleteUser(ctx, accessKey); err != nil {
		return fmt.Errorf("remove user %s: %w", accessKey, err)
	}
	fmt.Fprintf(stdout, "removed %s\n", accessKey)
	return nil
}

func adminBucketList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("bucket list")
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := env()
	if err != nil {
		return err
	}
	bs, err := e.meta.Buckets(ctx)
	if err != nil {
		return fmt.Errorf("list buckets: %w", err)
	}
	if e.json {
		return printJSON(stdout, bs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tOWNER\tCREATED")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, b.Owner, b.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func adminBucketCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("bucket create")
	owner := fs.String("owner", "", "access key that owns the bucket (default: root)")
	name, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if name == "" {
		return errors.New("admin bucket create: give the bucket name")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.CreateBucket(ctx, metaapi.Bucket{Name: name, Owner: *owner}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "created %s\n", name)
	return nil
}

func adminBucketDelete(ctx context.Context, args []string, stdout io.Writer) error {
	fs, env := adminFlags("bucket delete")
	name, rest := popArg(args)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if name == "" {
		return errors.New("admin bucket delete: give the bucket name")
	}
	e, err := env()
	if err != nil {
		return err
	}
	if err := e.meta.DeleteBucket(ctx, name); err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "deleted %s\n", name)
	return nil
}

// popArg takes a leading positional argument, so that flags may follow it.
func popArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}
