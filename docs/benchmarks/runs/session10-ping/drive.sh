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
python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
print("run | bench p50 / p99 / p99.9 (ms) | server-side p50 / p99 / p99.9 (ms) | within 0.5 ms | bench p99 per second (ms) | other cores busy | lost")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    d = json.load(open(f))
    l, s = d["latency"], d.get("server_latency", {})
    ms = lambda v: "%.3f" % (v / 1000) if v is not None else "-"
    print(f"{os.path.basename(f)[:-5]} | {ms(l['p50_us'])} / {ms(l['p99_us'])} / {ms(l['p999_us'])} | "
          f"{ms(s.get('p50_us'))} / {ms(s.get('p99_us'))} / {ms(s.get('p999_us'))} | "
          f"{s.get('within_500us', 0) * 100:.1f} % | "
          f"{' '.join('%.0f' % (t['p99_us'] / 1000) for t in d['latency_timeline'])} | "
          f"{d.get('host', {}).get('other_busy_cores', 0):.2f} | {d['fanout']['lost']}")
PY
