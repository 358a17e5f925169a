#!/usr/bin/env bash
# Session 9 (reactor split): A (main) against B (this branch), alternating
# A B A B A B, fresh servers, one scripts/bench-run.sh run each.
#
#   BIN_A=/tmp/reactor-bins/A BIN_B=/tmp/reactor-bins/B \
#     docs/benchmarks/runs/session9-reactor/drive.sh [echo|fanout|hold-raw|hold-cf]...
# PAIRS (3) pairs per scenario, numbered from FIRST (1); OUT: where the runs go.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
OUT=${OUT:-docs/benchmarks/runs/session9-reactor}
: "${BIN_A:?}" "${BIN_B:?}" "${PAIRS:=3}" "${FIRST:=1}"
RUN=(scripts/bench-run.sh --out "$OUT" --max-other 0.2 --retries 1 --quiet-wait 20)
[ $# -gt 0 ] || set -- echo fanout hold-raw hold-cf
for scenario in "$@"; do
  case $scenario in
    echo)     ARGS=(rc-echo -- echo --url @WS@/ -c 100 -w 16 -s 100 -d 10) ;;
    fanout)   ARGS=(rc-serve -- fanout --url @WS@/connection/websocket --subscribers 5000 --channels 1
                    --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000) ;;
    hold-raw) ARGS=(rc-echo -- hold --url @WS@/ --protocol raw -n 15000 -d 10 --conns-per-addr 5000) ;;
    hold-cf)  ARGS=(rc-serve -- hold --url @WS@/connection/websocket -n 15000 -d 10 --conns-per-addr 5000) ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
  for i in $(seq "$FIRST" $((FIRST + PAIRS - 1))); do
    for build in A B; do
      bin=BIN_$build
      BIN=${!bin} "${RUN[@]}" --name "$scenario-$build-$i" "${ARGS[@]}" || echo "($scenario-$build-$i: exit $?)" >&2
    done
  done
done
