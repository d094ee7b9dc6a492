package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// runProbe is a health check for images that have no shell or curl: the
// container runtime runs `talus probe URL` and reads the exit status.
func runProbe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("probe")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	s3 := fs.Bool("s3", false, "sign the request (SigV4) with $TALUS_ROOT_USER/$TALUS_ROOT_PASSWORD, so an S3 gateway answers it end to end")
	region := fs.String("region", "us-east-1", "region to sign for with --s3")
	quiet := fs.Bool("q", false, "print nothing on success")
	// The URL may come before or after the flags.
	target, rest := popArg(args)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if target == "" && fs.NArg() > 0 {
		target = fs.Arg(0)
		rest = fs.Args()[1:]
	} else {
		rest = fs.Args()
	}
	if target == "" || len(rest) > 0 {
		return errors.New("probe: give one URL, e.g. 'talus probe http://127.0.0.1:7700/readyz'")
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("probe: %q is not an http:// or https:// URL", target)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	if *s3 {
		if err := signS3(ctx, req, *region); err != nil {
			return err
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s", target, resp.Status)
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: %s\n", target, resp.Status)
	}
	return nil
}

// signS3 signs req as the gateway's root user, whose credentials a gateway
// container already has in its environment.
func signS3(ctx context.Context, req *http.Request, region string) error {
	user, password := os.Getenv("TALUS_ROOT_USER"), os.Getenv("TALUS_ROOT_PASSWORD")
	if user == "" || password == "" {
		return errors.New("probe: --s3 needs TALUS_ROOT_USER and TALUS_ROOT_PASSWORD")
	}
	empty := sha256.Sum256(nil)
	payload := hex.EncodeToString(empty[:])
	req.Header.Set("X-Amz-Content-Sha256", payload)
	creds := aws.Credentials{AccessKeyID: user, SecretAccessKey: password}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, payload, "s3", region, time.Now()); err != nil {
		return fmt.Errorf("probe: sign request: %w", err)
	}
	return nil
}
