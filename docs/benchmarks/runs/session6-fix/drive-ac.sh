#!/usr/bin/env bash
# session 6: A (31e442b, session start) against C (what lands), fan-out (a), paired
cd /work/main
F=docs/benchmarks/runs/session6-fix
R() { local bin=$1; shift; echo "=== $(date +%T) $*" ; BIN=/tmp/s6bin/$bin scripts/bench-run.sh "$@"; echo "=== rc $?"; }
FANMAX=(fanout --url @WS@/connection/websocket --subscribers 10000 --channels 1 --publishers 1 --size 100 --conns-per-addr 5000 --max --in-flight 256 -d 10)
for r in 1 2 3; do
  for b in C A; do R $b --out $F --name fanmax-ac-$b-$r --quiet-wait 120 rc-serve -- "${FANMAX[@]}"; done
done
echo "=== all done $(date +%T)"
