#!/usr/bin/env bash
# Connection ramp-up, A and B in turn: 10,000 raw WebSocket upgrades
# (`hold --protocol raw`), one shard on cpu 0, the bench on cpu 1; the
# bench's setup time and connect latency, and the server's fd table size
# (FDSize) once up. ROUNDS rounds; a quiet host awaited before each run.
#   BIN_A=DIR BIN_B=DIR BENCH=PATH OUT=DIR ROUNDS=3 holdab.sh
set -euo pipefail
: "${BIN_A:?}" "${BIN_B:?}" "${BENCH:?}" "${OUT:?}"
ROUNDS=${ROUNDS:-3}; PORT=${PORT:-19950}; N=${N:-10000}
mkdir -p "$OUT"
. "$(dirname "$0")/../../../../scripts/lib/bench.sh"   # wait_quiet
for r in $(seq "$ROUNDS"); do
  for v in A B; do
    bin=BIN_$v; bin=${!bin}; name=$v-$r
    quiet=$(wait_quiet)
    taskset -c 0 "$bin/ringcast" serve --port "$PORT" --address 127.0.0.1 --shards 1 --no-pin --insecure \
      --api-port $((PORT + 1)) --api-key bench-key > "$OUT/$name.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
    before=$(awk '/^FDSize/{print $2}' /proc/$pid/status)
    taskset -c 1 "$BENCH" hold --url "ws://127.0.0.1:$PORT/connection/websocket" --protocol raw -n "$N" \
      --conns-per-addr 5000 -d 1 --server-pid "$pid" --cpu 1 --json --no-progress \
      > "$OUT/$name.json" 2> "$OUT/$name.bench.log" || true
    echo "other-busy-before $quiet fdsize-at-start $before fdsize-end $(awk '/^FDSize/{print $2}' /proc/$pid/status)" > "$OUT/$name.host"
    kill "$pid"; wait "$pid" 2> /dev/null || true
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, statistics
out = sys.argv[1]; rows = {}
print("run | setup s | connect p50 / p99 / max (ms) | errors | other cores busy | fd table")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    n = os.path.basename(f)[:-5]; d = json.load(open(f)); c = d["connections"]; l = c["connect_latency"]
    host = open(f[:-5] + ".host").read().split()
    print(f"{n} | {c['setup_s']:.3f} | {l['p50_us']/1000:.2f} / {l['p99_us']/1000:.2f} / {l['max_us']/1000:.2f} | {c['errors']} | "
          f"{d.get('host', {}).get('other_busy_cores', 0):.2f} | {host[3]} → {host[5]}")
    rows.setdefault(n[0], []).append((c["setup_s"], l["p99_us"] / 1000))
for v, rs in sorted(rows.items()):
    print(f"median {v}: setup {statistics.median(r[0] for r in rs):.3f} s, connect p99 {statistics.median(r[1] for r in rs):.2f} ms")
PY
