#!/usr/bin/env bash
# scripts/bench-fanout-transports.sh -- fan-out CPU per delivery by the
# subscribers' transport, side by side: JSON WebSocket, protobuf WebSocket
# (`?format=protobuf`), SSE and http_stream subscribers of one channel under
# the same publications (publishers on JSON WebSocket), the transports taken
# in turn within each round, RUNS rounds. Each run is a scripts/bench-run.sh
# run (fresh release server with --sse --http-stream on cpu 0, bench on
# cpu 1). Prints server µs CPU per delivery and deliveries/s per run, and
# the median per transport.
#
#   scripts/bench-fanout-transports.sh [--runs N] [--subscribers S]
#       [--rate R] [--size B] [--duration D] [--transports "websocket protobuf sse"]
#       [--out DIR]
#
# Defaults: 3 rounds, 5000 subscribers, 100 publications/s of 100 bytes
# (500k deliveries/s), 10 s, all four transports. Needs release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=3 SUBS=5000 RATE=100 SIZE=100 DUR=10
TRANSPORTS="websocket protobuf sse http_stream"
OUT=$ROOT/target/bench-fanout-transports
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --subscribers) SUBS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --transports) TRANSPORTS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"

for i in $(seq 1 "$RUNS"); do
  for t in $TRANSPORTS; do
    scripts/bench-run.sh --out "$OUT" --name "$t-$i" --max-other 0.3 --quiet-wait 60 \
      --server-arg --sse --server-arg --http-stream rc-serve -- \
      fanout --url @WS@/connection/websocket --transport "$t" --subscribers "$SUBS" \
      --channels 1 --publishers 1 --size "$SIZE" --rate "$RATE" --pace even -d "$DUR" \
      --conns-per-addr 5000 || echo "run $t-$i: exit $?"
  done
done

python3 - "$OUT" "$RUNS" $TRANSPORTS <<'EOF'
import json, sys, pathlib, statistics
out, runs, transports = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
print("| transport | µs CPU per delivery (runs) | median | deliveries/s (median) | lost |")
print("|---|---|---|---|---|")
for t in transports:
    us, rate, lost = [], [], 0
    for i in range(1, runs + 1):
        f = out / f"{t}-{i}.json"
        if not f.exists():
            continue
        r = json.loads(f.read_text())
        fo, srv = r.get("fanout") or {}, r.get("server") or {}
        d = fo.get("delivered", 0)
        if d:
            us.append(srv.get("cpu_s", 0.0) / d * 1e6)
            rate.append(fo.get("delivered_per_s", 0.0))
        lost += fo.get("lost", 0)
    if us:
        print(f"| {t} | {' · '.join(f'{u:.3f}' for u in us)} | {statistics.median(us):.3f} | "
              f"{statistics.median(rate):,.0f} | {lost} |")
    else:
        print(f"| {t} | no runs | | | |")
EOF
