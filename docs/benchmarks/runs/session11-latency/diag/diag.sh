#!/usr/bin/env bash
# diag.sh NAME [extra server args]: one goal1 run of the instrumented server
set -u
name=$1; shift
PORT=19800
cat /proc/loadavg > $name.load
RINGCAST_STALL_US=${STALL_US:-3000} taskset -c 0 /tmp/lat/D/ringcast serve --port $PORT --address 127.0.0.1 --shards 1 --no-pin --insecure \
  --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key "$@" > $name.server.log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
taskset -c 1 /tmp/lat/stealmon 16 > $name.steal &
python3 -c "import time; print(time.clock_gettime(time.CLOCK_MONOTONIC))" > $name.start
taskset -c 1 /tmp/lat/A/ringcast-bench fanout --url "ws://127.0.0.1:$PORT/connection/websocket" --subscribers 10000 \
  --channels 1000 --publishers 1 --rate 10000 --pace even --size 100 -d 10 --conns-per-addr 5000 \
  --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --server-pid "$pid" --cpu 1 --json --no-progress \
  > $name.json 2> $name.bench.log
kill $pid; wait $pid; wait
cat /proc/loadavg >> $name.load
