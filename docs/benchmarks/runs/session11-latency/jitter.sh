#!/usr/bin/env bash
# Timer jitter of the host, nothing of ringcast running: a loop pinned on a
# core reads CLOCK_MONOTONIC back to back for SECS seconds and prints every
# gap >= 1 ms between two reads (the loop was off the core: preempted, an
# interrupt, or the hypervisor), while stealmon (on the other core) prints
# /proc/stat's steal ticks per 100 ms, with the same clock.
#   jitter.sh [CPU] [SECS]  > out
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cpu=${1:-0}; secs=${2:-30}
gcc -O2 -o /tmp/jitter "$here/jitter.c"
gcc -O2 -o /tmp/stealmon "$here/stealmon.c"
echo "# $(date -u +%FT%TZ) cpu $cpu, $secs s; loadavg before: $(cat /proc/loadavg)"
taskset -c $((1 - cpu)) /tmp/stealmon "$secs" > /tmp/stealmon.out &
taskset -c "$cpu" /tmp/jitter "$secs" 1000000
wait
sed 's/^/steal: /' /tmp/stealmon.out
echo "# loadavg after: $(cat /proc/loadavg)"
