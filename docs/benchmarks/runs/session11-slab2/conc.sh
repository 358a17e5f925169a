#!/usr/bin/env bash
# docs/benchmarks/runs/session11-slab2/conc.sh -- one build (BIN, main 3fa4af8),
# 15,000 subscribed clients, the bench's connects in flight varied
# (--connect-concurrency 256, its default, then 64, then 16), ROUNDS rounds in
# turn on fresh processes, 1 and 2 shards. Each run is ../session11-slab/hold.sh ws;
# names conc/ws-s<shards>-cc<K>-<round>.*. KIND=raw: `ringcast echo` and
# `hold --protocol raw` instead (conc/raw-s<shards>-cc<K>-<round>.*).
# Table: ./conc-summary.sh.
#   BIN=/tmp/slab2-bin/A PORT=35700 conc.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN:?}"
export OUT=${OUT_DIR:-$here/conc} N=${N:-15000} D=${D:-6} PORT=${PORT:-35700} BIN
for shards in ${SHARDS_LIST:-1 2}; do
  cpu=0; [ "$shards" = 2 ] && cpu=0,1
  for r in $(seq "${1:-3}"); do
    for k in ${KS:-256 64 16}; do
      SHARDS=$shards SERVER_CPU=$cpu HOLD_EXTRA="--connect-concurrency $k" \
        bash "$here/../session11-slab/hold.sh" "${KIND:-ws}" "${KIND:-ws}-s$shards-cc$k-$r"
    done
  done
done
