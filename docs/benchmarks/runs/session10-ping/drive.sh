#!/usr/bin/env bash
# Server pings in one burst (A) against slices over the interval (B):
# 10,000 subscribers on 1,000 channels, 1,000 publications/s (light load),
# a ping every 2 s so that five ping rounds fall in each 10 s run.
# Server on cpu 0, bench on cpu 1, A and B in turn.
#   BIN_A=DIR BIN_B=DIR OUT=DIR ROUNDS=3 PORT=19300 drive.sh
set -euo pipefail
: "${BIN_A:?} ${BIN_B:?} ${OUT:?}"
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19300}
mkdir -p "$OUT"
run() { # build name
  local bin=$1 name=$2
  taskset -c 0 "$bin/ringcast" serve --port "$PORT" --address 127.0.0.1 --shards 1 --no-pin --insecure \
    --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key --ping-interval 2 \
    > "$OUT/$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break
    sleep 0.1
  done
  taskset -c 1 "$bin/ringcast-bench" fanout --url "ws://127.0.0.1:$PORT/connection/websocket" \
    --subscribers 10000 --channels 1000 --publishers 1 --rate 1000 --pace even --size 100 -d 10 \
    --conns-per-addr 5000 --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --server-pid "$pid" \
    --cpu 1 --json --no-progress > "$OUT/$name.json" 2> "$OUT/$name.bench.log" || true
  kill "$pid"; wait "$pid" 2> /dev/null || true
}
for r in $(seq "$ROUNDS"); do
  run "$BIN_A" "A-$r"
  run "$BIN_B" "B-$r"
done
python3 "$(dirname "$0")/summary.py" "$OUT"
