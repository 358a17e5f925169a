#!/usr/bin/env bash
# scripts/bench-delta.sh -- fossil delta compression on and off, paired:
# the same fan-out (S subscribers on one channel, publications of SIZE
# bytes of which each changes a few: the bench's stamp) against a server
# whose namespace has no deltas ("off") and one with
# `allowed_delta_types = ["fossil"]`, `delta_publish = true` whose
# subscribers ask for them ("on"), alternating off/on RUNS times. Each run
# is a scripts/bench-run.sh run (fresh release server on cpu 0, bench on
# cpu 1); the summary gives push bytes per delivery (bandwidth) and server
# CPU per delivery for each.
#
#   scripts/bench-delta.sh [--runs N] [--subscribers S] [--size B] [--rate R]
#                          [--duration D] [--out DIR]
#
# Defaults: 3 runs, 2000 subscribers, 1000-byte payloads, 200
# publications/s, 10 s. Needs release binaries (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=3 SUBS=2000 SIZE=1000 RATE=200 DUR=10
OUT=$ROOT/target/bench-delta
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --subscribers) SUBS=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"

cat > "$OUT/off.toml" <<'EOF'
[channel]
allow_publish_for_client = true
EOF
cat > "$OUT/on.toml" <<'EOF'
[channel]
allow_publish_for_client = true
allowed_delta_types = ["fossil"]
delta_publish = true
EOF

run() { # MODE RUN
  local mode=$1 i=$2 extra=()
  [ "$mode" = on ] && extra=(--delta)
  scripts/bench-run.sh --out "$OUT" --name "$mode-$i" --max-other 0.3 --quiet-wait 60 \
    --server-arg --config --server-arg "$OUT/$mode.toml" rc-serve -- \
    fanout --url @WS@/connection/websocket --subscribers "$SUBS" --channels 1 \
    --publishers 1 --size "$SIZE" --rate "$RATE" --pace even -d "$DUR" \
    --conns-per-addr 5000 "${extra[@]}" || echo "run $mode-$i: exit $?"
}

for i in $(seq 1 "$RUNS"); do
  run off "$i"
  run on "$i"
done

python3 - "$OUT" "$RUNS" <<'EOF'
import json, sys, pathlib
out, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
print("| run | mode | delivered | push bytes/delivery | server µs CPU/delivery | p50 / p99 µs |")
print("|---|---|---|---|---|---|")
for i in range(1, runs + 1):
    for mode in ("off", "on"):
        f = out / f"{mode}-{i}.json"
        if not f.exists():
            print(f"| {i} | {mode} | missing | | | |")
            continue
        r = json.loads(f.read_text())
        fo, srv, lat = r.get("fanout") or {}, r.get("server") or {}, r.get("latency") or {}
        d = fo.get("delivered", 0)
        cpu = srv.get("cpu_s", 0.0)
        us = cpu / d * 1e6 if d else 0.0
        print(f"| {i} | {mode} | {d} | {fo.get('push_bytes_per_delivery', 0):.1f} | {us:.3f} | "
              f"{lat.get('p50_us', 0):.0f} / {lat.get('p99_us', 0):.0f} |")
EOF
