#!/usr/bin/env bash
# Paired runs, A and B in turn, ROUNDS rounds, one scenario:
#   goal1: 1,000 channels x 10 subscribers, 10,000 publications/s (issue 16, server-side p99)
#   goal2: 100 channels x 10 subscribers, 5,000 publications/s, --rx-timestamps (bench-side p99)
# One shard on cpu 0 (taskset), the bench on cpu 1, the same bench binary
# (BENCH) for both servers. Per run: NAME.json (the bench's report),
# NAME.server.log, NAME.bench.log, NAME.host (loadavg and cpu0/cpu1 lines of
# /proc/stat before and after: steal is the 8th number).
# ARGS_A / ARGS_B: extra server arguments for A / B (e.g. ARGS_B="--flush-hold-max 0"
# with BIN_B=BIN_A: the same build with and without flush holds).
# Each run waits (up to 10 min) for the host to be quiet first (other
# processes <= 0.1 core over 3 s) and records the figure in NAME.host.
#   BIN_A=DIR BIN_B=DIR BENCH=PATH OUT=DIR SCENARIO=goal1 ROUNDS=3 ab.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN_A:?}" "${BIN_B:?}" "${BENCH:?}" "${OUT:?}"
SCENARIO=${SCENARIO:-goal1}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19700}
DUR=${DUR:-10}
mkdir -p "$OUT"
host_busy() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat; }
wait_quiet() {
  local left=600 b0 t0 b1 t1 busy
  while :; do
    read -r b0 t0 < <(host_busy); sleep 3; read -r b1 t1 < <(host_busy)
    busy=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN{printf "%.3f", t ? b / t * 2 : 0}')
    if awk -v x="$busy" 'BEGIN{exit !(x <= 0.1)}' || [ "$left" -le 0 ]; then echo "$busy"; return; fi
    left=$((left - 3))
  done
}
case $SCENARIO in
  goal1) load=(--subscribers 10000 --channels 1000 --rate 10000 --conns-per-addr 5000) ;;
  goal2) load=(--subscribers 1000 --channels 100 --rate 5000 --rx-timestamps) ;;
  *) echo "unknown SCENARIO $SCENARIO" >&2; exit 2 ;;
esac
for r in $(seq "$ROUNDS"); do
  for v in A B; do
    bin=BIN_$v; bin=${!bin}
    args=ARGS_$v; read -r -a extra <<< "${!args:-}"
    name=$v-$r
    quiet=$(wait_quiet)
    { echo "start $(date -u +%T) loadavg $(cat /proc/loadavg) other-busy-before $quiet args ${extra[*]:-}"; grep -E '^cpu[01] ' /proc/stat; } > "$OUT/$name.host"
    taskset -c 0 "$bin/ringcast" serve --port "$PORT" --address 127.0.0.1 --shards 1 --no-pin --insecure \
      --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key ${extra[@]+"${extra[@]}"} \
      > "$OUT/$name.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
    taskset -c 1 "$BENCH" fanout --url "ws://127.0.0.1:$PORT/connection/websocket" "${load[@]}" \
      --publishers 1 --pace even --size 100 -d "$DUR" \
      --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --server-pid "$pid" --cpu 1 --json --no-progress \
      > "$OUT/$name.json" 2> "$OUT/$name.bench.log" || true
    kill "$pid"; wait "$pid" 2> /dev/null || true
    { echo "end $(date -u +%T) loadavg $(cat /proc/loadavg)"; grep -E '^cpu[01] ' /proc/stat; } >> "$OUT/$name.host"
  done
done
python3 "$here/summary.py" "$OUT"
