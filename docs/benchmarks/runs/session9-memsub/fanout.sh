#!/usr/bin/env bash
# docs/benchmarks/runs/session9-memsub/fanout.sh -- paired fan-out CPU checks,
# A (main) and D (this branch) alternating on fresh servers, A B A B A B:
#   even: 5,000 subscribers, 1 channel, 200 publications/s of 100 B, 10 s
#         (as session 8's paired checks: one frame per subscriber per pass)
#   max:  10,000 subscribers, 1 channel, 100 B, as fast as acknowledged,
#         32 in flight, 10 s (several frames per subscriber per pass: the
#         outbound queue's spill to a ring)
#   BIN_A=... BIN_D=... fanout.sh [PAIRS]   (D: this branch, 4bb1b14)
# FIRST=N: number the pairs from N (more pairs later); KINDS="even max".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
: "${BIN_A:?}" "${BIN_D:?}"
PAIRS=${1:-3}
mkdir -p "$here/fanout"
FIRST=${FIRST:-1} KINDS=${KINDS:-even max}
for i in $(seq "$FIRST" $((FIRST + PAIRS - 1))); do
  for b in A D; do
    bin=BIN_$b
    [[ " $KINDS " == *" even "* ]] && BIN=${!bin} PORT=21700 "$root/scripts/bench-run.sh" --out "$here/fanout" --name "even-$b-$i" \
      --quiet-wait 20 --max-other 0.3 --retries 1 rc-serve -- fanout --url @WS@/connection/websocket \
      --subscribers 5000 --channels 1 --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000
    [[ " $KINDS " == *" max "* ]] && BIN=${!bin} PORT=21700 "$root/scripts/bench-run.sh" --out "$here/fanout" --name "max-$b-$i" \
      --quiet-wait 20 --max-other 0.3 --retries 1 rc-serve -- fanout --url @WS@/connection/websocket \
      --subscribers 10000 --channels 1 --publishers 1 --size 100 --max --in-flight 32 -d 10 --conns-per-addr 5000
  done
done
