#!/usr/bin/env bash
# scripts/bench-hold-pairs.sh -- paired idle-memory runs: A (e.g. main) and
# B (a change) alternate on fresh processes, A B A B ..., per configuration
# (shards:channels:subscriptions per client), then raw WebSocket
# (`ringcast echo`). Each run is scripts/bench-hold.sh (with its warm-up;
# WARMUP=0 for none), written to OUT_DIR; the tables:
# scripts/bench-hold-summary.sh OUT_DIR > OUT_DIR/summary.md.
#   BIN_A=DIR BIN_B=DIR OUT_DIR=DIR [CFGS="1:1:1 2:1:1"] [RAW=0] [TAG=-w0] \
#     scripts/bench-hold-pairs.sh [PAIRS]
# TAG is appended to each configuration's name (runs with and without the
# warm-up side by side); FIRST=K runs pairs K..PAIRS only; HOLD_SCRIPT runs
# another script of bench-hold.sh's interface for each run (an older run
# folder's hold.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hold=${HOLD_SCRIPT:-$here/bench-hold.sh}
: "${BIN_A:?}" "${BIN_B:?}" "${OUT_DIR:?}"
PAIRS=${1:-3}
export OUT=$OUT_DIR N=${N:-15000} D=${D:-6} PORT=${PORT:-21700}
for cfg in ${CFGS:-"1:1:1" "2:1:1" "1:1000:1" "1:1000:5"}; do
  IFS=: read -r shards channels subs <<<"$cfg"
  cpu=0; [ "$shards" = 2 ] && cpu=0,1
  for i in $(seq "${FIRST:-1}" "$PAIRS"); do
    for b in A B; do
      bin=BIN_$b
      SHARDS=$shards CHANNELS=$channels SUBS=$subs SERVER_CPU=$cpu BIN=${!bin} \
        bash "$hold" ws "ws-s${shards}-c${channels}-k${subs}${TAG:-}-$b-$i"
    done
  done
done
if [ "${RAW:-1}" = 1 ]; then
  for i in $(seq "${FIRST:-1}" "$PAIRS"); do
    for b in A B; do
      bin=BIN_$b
      SHARDS=1 SERVER_CPU=0 BIN=${!bin} bash "$hold" raw "raw-s1${TAG:-}-$b-$i"
    done
  done
fi
