#!/usr/bin/env bash
# Session 9, the delivery-latency histogram (issue 16): every run is one
# scripts/bench-run.sh run (fresh release server on cpu 0, --shards 1
# --no-pin; ringcast-bench on cpu 1).
#
#   BIN_A=/tmp/lat-bin/A BIN_B=/tmp/lat-bin/B docs/benchmarks/runs/session9-latency/drive.sh ab|ba|goals|extra
#
# BIN_A: ringcast of main (f054e0f); BIN_B: ringcast of the latency branch.
# Both hold the same ringcast-bench and peer-tokio-ws (the branch's), so the
# load generator is one binary for every run.
#   ab:    fan-out CPU per delivery, A against B, 3 alternating pairs
#          (A-1, B-1, A-2, ...): 5,000 subscribers, 1 channel, 200
#          publications/s of 100 B, 10 s (session 8's paired check).
#   goals: issue 16's latency goals on B, each ringcast run paired with the
#          peer (rc-1, peer-1, rc-2, ...): 1,000 channels x 10 subscribers at
#          10,000 publications/s (the server-side p99 from
#          ringcast_delivery_latency_seconds), and 100 x 10 at 5,000/s.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
OUT=docs/benchmarks/runs/session9-latency
RUN=(scripts/bench-run.sh --max-other "${MAX_OTHER:-0.3}" --retries "${RETRIES:-1}" --quiet-wait "${QUIET_WAIT:-30}")
CF=@WS@/connection/websocket
FAN=(fanout --url $CF --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000)
L1000=(fanout --url $CF --subscribers 10000 --channels 1000 --publishers 1 --rate 10000 --pace even --size 100 -d 10 --conns-per-addr 5000)
L100=(fanout --url $CF --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10)
run() { # run BIN DIR NAME SERVER ARGS...  (server flags: SERVER_FLAGS="--flush-hold-max 0")
  local bin=$1 dir=$2 name=$3 server=$4 f sargs=(); shift 4
  for f in ${SERVER_FLAGS:-}; do sargs+=(--server-arg "$f"); done
  BIN=$bin "${RUN[@]}" --out "$OUT/$dir" --name "$name" "${sargs[@]}" "$server" -- "$@" || echo "($dir/$name: exit $?)" >&2
}
case ${1:-} in
  ab)
    for i in 1 2 3; do
      run "$BIN_A" ab-fanout "A-$i" rc-serve "${FAN[@]}"
      run "$BIN_B" ab-fanout "B-$i" rc-serve "${FAN[@]}"
    done ;;
  goals)
    for i in 1 2 3; do
      run "$BIN_B" goal-1000x10 "rc-$i" rc-serve "${L1000[@]}" --metrics-url @METRICS@
      run "$BIN_B" goal-1000x10 "peer-$i" peer "${L1000[@]}"
    done
    for i in 1 2 3; do
      run "$BIN_B" goal-100x10 "rc-$i" rc-serve "${L100[@]}" --metrics-url @METRICS@
      run "$BIN_B" goal-100x10 "peer-$i" peer "${L100[@]}"
    done ;;
  ba)
    # 2 more pairs, B first (does the order matter?).
    for i in 4 5; do
      run "$BIN_B" ab-fanout "B-$i" rc-serve "${FAN[@]}"
      run "$BIN_A" ab-fanout "A-$i" rc-serve "${FAN[@]}"
    done ;;
  extra)
    # 1,000 x 10 at 10,000/s once more: main's build (no histogram), and the
    # branch without flush holds, next to each other.
    run "$BIN_A" goal-1000x10-extra A-1 rc-serve "${L1000[@]}"
    SERVER_FLAGS="--flush-hold-max 0" run "$BIN_B" goal-1000x10-extra nohold-1 rc-serve "${L1000[@]}" --metrics-url @METRICS@
    run "$BIN_B" goal-1000x10-extra rc-4 rc-serve "${L1000[@]}" --metrics-url @METRICS@ ;;
  *) echo "usage: $0 ab|ba|goals|extra" >&2; exit 2 ;;
esac
