#!/usr/bin/env bash
# (Session 12 exploration; kept as run. See README.md.)
# quick: start server, snapshot smaps_rollup before; run hold; snapshot at +3s
set -euo pipefail
BIN=${BIN:-/work/main/target/release}; N=${N:-15000}; SHARDS=${SHARDS:-1}
p=$(( 20000 + RANDOM % 20000 ))
taskset -c 0 $BIN/ringcast serve --port $p --address 127.0.0.1 --shards $SHARDS --no-pin --insecure --api-port $((p+1)) --publisher-port $((p+2)) --api-key k >/tmp/memx.server.log 2>&1 &
SPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
sleep 1
cp /proc/$SPID/smaps /tmp/smaps.before; grep -E "^(Rss|Anonymous|Private_Clean|Private_Dirty|Shared_Clean|Shared_Dirty|Pss_Shmem|Pss_File)" /proc/$SPID/smaps_rollup | tr '\n' ' '; echo " <- before"
taskset -c 1 $BIN/ringcast-bench hold --url ws://127.0.0.1:$p/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n $N -d 8 --conns-per-addr 5000 --server-pid $SPID --cpu 1 --json --no-progress > /tmp/memx.json 2>/tmp/memx.table &
BP=$!
for _ in $(seq 600); do [ "$(ls /proc/$SPID/fd | wc -l)" -ge "$N" ] && break; sleep 0.1; done
sleep 3
cp /proc/$SPID/smaps /tmp/smaps.after; grep -E "^(Rss|Anonymous|Private_Clean|Private_Dirty|Shared_Clean|Shared_Dirty|Pss_Shmem|Pss_File)" /proc/$SPID/smaps_rollup | tr '\n' ' '; echo " <- +3s"
wait $BP
jq -c .server /tmp/memx.json
kill $SPID; wait $SPID || true
