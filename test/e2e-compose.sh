#!/usr/bin/env bash
# The compose cluster (docker-compose.yml: 3 metadata nodes, 6 chunk servers
# in 3 zones, 2 gateways) under the failures real clusters see, each in its
# own container on its own network address:
#
#   1. up from nothing, bounded wait for every health check;
#   2. 500 objects (1 KiB to 32 MiB) through both gateways with the aws CLI,
#      sha256 recorded;
#   3. docker kill two chunk servers: every object reads back intact; where
#      `talus admin status` and `talus meta --down-out-interval` exist, two
#      spare servers start and repair restores full redundancy onto them;
#   4. docker kill the metadata leader while both gateways take writes: both
#      resume within 5 s, nothing acknowledged is lost;
#   5. docker network disconnect a chunk server, then the metadata leader,
#      while readers check every byte they get: no wrong data, the cluster
#      heals after reconnecting;
#   6. docker compose kill, then up: every acknowledged object is intact.
#
# The cluster is torn down (down -v) on every exit. Needs docker with
# compose (v2 plugin or docker-compose v1), the aws CLI, python3 with boto3,
# and the image talus:dev (`make image`). Run by `make test-compose`.
#
# Knobs: E2E_OBJECTS (500), E2E_MAX_MIB (32), E2E_BUDGET (900 s, the whole
# run), E2E_FAILOVER_MAX (5 s), E2E_PARTITION_SECONDS (15), TALUS_IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OBJECTS=${E2E_OBJECTS:-500}
MAX_MIB=${E2E_MAX_MIB:-32}
BUDGET=${E2E_BUDGET:-900}
FAILOVER_MAX=${E2E_FAILOVER_MAX:-5}
PARTITION_SECONDS=${E2E_PARTITION_SECONDS:-15}
IMAGE=${TALUS_IMAGE:-talus:dev}
BUCKET=e2e
CHUNKS=(chunk1 chunk2 chunk3 chunk4 chunk5 chunk6)
METAS=(meta1 meta2 meta3)
SERVICES=("${METAS[@]}" "${CHUNKS[@]}" gateway1 gateway2)

t0=$SECONDS
log() { printf '[%4ds] %s\n' $((SECONDS - t0)) "$*"; }
fail() {
	log "FAIL: $*" >&2
	exit 1
}

if docker compose version >/dev/null 2>&1; then
	DC=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	DC=(docker-compose)
else
	fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE not found; build it with 'make image'"
command -v aws >/dev/null || fail "the aws CLI is not installed"
python3 -c 'import boto3' 2>/dev/null || fail "python3 with boto3 is needed"

# A project name, network, subnet and host ports of its own, so that this
# run cannot clash with another cluster on the same engine.
PROJECT="talus-e2e-$$-$RANDOM"
NET="${PROJECT}_cluster"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/talus-e2e.XXXXXX")
PIDS=()
WATCHDOG=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$WATCHDOG" ] && pkill -TERM -P "$WATCHDOG" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$rc" != 0 ] && [ -f "$WORK/env" ]; then
		log "cluster state at failure:"
		timeout 60 "${DC[@]}" --env-file "$WORK/env" -p "$PROJECT" -f "$ROOT/docker-compose.yml" ps || true
		timeout 60 "${DC[@]}" --env-file "$WORK/env" -p "$PROJECT" -f "$ROOT/docker-compose.yml" logs --tail 30 || true
	fi
	if [ -f "$WORK/env" ]; then
		log "docker compose down -v"
		timeout 120 "${DC[@]}" --env-file "$WORK/env" -p "$PROJECT" -f "$ROOT/docker-compose.yml" down -v --remove-orphans >/dev/null 2>&1 ||
			log "down -v failed; remove project $PROJECT by hand"
	fi
	rm -rf "$WORK"
	log "exit $rc"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The whole run is bounded: past the budget the script stops its children
