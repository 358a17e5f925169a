#!/usr/bin/env bash
# session 6: B (414ccb6) against C (the deliver fast path + small request reads), paired
cd /work/main
F=docs/benchmarks/runs/session6-fix
R() { local bin=$1; shift; echo "=== $(date +%T) $*" ; BIN=/tmp/s6bin/$bin scripts/bench-run.sh "$@"; echo "=== rc $?"; }
FANMAX=(fanout --url @WS@/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10)
SA=(--server-arg --http-stream --server-arg --sse)
for r in 1 2 3; do
  for b in B C; do R $b --out $F --name fanmax-$b-$r --quiet-wait 120 rc-serve -- "${FANMAX[@]}"; done
done
for r in 1 2; do
  for b in B C; do R $b --out $F --name hold-sse-$b-$r --quiet-wait 120 "${SA[@]}" rc-serve -- hold --url @WS@/connection/websocket --transport sse -n 15000 -d 10 --conns-per-addr 5000; done
done
R C --out $F --name hold-websocket-C-1 --quiet-wait 120 "${SA[@]}" rc-serve -- hold --url @WS@/connection/websocket --transport websocket -n 15000 -d 10 --conns-per-addr 5000
echo "=== all done $(date +%T)"
