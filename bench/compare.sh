#!/usr/bin/env bash
# bench/compare.sh: talus and MinIO side by side (issue 7).
#
# Starts, on loopback and with all data under one temporary directory, a talus
# cluster (`talus dev`: metadata server, 6 chunk servers, S3 gateway, 4+2) and
# a 6-node MinIO with EC:2 (also 4+2); runs the same `talus bench` scenarios
# against both S3 endpoints in alternation, round after round; and writes the
# medians and ratios into bench/RESULTS.md and charts into bench/ (through
# bench/compare). Every process it starts and the temporary directory are
# removed on exit, failure and Ctrl-C included.
#
# A script rather than a `talus bench compare` mode: most of the work is
# running other programs (go install, make, seven servers, their health
# checks, signals and clean-up), which is what a shell is for, and it keeps
# MinIO-specific process management out of the talus binary. What needs real
# code, the statistics and charts, is Go (bench/compare).
#
# Usage: bench/compare.sh [--rounds N] [--duration D] [--warmup D]
#                         [--results FILE] [--charts DIR] [--talus-rev REV] [--keep]
#                         [--only REGEX]
#
#   --talus-rev REV  measure talus as committed at REV (built from `git archive`)
#                    instead of the working tree
#   --keep           leave the temporary directory (data, logs, JSON) behind
#   --only REGEX     run only the scenarios whose name (put-64MiB, ...) matches;
#                    needs --results, so that a partial run never replaces
#                    the full comparison in bench/RESULTS.md (its charts go
#                    beside FILE unless --charts says otherwise)
set -euo pipefail

readonly MINIO_MODULE=github.com/minio/minio
readonly MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # /work/shared/PEERS.md

rounds=3
duration=8s
warmup=2s
keep=
rev=
only=
results_given=
charts_given=
repo=$(cd "$(dirname "$0")/.." && pwd)
results=$repo/bench/RESULTS.md
charts=$repo/bench

die() {
	echo "compare: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--rounds) rounds=${2:?}; shift 2 ;;
	--duration) duration=${2:?}; shift 2 ;;
	--warmup) warmup=${2:?}; shift 2 ;;
	--results) results=${2:?}; results_given=1; shift 2 ;;
	--charts) charts=${2:?}; charts_given=1; shift 2 ;;
	--talus-rev) rev=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--only) only=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number, not $rounds"
for d in "$duration" "$warmup"; do
	[[ $d =~ ^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$ ]] || die "$d is not a duration such as 8s or 1m30s"
done

# Scenarios: name, workload, size, concurrency, objects to prefill (reads).
# Prefills are kept small enough to write in a few seconds on either store.
scenarios=(
	"put-4KiB put 4KiB 32 -"
	"get-4KiB get 4KiB 32 1000"
	"put-1MiB put 1MiB 16 -"
	"get-1MiB get 1MiB 16 256"
	"put-64MiB put 64MiB 4 -"
	"get-64MiB get 64MiB 4 8"
	"mixed-1MiB mixed 1MiB 16 256"
)

# The report goes into FILE between its markers; a new file starts empty.
# Failing here beats failing after ten minutes of runs.
[[ -e $results ]] || : >"$results" || die "cannot create $results"

