#!/usr/bin/env bash
# End-to-end check of the S3 gateway with the aws CLI: a multipart upload and
# download of a 200 MiB file, a sync of 500 small files up and back, paged and
# delimited listings, and a presigned URL fetched with curl. Every transfer is
# checked with sha256.
#
# Usage: TALUS_S3_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... \
#        AWS_SECRET_ACCESS_KEY=... test/s3/aws-cli.sh
set -euo pipefail

: "${TALUS_S3_ENDPOINT:?set TALUS_S3_ENDPOINT to the gateway URL}"
: "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID}"
: "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_PAGER=""
# A CA bundle is for TLS; against a plain-http endpoint it only gets in the way.
if [[ "$TALUS_S3_ENDPOINT" == http://* ]]; then
	unset AWS_CA_BUNDLE
fi

aws() { command aws --endpoint-url "$TALUS_S3_ENDPOINT" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

work=$(mktemp -d)
bucket="cli-test-$(date +%s)-$RANDOM"
cleanup() {
	aws s3 rb "s3://$bucket" --force >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

step "create bucket $bucket"
aws s3 mb "s3://$bucket" >/dev/null
aws s3api head-bucket --bucket "$bucket" >/dev/null

step "multipart upload and download of 200 MiB"
head -c $((200 << 20)) /dev/urandom >"$work/big.bin"
aws s3 cp "$work/big.bin" "s3://$bucket/big/big.bin" --only-show-errors
etag=$(aws s3api head-object --bucket "$bucket" --key big/big.bin --query ETag --output text)
[[ "$etag" == *-* ]] || fail "200 MiB upload was not multipart: ETag $etag"
size=$(aws s3api head-object --bucket "$bucket" --key big/big.bin --query ContentLength --output text)
[[ "$size" == $((200 << 20)) ]] || fail "size $size"
aws s3 cp "s3://$bucket/big/big.bin" "$work/big.out" --only-show-errors
[[ "$(sha256sum <"$work/big.bin")" == "$(sha256sum <"$work/big.out")" ]] || fail "200 MiB file came back different"
rm -f "$work/big.out"

step "sync 500 small files up and back"
mkdir -p "$work/tree"
for d in $(seq 0 9); do
	mkdir -p "$work/tree/dir $d"
	for f in $(seq 0 49); do
		head -c $((RANDOM % 4096 + 1)) /dev/urandom >"$work/tree/dir $d/file+$f.txt"
	done
done
aws s3 sync "$work/tree" "s3://$bucket/tree" --only-show-errors
aws s3 sync "s3://$bucket/tree" "$work/back" --only-show-errors
(cd "$work/tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/up.sums"
(cd "$work/back" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/back.sums"
cmp -s "$work/up.sums" "$work/back.sums" || fail "synced tree differs: $(diff "$work/up.sums" "$work/back.sums" | head -5)"
# A second sync has nothing to do.
again=$(aws s3 sync "$work/tree" "s3://$bucket/tree" --dryrun | wc -l)
[[ "$again" == 0 ]] || fail "second sync wants to copy $again files"

step "list-objects-v2 with paging and delimiter"
# The CLI follows the continuation tokens and merges the pages.
count=$(aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --page-size 37 --output json | jq '.Contents | length')
[[ "$count" == 500 ]] || fail "paged listing found $count keys, want 500"
prefixes=$(aws s3api list-objects-v2 --bucket "$bucket" --prefix tree/ --delimiter / --page-size 3 --output json |
	jq -r '.CommonPrefixes[].Prefix' | sort | tr '\n' '|')
want=$(for d in $(seq 0 9); do echo "tree/dir $d/"; done | sort | tr '\n' '|')
[[ "$prefixes" == "$want" ]] || fail "delimited listing: $prefixes"
# Manual paging with continuation tokens.
token=""
seen=0
pages=0
while :; do
	args=(--bucket "$bucket" --prefix "tree/dir 3/" --max-keys 7)
	[[ -n "$token" ]] && args+=(--continuation-token "$token")
	page=$(command aws --endpoint-url "$TALUS_S3_ENDPOINT" s3api list-objects-v2 "${args[@]}" --no-paginate --output json)
	n=$(jq '.Contents | length' <<<"$page")
	kc=$(jq '.KeyCount' <<<"$page")
	[[ "$n" == "$kc" ]] || fail "KeyCount $kc for $n keys"
	seen=$((seen + n))
	pages=$((pages + 1))
	[[ "$(jq -r '.IsTruncated' <<<"$page")" == true ]] || break
	token=$(jq -r '.NextContinuationToken' <<<"$page")
	[[ $pages -lt 20 ]] || fail "listing does not end"
done
[[ "$seen" == 50 && "$pages" == 8 ]] || fail "manual paging saw $seen keys in $pages pages, want 50 in 8"

step "presigned URL with curl"
# aws CLI v1 presigns with SigV2 unless told otherwise; talus speaks SigV4 only.
printf '[default]\nregion = %s\ns3 =\n    signature_version = s3v4\n' "$AWS_DEFAULT_REGION" >"$work/config"
url=$(AWS_CONFIG_FILE="$work/config" aws s3 presign "s3://$bucket/tree/dir 1/file+7.txt" --expires-in 300)
curl -fsS -o "$work/presigned.out" "$url" || fail "presigned GET failed"
[[ "$(sha256sum <"$work/presigned.out")" == "$(sha256sum <"$work/tree/dir 1/file+7.txt")" ]] || fail "presigned download differs"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url/7.txt/8.txt}")
[[ "$code" == 403 ]] || fail "tampered presigned URL answered $code, want 403"

step "remove everything"
aws s3 rm "s3://$bucket" --recursive --only-show-errors
left=$(aws s3api list-objects-v2 --bucket "$bucket" --output json | jq '.Contents // [] | length')
[[ "$left" == 0 ]] || fail "$left keys left after rm --recursive"
aws s3 rb "s3://$bucket" >/dev/null
if aws s3api head-bucket --bucket "$bucket" 2>/dev/null; then fail "bucket still exists"; fi

echo "PASS: aws CLI against $TALUS_S3_ENDPOINT"
