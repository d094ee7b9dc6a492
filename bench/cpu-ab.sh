#!/usr/bin/env bash
# bench/cpu-ab.sh: CPU per byte of two talus builds, run alternately on the
# same machine, so that a change's effect on CPU shows through the noise a
# shared box puts into throughput.
#
# Usage: bench/cpu-ab.sh [--rounds N] OLD_BINARY NEW_BINARY WORKLOAD SIZE CONCURRENCY [OBJECTS]
#   e.g. go build -o /tmp/old ./cmd/talus (at the old commit), then
#        bench/cpu-ab.sh /tmp/old ./talus put 64MiB 4
#
# Each run starts a fresh `talus dev` of the binary under test (ports 7700-7706
# and 9000 must be free), drives it with `talus bench` of NEW_BINARY over S3
# for 10 s, and prints MiB/s and the dev process's CPU seconds per GiB moved
# (user + system, from /proc). Everything it starts it stops; its data goes
# to a temporary directory it removes.
set -euo pipefail

rounds=2
if [[ ${1:-} == --rounds ]]; then
	rounds=$2
	shift 2
fi
(($# >= 5)) || {
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
old=$1 new=$2 workload=$3 size=$4 conc=$5 objects=${6:-}
for b in "$old" "$new"; do
	[[ -x $b ]] || {
		echo "cpu-ab: $b is not an executable" >&2
		exit 2
	}
done
for tool in jq bc; do
	command -v $tool >/dev/null || {
		echo "cpu-ab: needs $tool on the PATH" >&2
		exit 2
	}
done
work=$(mktemp -d "${TMPDIR:-/tmp}/talus-cpu-ab.XXXXXX")
pid=
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=cpuab AWS_SECRET_ACCESS_KEY=cpuab-secret-1234
extra=()
[[ -n $objects ]] && extra=(--objects "$objects")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
	local bin=$1
	rm -rf "$work/data"
	TALUS_ROOT_USER=$AWS_ACCESS_KEY_ID TALUS_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
		"$bin" dev --dir "$work/data" >"$work/out" 2>"$work/err" &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		grep -q '^Ctrl-C' "$work/out" 2>/dev/null && break
		sleep 0.1
	done
	grep -q '^Ctrl-C' "$work/out" || {
		cat "$work/err" >&2
		echo "cpu-ab: $bin dev did not start" >&2
		exit 1
	}
	local bench=("$new" bench "$workload" --endpoint http://127.0.0.1:9000 --size "$size" --concurrency "$conc" "${extra[@]}")
	if [[ $workload == get || $workload == mixed ]]; then
		"${bench[@]}" --duration 1s --warmup 0s >/dev/null 2>&1 # prefill and warm caches
	fi
	local t0 t1 out
	t0=$(cpu_ticks "$pid")
	out=$("${bench[@]}" --duration 10s --warmup 0s --json 2>/dev/null)
	t1=$(cpu_ticks "$pid")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
	local mibs cpu gib
	mibs=$(jq '.total.mib_per_s' <<<"$out")
	cpu=$(bc <<<"scale=2; ($t1 - $t0) / $(getconf CLK_TCK)")
	gib=$(bc <<<"scale=4; $mibs * 10 / 1024")
	printf '%-12s %s %s x%s: %8.1f MiB/s, %6.2f CPU-s, %5.2f CPU-s/GiB (load %s)\n' \
		"$(basename "$bin")" "$workload" "$size" "$conc" "$mibs" "$cpu" "$(bc <<<"scale=3; $cpu / $gib")" "$(cut -d' ' -f1 /proc/loadavg)"
}

for ((r = 0; r < rounds; r++)); do
	run "$old"
	run "$new"
done
