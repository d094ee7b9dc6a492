#!/usr/bin/env bash
# Runs the real-client S3 checks (aws CLI, boto3) against a fresh `talus dev`
# cluster. Bounded: the cluster is stopped on exit, every wait has a limit.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
bin="$work/talus"
CGO_ENABLED=0 go build -o "$bin" ./cmd/talus

export TALUS_ROOT_USER=s3testroot TALUS_ROOT_PASSWORD=s3testrootsecret
# Port 0 everywhere: the kernel picks free ports, and talus dev prints them.
"$bin" dev --dir "$work/data" --meta-port 0 --chunk-port 0 --s3-port 0 >"$work/dev.log" 2>&1 &
pid=$!
cleanup() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
	grep -q '^Ctrl-C' "$work/dev.log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/dev.log"; echo "talus dev exited" >&2; exit 1; }
	sleep 0.2
done
grep -q '^Ctrl-C' "$work/dev.log" || { cat "$work/dev.log"; echo "talus dev not ready after 20s" >&2; exit 1; }

s3=$(sed -n 's|^  S3 gateway *\(http://[^ ]*\).*|\1|p' "$work/dev.log")
[[ -n "$s3" ]] || { cat "$work/dev.log"; echo "no S3 gateway address in talus dev's output" >&2; exit 1; }
export TALUS_S3_ENDPOINT="$s3"
export AWS_ACCESS_KEY_ID=$TALUS_ROOT_USER AWS_SECRET_ACCESS_KEY=$TALUS_ROOT_PASSWORD
echo "=== aws CLI"
timeout 300 test/s3/aws-cli.sh
echo "=== boto3"
timeout 300 python3 test/s3/boto3_test.py
echo "s3 client scripts: 2 passed, 0 failed"
