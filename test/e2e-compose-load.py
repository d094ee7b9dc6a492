#!/usr/bin/env python3
"""Background load for test/e2e-compose.sh, with boto3.

write: PUT small random objects to one gateway until --seconds pass (or the
file named by --stop appears), one at a time. Every acknowledged PUT is
appended to --manifest as `<sha256>  <key>` (sha256sum's format, so the
shell can check a download with `sha256sum -c`), and to --log as
`ack <start> <end> <key>`; failures go to --log as `err <start> <end> <key>
<reason>`.

read: GET random objects named in --manifest until --seconds pass (or --stop
appears). A GET that fails is counted; a GET that answers with bytes whose
sha256 differs from the manifest is wrong data, and exits 1.
"""

import argparse
import hashlib
import os
import random
import sys
import time

import boto3
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def stopped(args, deadline):
    return time.time() >= deadline or (args.stop and os.path.exists(args.stop))


def write(args):
    s3 = client(args.endpoint)
    deadline = time.time() + args.seconds
    n = 0
    with open(args.manifest, "a") as man, open(args.log, "a") as log:
        while not stopped(args, deadline):
            n += 1
            key = f"{args.prefix}/{n:06d}"
            body = os.urandom(random.randint(1, 256) * 1024)
            start = time.time()
            try:
                s3.put_object(Bucket=args.bucket, Key=key, Body=body)
            except Exception as e:  # any failure is an unacknowledged write
                reason = str(e).replace("\n", " ")[:200]
                log.write(f"err {start:.3f} {time.time():.3f} {key} {reason}\n")
                log.flush()
                time.sleep(0.1)
                continue
            end = time.time()
            man.write(f"{hashlib.sha256(body).hexdigest()}  {key}\n")
            man.flush()
            log.write(f"ack {start:.3f} {end:.3f} {key}\n")
            log.flush()
            time.sleep(args.pause)


def read(args):
    s3 = client(args.endpoint)
    deadline = time.time() + args.seconds
    want = {}
    with open(args.manifest) as man:
        for line in man:
            digest, key = line.rstrip("\n").split("  ", 1)
            want[key] = digest
    keys = list(want)
    ok = failed = 0
    while keys and not stopped(args, deadline):
        key = random.choice(keys)
        try:
            body = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read()
        except Exception:
            failed += 1
            time.sleep(0.1)
            continue
        if hashlib.sha256(body).hexdigest() != want[key]:
            print(f"WRONG DATA: {key}: {len(body)} bytes, sha256 differs", file=sys.stderr)
            sys.exit(1)
        ok += 1
    print(f"reader {args.endpoint}: {ok} reads correct, {failed} failed, 0 wrong")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["write", "read"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="load")
    p.add_argument("--manifest", required=True)
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--stop", default="")
    args = p.parse_args()
    write(args) if args.mode == "write" else read(args)


if __name__ == "__main__":
    main()
