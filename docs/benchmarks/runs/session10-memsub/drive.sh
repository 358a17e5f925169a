#!/usr/bin/env bash
# docs/benchmarks/runs/session10-memsub/drive.sh -- the paired idle-memory
# runs of session 10 (session 9's drive.sh, two pairs by default): A (main)
# and B (this branch) alternate on fresh processes, A B A B, for each
# configuration: shards, channels, subscriptions per connection.
#   BIN_A=/tmp/memsub2-bin/A BIN_B=/tmp/memsub2-bin/B drive.sh [PAIRS]
# FIRST=K: pairs K..PAIRS only (more pairs after a first round). Each run is
# session 9's hold.sh; the table: DIR=<this dir> ../session9-memsub/summary.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN_A:?}" "${BIN_B:?}"
PAIRS=${1:-2}
export OUT=$here N=${N:-15000} D=${D:-6} PORT=${PORT:-21700}
for cfg in "1 1 1" "2 1 1" "1 1000 1" "1 1000 5"; do
  read -r shards channels subs <<<"$cfg"
  cpu=0; [ "$shards" = 2 ] && cpu=0,1
  for i in $(seq "${FIRST:-1}" "$PAIRS"); do
    for b in A B; do
      bin=BIN_$b
      SHARDS=$shards CHANNELS=$channels SUBS=$subs SERVER_CPU=$cpu BIN=${!bin} \
        bash "$here/../session9-memsub/hold.sh" ws "ws-s${shards}-c${channels}-k${subs}-$b-$i"
    done
  done
done
