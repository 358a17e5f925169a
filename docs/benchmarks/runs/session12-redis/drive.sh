#!/usr/bin/env bash
# session12-redis/drive.sh -- paired runs of scripts/bench-redis.sh (from /work/main, a52a7ae)
# A = efbb755 (d329dbc~1), B = beb97d5; rounds alternate A B. Also records the
# host's /proc/stat busy ticks and load average around each run (NAME.host),
# and a ps snapshot 6 s into each run (NAME.ps; latency runs only, added after the max rounds).
#   drive.sh max 3        -> max-A-1 max-B-1 ... max-B-3
#   drive.sh latency 3    -> latency-A-1 ... (RATE 5000)
#   FIRST=4 drive.sh max 6 -> rounds 4..6 (the extra rounds)
#   ORDER="B A" FIRST=11 drive.sh max 14 -> rounds 11..14 with B run first in each pair (order control)
set -euo pipefail
SC=$1; N=${2:-3}
OUT=$(cd "$(dirname "$0")" && pwd)
declare -A BINS=([A]=/work/wt-redisA/target/release [B]=/work/wt-redisB/target/release)
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
for r in $(seq "${FIRST:-1}" "$N"); do
  for v in ${ORDER:-A B}; do
    name=$SC-$v-$r
    args=("$SC"); [ "$SC" = latency ] && args+=(5000)
    read -r b0 t0 < <(busy); l0=$(cut -d' ' -f1-3 /proc/loadavg)
    # mid-run snapshot of every process above 5% CPU (the host's other load)
    (sleep 6; ps -eo pid,pcpu,etime,args --sort=-pcpu | awk 'NR==1 || $2 > 5' | cut -c1-200 >"$OUT/$name.ps") &
    BIN=${BINS[$v]} OUT=$OUT NAME=$name timeout 120 bash /work/main/scripts/bench-redis.sh "${args[@]}"
    read -r b1 t1 < <(busy); l1=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "busy_cores_over_script=$(echo "2 * ($b1 - $b0) / ($t1 - $t0)" | bc -l | cut -c1-5) loadavg_before=$l0 loadavg_after=$l1 BIN=${BINS[$v]}" | tee "$OUT/$name.host"
    wait
    sleep 2
  done
done
