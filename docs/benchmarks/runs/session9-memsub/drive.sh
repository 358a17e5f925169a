#!/usr/bin/env bash
# docs/benchmarks/runs/session9-memsub/drive.sh -- the paired idle-memory
# runs: A (main) and B (this branch) alternate on fresh processes, A B A B A B,
# for each configuration: shards, channels, subscriptions per connection.
#   BIN_A=/tmp/memsub-bin/A BIN_B=/tmp/memsub-bin/B drive.sh [PAIRS]
# SECOND=D: the second build is BIN_D and its runs are named -D- (round 2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN_A:?}" "${SECOND:=B}"
second=BIN_$SECOND; : "${!second:?}"
PAIRS=${1:-3}
export OUT=$here N=${N:-15000} D=${D:-6} PORT=${PORT:-21500}
for cfg in "1 1 1" "2 1 1" "1 1000 1" "1 1000 5"; do
  read -r shards channels subs <<<"$cfg"
  cpu=0; [ "$shards" = 2 ] && cpu=0,1
  for i in $(seq "$PAIRS"); do
    for b in A $SECOND; do
      bin=BIN_$b
      SHARDS=$shards CHANNELS=$channels SUBS=$subs SERVER_CPU=$cpu BIN=${!bin} \
        bash "$here/hold.sh" ws "ws-s${shards}-c${channels}-k${subs}-$b-$i"
    done
  done
done
