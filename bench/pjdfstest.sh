#!/usr/bin/env bash
# bench/pjdfstest.sh: run the pjdfstest POSIX conformance suite against
# `talus mount` on a fresh `talus dev`, and print per-group results as
# Markdown for bench/RESULTS.md.
#
# Needs root, gcc, prove (perl) and a pjdfstest checkout:
#   git clone https://github.com/pjd/pjdfstest /tmp/pjdfstest-src
#   PJDFSTEST=/tmp/pjdfstest-src bench/pjdfstest.sh
# It is built without autotools (a config.h for Linux glibc is written here).
# PJDFSTEST_LOG=file keeps prove's verbose output.
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
prove -rv "$work/pjdfstest/tests" >"$work/prove.out" 2>&1 || true
cd /
[ -n "${PJDFSTEST_LOG:-}" ] && cp "$work/prove.out" "$PJDFSTEST_LOG"

rev=${PJDFSTEST_REV:-$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)}
python3 - "$work/prove.out" "$rev" <<'EOF'
import collections, re, sys
rev = sys.argv[2]
# Per test file: its plan, and how many cases passed (a TODO counts as
# passed, as prove counts it). A file that planned one case where its
# source plans more quit early: the feature does not exist on Linux.
files = {}
cur = None
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^(\S+/tests/(\w+)/\S+\.t) \.+", line)
    if m:
        cur = files.setdefault(m.group(1), {"group": m.group(2), "plan": 0, "ok": 0})
        continue
    if cur is None:
        continue
    if m := re.match(r"^1\.\.(\d+)", line):
        cur["plan"] = int(m.group(1))
    elif re.match(r"^ok \d+", line) or re.match(r"^not ok \d+.*# TODO", line):
        cur["ok"] += 1
groups = collections.defaultdict(lambda: [0, 0, 0, 0, 0])  # files, skipped, clean, cases, passed
for path, f in files.items():
    g = groups[f["group"]]
    g[0] += 1
    src = re.search(r'echo "1\.\.(\d+)"', open(path).read())
    if f["plan"] == 1 and src and src.group(1) != "1":
        g[1] += 1
        continue
    g[2] += f["ok"] == f["plan"]
    g[3] += f["plan"]
    g[4] += min(f["ok"], f["plan"])
print(f"pjdfstest {rev}, `prove -r` in a 0777 directory of the mount (mounted with --allow-other), as root.\n")
print("| group | test files | not for Linux (skipped) | files passing entirely | cases passing |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, (n, skipped, clean, cases, ok) in sorted(groups.items()):
    print(f"| {name} | {n} | {skipped} | {clean} | {ok} of {cases} |")
t = [sum(g[i] for g in groups.values()) for i in range(5)]
print(f"| all | {t[0]} | {t[1]} | {t[2]} | {t[4]} of {t[3]} |")
EOF