if [[ -n $only ]]; then
	[[ -n $results_given ]] || die "--only needs --results FILE (a partial run must not replace bench/RESULTS.md)"
	[[ -n $charts_given ]] || charts=$(dirname "$results")
	kept=()
	for sc in "${scenarios[@]}"; do
		[[ ${sc%% *} =~ $only ]] && kept+=("$sc")
	done
	((${#kept[@]})) || die "no scenario matches --only $only"
	scenarios=("${kept[@]}")
fi

# --- Processes and clean-up --------------------------------------------------

work=
pids=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local pid i
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $work ]]; then
		if [[ -n $keep ]]; then
			echo "compare: kept $work" >&2
		else
			rm -rf "$work"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: run COMMAND until it succeeds.
wait_for() {
	local timeout=$1 what=$2 i
	shift 2
	for ((i = 0; i < timeout * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$what did not happen within ${timeout}s"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N: N consecutive ports nobody listens on.
free_ports() {
	local n=$1 base p ok try
	for ((try = 0; try < 50; try++)); do
		base=$((20000 + RANDOM % 12000)) # below the ephemeral ports (32768-)
		ok=1
		for ((p = base; p < base + n; p++)); do
			port_free "$p" || { ok=; break; }
		done
		[[ -n $ok ]] && { echo "$base"; return; }
	done
	die "found no $n free consecutive ports"
}

# CPU accounting, in clock ticks: the whole machine's busy time, and ours
# (the servers' and every finished child of this shell, i.e. the bench runs).
readonly tick=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }
# proc_ticks PID...: user and system time of the processes (all threads).
proc_ticks() {
	local sum=0 pid stat f
	for pid in "$@"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		stat=${stat##*) } # fields from the third on; the name may hold spaces
		read -r -a f <<<"$stat"
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}
# children_ticks: the time of this shell's finished children (the runs).
children_ticks() {
	local stat f
	stat=$(cat /proc/$$/stat)
	stat=${stat##*) }
	read -r -a f <<<"$stat"
	echo $((f[13] + f[14]))
}

# --- Tools -------------------------------------------------------------------

for tool in go git make curl jq awk; do
	command -v "$tool" >/dev/null || die "needs $tool on the PATH"
done

minio=$repo/.tools/bin/minio
if go version -m "$minio" 2>/dev/null | grep -q "mod[[:space:]]*$MINIO_MODULE[[:space:]]*$MINIO_VERSION"; then
	echo "compare: MinIO $MINIO_VERSION already in .tools/bin"
else
	echo "compare: installing MinIO $MINIO_VERSION into .tools/bin (about 6 minutes on 2 cores)"
	GOBIN=$repo/.tools/bin go install "$MINIO_MODULE@$MINIO_VERSION"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/talus-compare.XXXXXX")
mkdir -p "$work/runs" "$work/logs"
# Both stores reclaim deleted data only minutes later (talus's GC delay is
# 5 minutes, MinIO empties its trash in the background): the default run
# leaves up to about 40 GB in the directory before it ends.
free_gb=$(df -Pk "$work" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
((free_gb >= 45)) || echo "compare: warning: only ${free_gb} GiB free under $work; the default run needs about 40" >&2
if [[ -n $rev ]]; then
	commit=$(git -C "$repo" rev-parse --short "$rev^{commit}") || die "no commit $rev"
	echo "compare: building talus $commit"
	mkdir "$work/src"
	git -C "$repo" archive "$commit" | tar -x -C "$work/src"
	(cd "$work/src" && CGO_ENABLED=0 go build -o "$work/bin/talus" ./cmd/talus)
	talus=$work/bin/talus
else
	commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
	[[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]] && commit+=" with uncommitted changes"
	echo "compare: building talus (working tree)"
	make -s -C "$repo" build
	talus=$repo/bin/talus
fi
# Built now, so that a tree that does not compile fails before the runs.
(cd "$repo" && go build -o "$work/bin/report" ./bench/compare)
user=compare-admin
pass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# --- talus ---------------------------------------------------------------------

echo "compare: starting talus dev in $work/talus"
TALUS_ROOT_USER=$user TALUS_ROOT_PASSWORD=$pass "$talus" dev --dir "$work/talus" \
	--meta-port 0 --chunk-port 0 --s3-port 0 --chunks 6 --k 4 --m 2 >"$work/logs/talus.out" 2>"$work/logs/talus.err" &
talus_pid=$!
pids+=("$talus_pid")
talus_ready() {
	kill -0 "$talus_pid" 2>/dev/null || { cat "$work/logs/talus.err" >&2; die "talus dev exited"; }
	grep -q '^Ctrl-C stops it' "$work/logs/talus.out"
}
for ((i = 0; i < 600; i++)); do talus_ready && break || sleep 0.1; done
talus_ready || die "talus dev did not start within 60s (see $work/logs)"
talus_url=$(sed -n 's/^  S3 gateway *\(http:[^ ]*\).*/\1/p' "$work/logs/talus.out")
[[ -n $talus_url ]] || die "talus dev printed no S3 gateway address"

# --- MinIO ---------------------------------------------------------------------

base=$(free_ports 6)
endpoints=()
for ((i = 1; i <= 6; i++)); do
	endpoints+=("http://127.0.0.1:$((base + i - 1))$work/minio/d$i")
	mkdir -p "$work/minio/d$i"
done
echo "compare: starting MinIO on 127.0.0.1:$base-$((base + 5))"
minio_pids=()
for ((i = 1; i <= 6; i++)); do
	port=$((base + i - 1))
	# The PEERS.md traps: drives on the root filesystem, and loopback
	# endpoints that a MinIO believing itself in a container never resolves.
	MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_STORAGE_CLASS_STANDARD=EC:2 \
		MINIO_ROOTDRIVE_THRESHOLD_SIZE=1 _MINIO_SERVER_LOCAL=127.0.0.1:$port \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		"$minio" server --quiet --address "127.0.0.1:$port" "${endpoints[@]}" \
		>"$work/logs/minio$i.log" 2>&1 &
	minio_pids+=($!)
	pids+=($!)
done
minio_url=http://127.0.0.1:$base
for ((i = 0; i < 6; i++)); do
	wait_for 120 "MinIO node $((i + 1)) live" curl -sf "http://127.0.0.1:$((base + i))/minio/health/live"
done
wait_for 120 "MinIO cluster health" curl -sf "$minio_url/minio/health/cluster"

# --- Runs ----------------------------------------------------------------------

targets=(talus MinIO)
declare -A url=([talus]=$talus_url [MinIO]=$minio_url)
declare -A server_pids=([talus]="$talus_pid" [MinIO]="${minio_pids[*]}")
all_server_pids=("$talus_pid" "${minio_pids[@]}")

# bench_command WORKLOAD SIZE CONCURRENCY OBJECTS SEED ENDPOINT: the command.
bench_command() {
	local cmd=("$talus" bench "$1" --endpoint "$6" --size "$2" --concurrency "$3"
		--duration "$duration" --warmup "$warmup")
	[[ $4 != - ]] && cmd+=(--objects "$4")
	cmd+=(--seed "$5" --json)
	printf '%s\n' "${cmd[@]}"
}

runs=$work/runs/runs.tsv
echo "# round	scenario	target	result	other CPU (cores)	idle peer CPU (cores)" >"$runs"
export AWS_ACCESS_KEY_ID=$user AWS_SECRET_ACCESS_KEY=$pass
others_total=0 busy_start=$(busy_ticks) ours_start=$(($(proc_ticks "${all_server_pids[@]}") + $(children_ticks)))
start_s=$(date +%s.%N)
echo "compare: $rounds rounds of ${#scenarios[@]} scenarios, $duration each after $warmup of warm-up"
for ((round = 1; round <= rounds; round++)); do
	for ((s = 0; s < ${#scenarios[@]}; s++)); do
		read -r name workload size conc objects <<<"${scenarios[s]}"
		# Same seed against both: the same sizes, keys and data.
		seed=$((round * 100 + s + 1))
		order=("${targets[@]}")
		# Who goes first alternates by round, so that neither always runs
		# in the other's wake (page cache write-back, garbage collection).
		((round % 2 == 0)) && order=("${targets[1]}" "${targets[0]}")
		for target in "${order[@]}"; do
			peer=${targets[0]}
			[[ $target == "$peer" ]] && peer=${targets[1]}
			mapfile -t cmd < <(bench_command "$workload" "$size" "$conc" "$objects" "$seed" "${url[$target]}")
			out=r$round-$name-$target.json
			t0=$(date +%s.%N) b0=$(busy_ticks)
			o0=$(($(proc_ticks "${all_server_pids[@]}") + $(children_ticks)))
			# shellcheck disable=SC2086 # a list of pids
			p0=$(proc_ticks ${server_pids[$peer]})
			if ! "${cmd[@]}" >"$work/runs/$out" 2>"$work/logs/$out.err"; then
				tail -5 "$work/logs/$out.err" >&2
				die "round $round, $name against $target failed: ${cmd[*]}"
			fi
			t1=$(date +%s.%N) b1=$(busy_ticks)
			o1=$(($(proc_ticks "${all_server_pids[@]}") + $(children_ticks)))
			# shellcheck disable=SC2086
			p1=$(proc_ticks ${server_pids[$peer]})
			read -r other idle < <(awk -v b=$((b1 - b0)) -v o=$((o1 - o0)) -v p=$((p1 - p0)) \
				-v t="$t0" -v u="$t1" -v hz="$tick" 'BEGIN { w = (u - t) * hz; o = (b - o) / w; printf "%.2f %.2f\n", (o > 0 ? o : 0), p / w }')
			printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$target" "$out" "$other" "$idle" >>"$runs"
			jq -r --arg r "$round/$rounds" --arg t "$target" --arg o "$other" \
				'"round \($r)  \(.workload) \(.size) x\(.concurrency)  \($t): \(.total.ops_per_s | floor) ops/s, \(.total.mib_per_s * 10 | floor / 10) MiB/s, p99 \(.total.latency_ms.p99 * 10 | floor / 10) ms, \(.total.errors) errors (others used \($o) cores)"' \
				"$work/runs/$out"
		done
	done
done
end_s=$(date +%s.%N) busy_end=$(busy_ticks)
ours_end=$(($(proc_ticks "${all_server_pids[@]}") + $(children_ticks)))

# --- Report ----------------------------------------------------------------------

read -r other_cores ours_cores wall < <(awk -v b=$((busy_end - busy_start)) -v o=$((ours_end - ours_start)) \
	-v t="$start_s" -v u="$end_s" -v hz="$tick" 'BEGIN { w = (u - t) * hz; printf "%.2f %.2f %.0f\n", (b - o) / w, o / w, u - t }')
mapfile -t example < <(bench_command put 1MiB 16 - 101 '$ENDPOINT')
example[0]=talus
{
	echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`make compare\` (bench/compare.sh, $rounds rounds, $duration per run after $warmup of warm-up, ${wall}s in all)."
	echo
	echo "- Machine: $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), $(go env GOVERSION); one disk; everything on 127.0.0.1, all data under one temporary directory."
	echo "- talus $commit: \`talus dev --chunks 6 --k 4 --m 2\`, one process holding the metadata server, 6 chunk servers in 3 zones and the S3 gateway."
	echo "- MinIO $MINIO_VERSION (\`go install $MINIO_MODULE@$MINIO_VERSION\`): 6 processes, one drive each, \`MINIO_STORAGE_CLASS_STANDARD=EC:2\` (4+2), \`MINIO_ROOTDRIVE_THRESHOLD_SIZE=1\`, \`_MINIO_SERVER_LOCAL=127.0.0.1:<port>\`, \`MINIO_BROWSER=off\`; every node started with all six endpoints \`http://127.0.0.1:<port i>/<tmp>/minio/d<i>\`."
	echo "- Load: \`talus bench\` over S3 (minio-go) against each store's endpoint in turn, same seed (sizes, keys, data) for both; per scenario the two stores run back to back, and which goes first alternates by round. Both stores stay up throughout: the idle one's background work is in the other's figures (column *idle peer* below)."
	echo "- Box shared: while the runs went on, processes other than these used on average **$other_cores of the $(nproc) cores** (ours: $ours_cores; per run in the column *others* below). Treat differences under about 25% as noise (see ../shared/PEERS.md)."
	echo
	echo "The command of every run (WORKLOAD, SIZE, C, OBJECTS as in the tables; --objects only for get and mixed: 1000 of 4 KiB, 256 of 1 MiB, 8 of 64 MiB):"
	echo
	echo '```'
	echo "AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... talus bench WORKLOAD --endpoint \$ENDPOINT --size SIZE --concurrency C \\"
	echo "    --duration $duration --warmup $warmup [--objects OBJECTS] --seed ROUND*100+SCENARIO --json"
	echo "# e.g. ${example[*]}"
	echo '```'
} >"$work/preamble.md"

echo "compare: writing $results and charts into $charts"
"$work/bin/report" -runs "$runs" -preamble "$work/preamble.md" -results "$results" -charts "$charts"
echo "compare: done"
