#!/usr/bin/env bash
# One build, one layout, several publication rates, ROUNDS rounds (rates
# in turn within a round). Same set-up as ab.sh (one shard on cpu 0, the
# bench on cpu 1, a quiet host awaited before each run).
#   LAYOUT=1000x10|100x10 RATES="2500 5000 7500 10000" BIN=DIR BENCH=PATH OUT=DIR ROUNDS=2 [RX=1] sweep.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN:?}" "${BENCH:?}" "${OUT:?}" "${RATES:?}"
LAYOUT=${LAYOUT:-1000x10}; ROUNDS=${ROUNDS:-2}; PORT=${PORT:-19900}; DUR=${DUR:-10}
case $LAYOUT in
  1000x10) load=(--subscribers 10000 --channels 1000 --conns-per-addr 5000) ;;
  100x10) load=(--subscribers 1000 --channels 100) ;;
  *) echo "unknown LAYOUT $LAYOUT" >&2; exit 2 ;;
esac
[ -n "${RX:-}" ] && load+=(--rx-timestamps)
mkdir -p "$OUT"
. "$(dirname "$0")/../../../../scripts/lib/bench.sh"   # wait_quiet
for r in $(seq "$ROUNDS"); do
  for rate in $RATES; do
    name=r$rate-$r
    quiet=$(wait_quiet)
    { echo "start $(date -u +%T) loadavg $(cat /proc/loadavg) other-busy-before $quiet"; grep -E '^cpu[01] ' /proc/stat; } > "$OUT/$name.host"
    taskset -c 0 "$BIN/ringcast" serve --port "$PORT" --address 127.0.0.1 --shards 1 --no-pin --insecure \
      --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key > "$OUT/$name.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
    taskset -c 1 "$BENCH" fanout --url "ws://127.0.0.1:$PORT/connection/websocket" "${load[@]}" --rate "$rate" \
      --publishers 1 --pace even --size 100 -d "$DUR" \
      --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --server-pid "$pid" --cpu 1 --json --no-progress \
      > "$OUT/$name.json" 2> "$OUT/$name.bench.log" || true
    kill "$pid"; wait "$pid" 2> /dev/null || true
    { echo "end $(date -u +%T) loadavg $(cat /proc/loadavg)"; grep -E '^cpu[01] ' /proc/stat; } >> "$OUT/$name.host"
  done
done
python3 "$here/summary.py" "$OUT"
