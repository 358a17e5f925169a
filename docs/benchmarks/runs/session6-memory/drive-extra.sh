#!/usr/bin/env bash
# extra rounds: fan-out (a) rounds 4-5 with B first, holds rounds 4-5 in another order
cd /work/main
M=docs/benchmarks/runs/session6-memory
T=docs/benchmarks/runs/session6-transports
R() { local bin=$1; shift; echo "=== $(date +%T) $*" ; BIN=/tmp/s6bin/$bin scripts/bench-run.sh "$@"; echo "=== rc $?"; }
FANMAX=(fanout --url @WS@/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10)
SA=(--server-arg --http-stream --server-arg --sse)
for r in 4 5; do
  for b in B A; do R $b --out $M --name fanmax-$b-$r --quiet-wait 300 rc-serve -- "${FANMAX[@]}"; done
done
for r in 4 5; do
  if [ $r = 4 ]; then order="http_stream sse websocket"; else order="sse websocket http_stream"; fi
  for t in $order; do
    R B --out $T --name hold-$t-$r --quiet-wait 300 "${SA[@]}" rc-serve -- hold --url @WS@/connection/websocket --transport $t -n 15000 -d 10 --conns-per-addr 5000
  done
done
echo "=== all done $(date +%T)"
