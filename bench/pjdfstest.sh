#!/usr/bin/env bash
# bench/pjdfstest.sh: run the pjdfstest POSIX conformance suite against
# `talus mount` on a fresh `talus dev`, and print per-group results as
# Markdown for bench/RESULTS.md.
#
# Needs root, gcc, prove (perl) and a pjdfstest checkout:
#   git clone https://github.com/pjd/pjdfstest /tmp/pjdfstest-src
#   PJDFSTEST=/tmp/pjdfstest-src bench/pjdfstest.sh
# It is built without autotools (a config.h for Linux glibc is written here).
set -euo pipefail

src=${PJDFSTEST:?set PJDFSTEST to a pjdfstest checkout}
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/talus-pjdfstest.XXXXXX)
bin=$work/talus
go build -o "$bin" ./cmd/talus

cleanup() {
	cd /
	mountpoint -q "$work/mnt" 2>/dev/null && { umount "$work/mnt" 2>/dev/null || umount -l "$work/mnt"; }
	[ -f "$work/dev.pid" ] && kill "$(cat "$work/dev.pid")" 2>/dev/null && sleep 2
	rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/pjdfstest"
cp -r "$src/tests" "$src/pjdfstest.c" "$work/pjdfstest/"
cat >"$work/pjdfstest/config.h" <<'EOF'
#define _GNU_SOURCE 1
#define HAVE_SYS_SYSMACROS_H 1
#define HAVE_FACCESSAT 1
#define HAVE_FCHMODAT 1
#define HAVE_FCHOWNAT 1
#define HAVE_FSTATAT 1
#define HAVE_LINKAT 1
#define HAVE_MKDIRAT 1
#define HAVE_MKFIFOAT 1
#define HAVE_MKNODAT 1
#define HAVE_OPENAT 1
#define HAVE_POSIX_FALLOCATE 1
#define HAVE_READLINKAT 1
#define HAVE_RENAMEAT 1
#define HAVE_SYMLINKAT 1
#define HAVE_UNLINKAT 1
#define HAVE_UTIMENSAT 1
#define HAVE_STRUCT_STAT_ST_ATIM 1
#define HAVE_STRUCT_STAT_ST_MTIM 1
#define HAVE_STRUCT_STAT_ST_CTIM 1
EOF
gcc -O2 -o "$work/pjdfstest/pjdfstest" "$work/pjdfstest/pjdfstest.c"

(cd "$work" && exec "$bin" dev --dir data --meta-port 0 --chunk-port 0 --s3-port 0 >dev.out 2>dev.err) &
echo $! >"$work/dev.pid"
for _ in $(seq 100); do grep -q '^Ctrl-C' "$work/dev.out" 2>/dev/null && break; sleep 0.2; done
export TALUS_META=$(awk '/metadata/ {sub("http://", "", $2); print $2}' "$work/dev.out")
export TALUS_SECRET=$(cat "$work/data/secret")
"$bin" admin bucket create pjdfstest >/dev/null
mkdir "$work/mnt"
# The suite switches to other users: they may use the mount only with allow_other.
"$bin" mount pjdfstest "$work/mnt" --allow-other --daemon >/dev/null
mkdir "$work/mnt/run"
chmod 0777 "$work/mnt/run"
cd "$work/mnt/run"
prove -r "$work/pjdfstest/tests" >"$work/prove.out" 2>&1 || true
cd /

rev=${PJDFSTEST_REV:-$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)}
python3 - "$work/prove.out" "$work/pjdfstest/tests" "$rev" <<'EOF'
import collections, glob, re, sys
out, tests, rev = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
failed = {}
if "Test Summary Report" in out:
    summary = out[out.index("Test Summary Report"):]
    for m in re.finditer(r"(\S+\.t)\s+\(Wstat: \d+ Tests: (\d+) Failed: (\d+)\)", summary):
        failed[m.group(1)] = (int(m.group(2)), int(m.group(3)))
groups = collections.defaultdict(lambda: [0, 0, 0, 0])  # files, clean files, tests, passed
for f in sorted(glob.glob(tests + "/*/*.t")):
    g = groups[f.split("/")[-2]]
    g[0] += 1
    if f in failed:
        n, bad = failed[f]
        g[2] += n
        g[3] += n - bad
    else:
        m = re.search(r'echo "1\.\.(\d+)"', open(f).read())
        n = int(m.group(1)) if m else 0
        g[1] += 1
        g[2] += n
        g[3] += n
print(f"pjdfstest {rev}, `prove -r` in a 0777 directory of the mount (mounted with --allow-other), as root.\n")
print("| group | test files | files passing entirely | tests passing |")
print("| --- | ---: | ---: | ---: |")
for name, (files, clean, n, ok) in sorted(groups.items()):
    print(f"| {name} | {files} | {clean} | {ok} of {n} |")
total = [sum(g[i] for g in groups.values()) for i in range(4)]
print(f"| all | {total[0]} | {total[1]} | {total[3]} of {total[2]} |")
EOF
