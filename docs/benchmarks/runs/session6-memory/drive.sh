#!/usr/bin/env bash
# session 6 paired runs; driver kept outside the repo
cd /work/main
M=docs/benchmarks/runs/session6-memory
T=docs/benchmarks/runs/session6-transports
R() { local bin=$1; shift; echo "=== $(date +%T) $*" ; BIN=/tmp/s6bin/$bin scripts/bench-run.sh "$@"; echo "=== rc $?"; }
FANMAX=(fanout --url @WS@/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10)
LAT=(fanout --url @WS@/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace even --size 100 -d 10)
if [ "${1:-all}" != transports ]; then
for r in 1 2 3; do
  for b in A B; do R $b --out $M --name fanmax-$b-$r --quiet-wait 300 rc-serve -- "${FANMAX[@]}"; done
  for b in A B; do R $b --out $M --name lat-$b-$r --quiet-wait 300 rc-serve -- "${LAT[@]}"; done
done
fi
SA=(--server-arg --http-stream --server-arg --sse)
for r in 1 2 3; do
  for t in websocket sse http_stream; do
    R B --out $T --name hold-$t-$r --quiet-wait 300 "${SA[@]}" rc-serve -- hold --url @WS@/connection/websocket --transport $t -n 15000 -d 10 --conns-per-addr 5000
  done
  for t in websocket sse http_stream; do
    R B --out $T --name fan-$t-$r --quiet-wait 300 "${SA[@]}" rc-serve -- fanout --url @WS@/connection/websocket --transport $t --subscribers 10000 --channels 1 --publishers 1 --size 100 --rate 100 --pace even -d 10 --conns-per-addr 5000
  done
done
echo "=== all done $(date +%T)"