# (by parent pid) and itself, and the EXIT trap still tears the cluster down.
(
	sleep "$BUDGET"
	echo "e2e-compose: over the budget of ${BUDGET}s, stopping" >&2
	pkill -TERM -P $$ || true
	kill -TERM $$
) &
WATCHDOG=$!
PIDS+=("$WATCHDOG")

free_subnet() {
	local used i x
	used=$({
		docker network ls -q | xargs -r docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}'
		ip -4 route 2>/dev/null | awk '{print $1}'
	} | tr ' ' '\n')
	for i in $(seq 1 50); do
		x=$((RANDOM % 200 + 20))
		if ! grep -q "^172\.30\.$x\." <<<"$used"; then
			echo "172.30.$x"
			return
		fi
	done
	fail "no free 172.30.x.0/24 for the cluster network"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

IMAGE_HELP() { docker run --rm "$IMAGE" "$@" --help 2>&1 || true; }
# Features that may not exist yet in this build: check each one only if the
# binary has it.
HAVE_DOWN_OUT=0
HAVE_STATUS=0
IMAGE_HELP meta | grep -q -- '-down-out-interval' && HAVE_DOWN_OUT=1
docker run --rm "$IMAGE" admin status --help >/dev/null 2>&1 && HAVE_STATUS=1
META_FLAGS="--down-after 4s"
[ "$HAVE_DOWN_OUT" = 1 ] && META_FLAGS="$META_FLAGS --down-out-interval ${E2E_DOWN_OUT:-20s}"

export TALUS_SECRET="e2e-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TALUS_ROOT_USER=e2eadmin
export TALUS_ROOT_PASSWORD="p$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
S3_PORT=$(free_port)
S3_PORT_2=$(free_port)
NET_PREFIX=$(free_subnet)
cat >"$WORK/env" <<EOF
TALUS_IMAGE=$IMAGE
TALUS_SECRET=$TALUS_SECRET
TALUS_ROOT_USER=$TALUS_ROOT_USER
TALUS_ROOT_PASSWORD=$TALUS_ROOT_PASSWORD
TALUS_S3_BIND=127.0.0.1
TALUS_S3_PORT=$S3_PORT
TALUS_S3_PORT_2=$S3_PORT_2
TALUS_NET_PREFIX=$NET_PREFIX
TALUS_LOG_LEVEL=info
TALUS_META_FLAGS=$META_FLAGS
TALUS_CHUNK_FLAGS=
TALUS_GATEWAY_FLAGS=
EOF
# Only what the env file says, not the caller's TALUS_* or .env.
unset TALUS_IMAGE TALUS_S3_BIND TALUS_S3_PORT TALUS_S3_PORT_2 TALUS_NET_PREFIX TALUS_META_FLAGS TALUS_CHUNK_FLAGS TALUS_GATEWAY_FLAGS TALUS_LOG_LEVEL

export AWS_ACCESS_KEY_ID=$TALUS_ROOT_USER AWS_SECRET_ACCESS_KEY=$TALUS_ROOT_PASSWORD AWS_DEFAULT_REGION=us-east-1
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN || true
GW1=http://127.0.0.1:$S3_PORT
GW2=http://127.0.0.1:$S3_PORT_2

