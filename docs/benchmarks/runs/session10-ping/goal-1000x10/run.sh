#!/usr/bin/env bash
# Issue 16's latency goal scenario on a quiet host: 1,000 channels × 10
# subscribers, 10,000 publications/s, one shard on cpu 0, bench on cpu 1,
# with and without flush holds, in turn.   BIN=DIR run.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BIN:?}"
PORT=${PORT:-19600}
for r in $(seq "${1:-2}"); do
  for mode in hold nohold; do
    extra=(); [ "$mode" = nohold ] && extra=(--flush-hold-max 0)
    name=$mode-$r
    taskset -c 0 "$BIN/ringcast" serve --port "$PORT" --address 127.0.0.1 --shards 1 --no-pin --insecure \
      --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key "${extra[@]}" \
      > "$here/$name.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
    taskset -c 1 "$BIN/ringcast-bench" fanout --url "ws://127.0.0.1:$PORT/connection/websocket" --subscribers 10000 \
      --channels 1000 --publishers 1 --rate 10000 --pace even --size 100 -d 10 --conns-per-addr 5000 \
      --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --server-pid "$pid" --cpu 1 --json --no-progress \
      > "$here/$name.json" 2> "$here/$name.bench.log" || true
    kill "$pid"; wait "$pid" 2> /dev/null || true
  done
done
python3 "$here/../summary.py" "$here"
