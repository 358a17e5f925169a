#!/usr/bin/env bash
# schedrun.sh NAME: diag run (RATE) with perf recording every context switch on cpu 0
set -u
name=$1; shift
PORT=19800
RINGCAST_STALL_US=${STALL_US:-2000} taskset -c 0 /tmp/lat/D/ringcast serve --port $PORT --address 127.0.0.1 --shards 1 --no-pin --insecure \
  --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key "$@" > $name.server.log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
ls /proc/$pid/task > $name.tids; for t in $(cat $name.tids); do echo "$t $(cat /proc/$pid/task/$t/comm)"; done > $name.threads
taskset -c 1 perf record -q -g -k mono -a -C 0 -e sched:sched_switch -e sched:sched_wakeup -o $name.perf.data 2> $name.perf.log &
perfpid=$!
taskset -c 1 /tmp/lat/stealmon 16 > $name.steal &
sleep 0.3
taskset -c 1 /tmp/lat/A/ringcast-bench fanout --url "ws://127.0.0.1:$PORT/connection/websocket" --subscribers 10000 \
  --channels 1000 --publishers 1 --rate ${RATE:-2500} --pace even --size 100 -d 10 --conns-per-addr 5000 \
  --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --server-pid "$pid" --cpu 1 --json --no-progress \
  > $name.json 2> $name.bench.log
for t in $(ls /proc/$pid/task); do echo "$t $(cat /proc/$pid/task/$t/comm) $(awk '{print $14+$15}' /proc/$pid/task/$t/stat)"; done > $name.threads.end
kill -INT $perfpid; wait $perfpid
kill $pid; wait $pid; wait
