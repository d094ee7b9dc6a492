#!/usr/bin/env bash
# bench/mount.sh: `talus mount` against s3fs-fuse mounted on talus's own S3
# gateway, same machine, same run, same `talus dev` cluster; with the native
# client's single-stream PUT and GET rates for reference. Prints a Markdown
# section for bench/RESULTS.md.
#
# Needs root (FUSE), fio, s3fs (Debian: apt-get install fio s3fs), python3.
#   SIZE=4G FILES=10000 RUNTIME=30 bench/mount.sh
set -euo pipefail

SIZE=${SIZE:-4G}          # fio sequential file size
FILES=${FILES:-10000}     # small files created, stat'ed, deleted
RUNTIME=${RUNTIME:-30}    # seconds of random 4 KiB reads

for tool in fio s3fs python3 go; do
	command -v "$tool" >/dev/null || { echo "bench/mount.sh: $tool is not installed" >&2; exit 1; }
done
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/talus-mount-bench.XXXXXX)
bin=$work/talus
go build -o "$bin" ./cmd/talus

cleanup() {
	for m in "$work/mnt-talus" "$work/mnt-s3fs"; do
		mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	[ -f "$work/dev.pid" ] && kill "$(cat "$work/dev.pid")" 2>/dev/null && sleep 2
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$work" && exec "$bin" dev --dir data --meta-port 0 --chunk-port 0 --s3-port 0 >dev.out 2>dev.err) &
echo $! >"$work/dev.pid"
for _ in $(seq 100); do grep -q '^Ctrl-C' "$work/dev.out" 2>/dev/null && break; sleep 0.2; done
meta=$(awk '/metadata/ {sub("http://", "", $2); print $2}' "$work/dev.out")
s3=$(awk '/S3 gateway/ {print $3}' "$work/dev.out")
export TALUS_SECRET=$(cat "$work/data/secret") TALUS_META=$meta
IFS=: read -r ak sk <"$work/data/root-credentials"

"$bin" admin bucket create fuse >/dev/null
"$bin" admin bucket create s3fs >/dev/null
mkdir -p "$work/mnt-talus" "$work/mnt-s3fs"
"$bin" mount fuse "$work/mnt-talus" --daemon >/dev/null
echo "$ak:$sk" >"$work/passwd"
chmod 600 "$work/passwd"
s3fs s3fs "$work/mnt-s3fs" -o url="$s3",use_path_request_style,passwd_file="$work/passwd",endpoint=us-east-1

native() { # workload [flags]: MiB/s of one stream of 64 MiB objects through the native client
	"$bin" bench "$@" --meta "$meta" --size 64MiB --concurrency 1 --duration 20s --warmup 2s --json 2>/dev/null |
		python3 -c 'import json,sys; print(round(json.load(sys.stdin)["total"]["mib_per_s"], 1))' 2>/dev/null || echo "?"
}

fiojob() { # dir rw bs [extra...]: MiB/s (sequential) or IOPS (random)
	local dir=$1 rw=$2 bs=$3
	shift 3
	fio --name=seq --directory="$dir" --rw="$rw" --bs="$bs" --size="$SIZE" --ioengine=psync \
		--output-format=json "$@" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] else j["write"]
print(round(side["bw_bytes"] / 2**20, 1) if "'"$rw"'" != "randread" else round(side["iops"]))'
}

smallfiles() { # dir: create/stat/delete rates of FILES 1 KiB files, one process
	python3 - "$1/small" "$FILES" <<'EOF'
import json, os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
data = b"x" * 1024
names = [f"{d}/f{i:05d}" for i in range(n)]
rates = {}
t = time.monotonic()
for p in names:
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)
rates["create"] = n / (time.monotonic() - t)
t = time.monotonic()
for p in names:
    os.stat(p)
rates["stat"] = n / (time.monotonic() - t)
t = time.monotonic()
for p in names:
    os.unlink(p)
rates["delete"] = n / (time.monotonic() - t)
print(json.dumps({k: round(v) for k, v in rates.items()}))
EOF
}

declare -A r
r[native_put]=$(native put)
r[native_get]=$(native get --objects 4)
for fs in talus s3fs; do
	dir=$work/mnt-$fs
	r[${fs}_write]=$(fiojob "$dir" write 1M --end_fsync=1)
	r[${fs}_read]=$(fiojob "$dir" read 1M)
	r[${fs}_rand]=$(fiojob "$dir" randread 4k --runtime="$RUNTIME" --time_based)
	rm -f "$dir"/seq.*
	r[${fs}_small]=$(smallfiles "$dir")
done
load=$(cut -d' ' -f1-3 /proc/loadavg)

small() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "${r[${1}_small]}" "$2"; }
ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f"{a/b:.2f}" if b else "?")' "$1" "$2" 2>/dev/null || echo "?"; }

cat <<EOF
## FUSE mount: talus mount and s3fs (\`bench/mount.sh\`)

Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`SIZE=$SIZE FILES=$FILES RUNTIME=$RUNTIME bench/mount.sh\`
($(git rev-parse --short HEAD 2>/dev/null || echo unknown), load average at the end $load). One \`talus dev\` (4+2, 6 chunk servers);
\`talus mount\` through the native client, and s3fs $(s3fs --version 2>/dev/null | grep -o 'V[0-9.]*' | head -1) on the same cluster's S3 gateway
(\`-o use_path_request_style\`, defaults otherwise). fio $(fio --version): one job, psync, $SIZE file; sequential
writes end with an fsync; small files are $FILES files of 1 KiB created, stat'ed and deleted by one process.

| workload | talus mount | s3fs | talus / s3fs |
| --- | ---: | ---: | ---: |
| fio sequential write, 1 MiB blocks | ${r[talus_write]} MiB/s | ${r[s3fs_write]} MiB/s | $(ratio "${r[talus_write]}" "${r[s3fs_write]}") |
| fio sequential read, 1 MiB blocks | ${r[talus_read]} MiB/s | ${r[s3fs_read]} MiB/s | $(ratio "${r[talus_read]}" "${r[s3fs_read]}") |
| fio random read, 4 KiB, ${RUNTIME} s | ${r[talus_rand]} IOPS | ${r[s3fs_rand]} IOPS | $(ratio "${r[talus_rand]}" "${r[s3fs_rand]}") |
| create | $(small talus create)/s | $(small s3fs create)/s | $(ratio "$(small talus create)" "$(small s3fs create)") |
| stat | $(small talus stat)/s | $(small s3fs stat)/s | $(ratio "$(small talus stat)" "$(small s3fs stat)") |
| delete | $(small talus delete)/s | $(small s3fs delete)/s | $(ratio "$(small talus delete)" "$(small s3fs delete)") |

Native client, one stream of 64 MiB objects (\`talus bench put|get --meta --size 64MiB --concurrency 1\`):
PUT ${r[native_put]} MiB/s, GET ${r[native_get]} MiB/s. The mount's sequential write is
$(ratio "${r[talus_write]}" "${r[native_put]}") of the native PUT rate, its sequential read $(ratio "${r[talus_read]}" "${r[native_get]}") of the native GET rate.
EOF
