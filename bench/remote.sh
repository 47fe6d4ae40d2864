#!/usr/bin/env bash
# Benchmark of the upload to a remote target: throughput and peak memory
# (RSS) of uploading one large archive to a real S3 server (versitygw on
# 127.0.0.1, data on the local disk), plain and encrypted with age. Prints
# a Markdown table of the medians; docs/benchmarks.md keeps the numbers.
#
#   bench/remote.sh                 # SIZE_GB=4 REPEAT=3
#   SIZE_GB=1 REPEAT=1 bench/remote.sh
#
# Needs Go, and versitygw ($AUTOBACKUP_VERSITYGW, else built by
# scripts/build-versitygw.sh). Needs about 2 x SIZE_GB of free disk in
# $WORK (default: a temporary folder, removed on exit).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_GB=${SIZE_GB:-4}
REPEAT=${REPEAT:-3}
work=${WORK:-$(mktemp -d /tmp/autobackup-bench-remote.XXXXXX)}
vgw=${AUTOBACKUP_VERSITYGW:-$("$root/scripts/build-versitygw.sh")}
pid=
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[[ -z ${WORK:-} ]] && rm -rf "$work"
	return 0
}
trap cleanup EXIT

mkdir -p "$work/iam" "$work/data/bench" "$work/sidecar" "$work/backup"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret-$RANDOM$RANDOM
ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
	"$vgw" --port "127.0.0.1:$port" --iam-dir "$work/iam" posix --sidecar "$work/sidecar" "$work/data" >"$work/versitygw.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done

tool=$work/remoteupload
(cd "$root" && go build -o "$tool" ./bench/cmd/remoteupload)
recipient=$(cd "$root" && go run filippo.io/age/cmd/age-keygen 2>/dev/null | sed -n 's/^# public key: //p')
[[ -n $recipient ]] || { echo "bench/remote.sh: could not make an age key" >&2; exit 1; }

echo "preparing a ${SIZE_GB} GB archive in $work/backup (once)" >&2
"$tool" -work "$work/backup" -size-gb "$SIZE_GB" -endpoint "http://127.0.0.1:$port" -bucket bench >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| upload | runs | median time | median throughput | peak RSS (max of runs) |"
echo "|---|---|---|---|---|"
for mode in plain age; do
	enc=
	[[ $mode == age ]] && enc=$recipient
	: >"$work/$mode.jsonl"
	for _ in $(seq "$REPEAT"); do
		sync
		"$tool" -work "$work/backup" -size-gb "$SIZE_GB" -endpoint "http://127.0.0.1:$port" -bucket bench -encrypt "$enc" >>"$work/$mode.jsonl"
	done
	secs=$(python3 -c 'import json,sys; [print(json.loads(l)["seconds"]) for l in open(sys.argv[1])]' "$work/$mode.jsonl" | median)
	mbps=$(python3 -c 'import json,sys; [print(json.loads(l)["mb_per_s"]) for l in open(sys.argv[1])]' "$work/$mode.jsonl" | median)
	rss=$(python3 -c 'import json,sys; print(max(json.loads(l)["peak_rss_mb"] for l in open(sys.argv[1])))' "$work/$mode.jsonl")
	printf '| %s %s GB | %s | %.1f s | %.0f MB/s | %.0f MB |\n' "$mode" "$SIZE_GB" "$REPEAT" "$secs" "$mbps" "$rss"
done