PROFILE=()
dc() { timeout 180 "${DC[@]}" --env-file "$WORK/env" -p "$PROJECT" -f "$ROOT/docker-compose.yml" "${PROFILE[@]}" "$@"; }
cid() { dc ps -q "$1"; }
s3() {
	local ep=$1
	shift
	timeout 300 aws --endpoint-url "$ep" "$@"
}
# talus admin from a throwaway container on the cluster network.
admin() {
	timeout 30 docker run --rm --network "$NET" -e TALUS_SECRET \
		-e TALUS_META=meta1:7700,meta2:7700,meta3:7700 "$IMAGE" admin "$@"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(cid "$1")" 2>/dev/null || echo gone; }
wait_healthy() {
	local limit=$1 s bad
	shift
	for _ in $(seq 1 "$limit"); do
		bad=""
		for s in "$@"; do
			[ "$(health "$s")" = healthy ] || bad="$bad $s"
		done
		[ -z "$bad" ] && return 0
		sleep 1
	done
	fail "not healthy after ${limit}s:$bad"
}
# wait_write EP LIMIT: until a 1 MiB PUT (six shards, so every chunk server
# must be placeable) succeeds through EP.
wait_write() {
	head -c 1048576 /dev/urandom >"$WORK/probe.bin"
	for _ in $(seq 1 "$2"); do
		if timeout 20 aws --endpoint-url "$1" s3 cp --only-show-errors "$WORK/probe.bin" "s3://$BUCKET/probe" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	fail "no PUT through $1 succeeded within $2 attempts"
}
leader() {
	local l
	l=$(admin meta status --json | json 'd["leader"]') && [ -n "$l" ] || fail "no metadata leader: $(admin meta status 2>&1 || true)"
	echo "$l"
}
# wait_meta_healed LIMIT: all three metadata nodes voters, a leader, and
# every follower caught up to within 10 entries.
wait_meta_healed() {
	local st
	for _ in $(seq 1 "$1"); do
		if st=$(admin meta status --json 2>/dev/null) &&
			python3 -c '
import json, sys
d = json.loads(sys.argv[1])
s = d.get("servers") or []
ok = d.get("leader") and len(s) == 3 and all(x["suffrage"] == "Voter" and x["lag"] <= 10 for x in s)
sys.exit(0 if ok else 1)' "$st"; then
			return 0
		fi
		sleep 1
	done
	fail "metadata group did not heal within $1 tries: $(admin meta status 2>&1 || true)"
}
# verify_all EP MANIFEST...: download the whole bucket through EP and check
# every manifest line (a missing object fails too).
verify_all() {
	local ep=$1 n
	shift
	rm -rf "$WORK/get"
	mkdir -p "$WORK/get"
	s3 "$ep" s3 cp --recursive --only-show-errors "s3://$BUCKET/" "$WORK/get/" ||
		fail "downloading the bucket through $ep failed"
	cat "$@" >"$WORK/get/.manifest"
	n=$(wc -l <"$WORK/get/.manifest")
	(cd "$WORK/get" && sha256sum --quiet --strict -c .manifest) || fail "objects differ from what was written (see above)"
	rm -rf "$WORK/get"
	log "  $n objects read back through $ep, every sha256 matches"
}
# load MODE EP PREFIX MANIFEST SECONDS: start a background boto3 writer or
# reader; its pid is left in LOAD_PID.
load() {
	python3 "$ROOT/test/e2e-compose-load.py" "$1" --endpoint "$2" --bucket "$BUCKET" --prefix "$3" \
		--manifest "$4" --log "$WORK/$3.$1.log" --seconds "$5" --stop "$WORK/stop" >"$WORK/$3.$1.out" 2>&1 &
	LOAD_PID=$!
	PIDS+=("$LOAD_PID")
}
stop_load() {
	touch "$WORK/stop"
	local p rc=0
	for p in "$@"; do wait "$p" || rc=1; done
	rm -f "$WORK/stop"
	return $rc
}
# resume_after LOG T: seconds from T until the first write started at or
# after T was acknowledged (999 when none was).
resume_after() {
	awk -v t="$2" '$1 == "ack" && $2 >= t { printf "%.1f\n", $3 - t; found = 1; exit } END { if (!found) print 999 }' "$1"
}

log "project $PROJECT, network $NET_PREFIX.0/24, S3 on 127.0.0.1:$S3_PORT and :$S3_PORT_2, image $IMAGE"
log "features: down-out-interval=$HAVE_DOWN_OUT admin-status=$HAVE_STATUS"

# 1. Up from nothing.
log "1. docker compose up -d"
dc up -d >/dev/null 2>&1 || { dc up -d; fail "compose up failed"; }
wait_healthy 180 "${SERVICES[@]}"
log "  all ${#SERVICES[@]} containers healthy"
s3 "$GW1" s3 mb "s3://$BUCKET" >/dev/null
wait_write "$GW1" 60
wait_write "$GW2" 60
log "  writes work through both gateways; metadata leader: $(leader)"

# 2. Objects of mixed sizes through both gateways.
log "2. writing $OBJECTS objects (1 KiB to $MAX_MIB MiB) through both gateways"
mkdir -p "$WORK/objs/a" "$WORK/objs/b"
python3 - "$WORK/objs" "$OBJECTS" "$MAX_MIB" <<'EOF'
import os, random, sys
root, n, max_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(8)
total = 0
for i in range(1, n + 1):
    if i == n:
        size = max_mib << 20                                 # the largest
    elif i % 50 == 0:
        size = rng.randint(8 << 20, max_mib << 20)           # several segments' worth of stripes
    elif i % 10 == 0:
        size = rng.randint(1 << 20, 8 << 20)
    else:
        size = rng.randint(1 << 10, 1 << 20)                 # inline (<= 64 KiB) and small
    with open(os.path.join(root, "ab"[i % 2], f"obj-{i:04d}"), "wb") as f:
        f.write(os.urandom(size))
    total += size
print(f"{total / (1 << 20):.0f}")
EOF
(cd "$WORK/objs" && sha256sum a/* b/*) >"$WORK/manifest"
w0=$SECONDS
s3 "$GW1" s3 cp --recursive --only-show-errors "$WORK/objs/a" "s3://$BUCKET/a/" &
up1=$!
s3 "$GW2" s3 cp --recursive --only-show-errors "$WORK/objs/b" "s3://$BUCKET/b/" || fail "upload through gateway2 failed"
wait "$up1" || fail "upload through gateway1 failed"
log "  $(du -sm "$WORK/objs" | cut -f1) MiB in $OBJECTS objects written in $((SECONDS - w0))s"
rm -rf "$WORK/objs"
touch "$WORK/load1.manifest" "$WORK/load2.manifest" "$WORK/part.manifest"

# 3. Two chunk servers die (zones a and b).
log "3. docker kill chunk1 chunk3"
docker kill "$(cid chunk1)" "$(cid chunk3)" >/dev/null
verify_all "$GW2" "$WORK/manifest"
if [ "$HAVE_DOWN_OUT" = 1 ] && [ "$HAVE_STATUS" = 1 ]; then
	# Six servers less two cannot hold six distinct shards: start the two
	# spares (zones a and b), as replacements for the dead machines.
	PROFILE=(--profile spare)
	SERVICES+=(chunk7 chunk8)
	dc up -d chunk7 chunk8 >/dev/null 2>&1
	wait_healthy 90 chunk7 chunk8
	log "  spares chunk7, chunk8 up; waiting for repair to restore full redundancy (grace ${E2E_DOWN_OUT:-20s})"
	ok=0
	for _ in $(seq 1 300); do
		if st=$(admin status --json 2>/dev/null) && python3 -c '
import json, sys
d = json.loads(sys.argv[1])
dead = [n for n in d["nodes"] if n["id"] in ("chunk1", "chunk3")]
r = d["repair"]
ok = len(dead) == 2 and all(n["state"] == "out" and n["shards"] == 0 for n in dead) \
    and r["queued"] == 0 and r["inFlight"] == 0
sys.exit(0 if ok else 1)' "$st"; then
			ok=1
			break
		fi
		sleep 1
	done
	[ "$ok" = 1 ] || fail "repair did not restore full redundancy within 300s: $(admin status 2>&1 || true)"
	log "  repair done: $(admin status --json | json 'd["repair"]')"
	verify_all "$GW1" "$WORK/manifest"
else
	log "  SKIP repair check: this build has no 'talus admin status' and/or 'talus meta --down-out-interval'"
fi
dc up -d chunk1 chunk3 >/dev/null 2>&1
wait_healthy 90 chunk1 chunk3
wait_write "$GW1" 60
log "  chunk1 and chunk3 back"

# 4. The metadata leader dies under write load on both gateways.
L=$(leader)
log "4. docker kill the metadata leader ($L) while both gateways take writes"
load write "$GW1" load1 "$WORK/load1.manifest" 120
w1=$LOAD_PID
load write "$GW2" load2 "$WORK/load2.manifest" 120
w2=$LOAD_PID
sleep 4
docker kill "$(cid "$L")" >/dev/null
kill_t=$(date +%s.%N)
sleep $((FAILOVER_MAX + 6))
r1=$(resume_after "$WORK/load1.write.log" "$kill_t")
r2=$(resume_after "$WORK/load2.write.log" "$kill_t")
log "  writes resumed after ${r1}s on gateway1, ${r2}s on gateway2; new leader $(leader)"
dc up -d "$L" >/dev/null 2>&1
wait_healthy 90 "$L"
wait_meta_healed 60
stop_load "$w1" "$w2" || fail "a load writer crashed: $(cat "$WORK"/load?.write.out)"
awk -v m="$FAILOVER_MAX" -v a="$r1" -v b="$r2" 'BEGIN { exit !(a <= m && b <= m) }' ||
	fail "writes did not resume within ${FAILOVER_MAX}s of the leader kill (gateway1 ${r1}s, gateway2 ${r2}s)"
log "  $L back, group healed; $(cat "$WORK/load1.manifest" "$WORK/load2.manifest" | wc -l) writes acknowledged," \
	"$(cat "$WORK/load1.write.log" "$WORK/load2.write.log" | grep -c '^err' || true) failed during the failover"
verify_all "$GW2" "$WORK/manifest" "$WORK/load1.manifest" "$WORK/load2.manifest"

# 5. Network partitions, with readers checking every byte.
partition() { # partition SERVICE [--ip ADDR]
	local svc=$1 c
	shift
	c=$(cid "$svc")
	log "  docker network disconnect $svc"
	docker network disconnect "$NET" "$c"
	sleep "$PARTITION_SECONDS"
	docker network connect --alias "$svc" "$@" "$NET" "$c"
	log "  reconnected $svc after ${PARTITION_SECONDS}s"
}
log "5a. partition a chunk server (chunk2) under reads and writes"
cat "$WORK/manifest" "$WORK/load1.manifest" "$WORK/load2.manifest" >"$WORK/all.manifest"
load read "$GW1" read1 "$WORK/all.manifest" 300
rd1=$LOAD_PID
load read "$GW2" read2 "$WORK/all.manifest" 300
rd2=$LOAD_PID
load write "$GW1" part "$WORK/part.manifest" 300
wp=$LOAD_PID
partition chunk2
wait_healthy 60 chunk2
wait_write "$GW2" 60
L=$(leader)
log "5b. partition the metadata leader ($L) under reads and writes"
ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$(cid "$L")")
partition "$L" --ip "$ip"
wait_healthy 60 "$L"
wait_meta_healed 60
wait_write "$GW1" 60
wait_write "$GW2" 60
log "  healed: leader $(leader), all three voters caught up, writes work on both gateways"
stop_load "$wp" || fail "the partition writer crashed: $(cat "$WORK/part.write.out")"
stop_load "$rd1" "$rd2" || fail "a reader got WRONG DATA or crashed: $(cat "$WORK"/read?.read.out)"
sed "s/^/  /" "$WORK/read1.read.out" "$WORK/read2.read.out"
log "  readers: no wrong data; $(wc -l <"$WORK/part.manifest") writes acknowledged during the partitions," \
	"$(grep -c '^err' "$WORK/part.write.log" || true) failed"

# 6. Power loss: every container killed at once.
log "6. docker compose kill, then up -d"
dc kill >/dev/null 2>&1
dc up -d >/dev/null 2>&1
wait_healthy 180 "${SERVICES[@]}"
wait_meta_healed 60
wait_write "$GW1" 60
verify_all "$GW1" "$WORK/manifest" "$WORK/load1.manifest" "$WORK/load2.manifest" "$WORK/part.manifest"

log "PASS in $((SECONDS - t0))s"
