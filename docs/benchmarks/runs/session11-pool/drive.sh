#!/usr/bin/env bash
# docs/benchmarks/runs/session11-pool/drive.sh -- session11-slab2's: the paired idle-memory runs
# of session 11: A (main) and B (the pool branch) alternate on fresh
# processes, A B A B ..., for each configuration (shards, channels,
# subscriptions per connection), then raw WebSocket (`ringcast echo`).
#   BIN_A=/tmp/slab-bin/A BIN_B=/tmp/slab-bin/B drive.sh [PAIRS]
# FIRST=K: pairs K..PAIRS only. CFGS overrides the client configurations,
# RAW=0 skips the raw runs, OUT_DIR puts the runs elsewhere. Each run is ./hold.sh (session 9's plus `raw`);
# the table: ./summary.sh > summary.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN_A:?}" "${BIN_B:?}"
PAIRS=${1:-3}
export OUT=${OUT_DIR:-$here} N=${N:-15000} D=${D:-6} PORT=${PORT:-21700}
for cfg in ${CFGS:-"1:1:1" "2:1:1" "1:1000:1" "1:1000:5"}; do
  IFS=: read -r shards channels subs <<<"$cfg"
  cpu=0; [ "$shards" = 2 ] && cpu=0,1
  for i in $(seq "${FIRST:-1}" "$PAIRS"); do
    for b in A B; do
      bin=BIN_$b
      SHARDS=$shards CHANNELS=$channels SUBS=$subs SERVER_CPU=$cpu BIN=${!bin} \
        bash "$here/hold.sh" ws "ws-s${shards}-c${channels}-k${subs}-$b-$i"
    done
  done
done
if [ "${RAW:-1}" = 1 ]; then
  for i in $(seq "${FIRST:-1}" "$PAIRS"); do
    for b in A B; do
      bin=BIN_$b
      SHARDS=1 SERVER_CPU=0 BIN=${!bin} bash "$here/hold.sh" raw "raw-s1-$b-$i"
    done
  done
fi
