#!/usr/bin/env bash
# docs/benchmarks/runs/session8-mem/drive.sh -- the paired idle-memory runs of
# session 8: A (main, c48ad9e) against C (branch mem-frag: handshake workers,
# smaller transient buffers, one-slot subscription list, trim after bursts),
# alternating A, C, A, C, ... on fresh processes, via hold.sh.
#   BIN_A=/tmp/s8bin/A BIN_C=/tmp/s8bin/C drive.sh
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$PWD}
run() { # kind name bin [N]
  local kind=$1 name=$2 bin=$3
  N=${4:-15000} BIN=$bin OUT=$OUT STATS=1 POST_TRIM=1 ./hold.sh "$kind" "$name" || echo "$name failed" >&2
}
for r in 1 2 3; do
  for kind in ws sse ws2api; do
    run $kind $kind-A-$r "$BIN_A"
    run $kind $kind-C-$r "$BIN_C"
  done
done
for r in 1 2; do
  run http_stream http_stream-A-$r "$BIN_A"
  run http_stream http_stream-C-$r "$BIN_C"
  run ws2api ws2api5k-A-$r "$BIN_A" 5000
  run ws2api ws2api5k-C-$r "$BIN_C" 5000
done
