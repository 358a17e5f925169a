#!/usr/bin/env bash
# rampsched.sh NAME BINDIR: 10,000 raw upgrades with perf recording cpu 0's context switches (with stacks)
set -u
name=$1; bin=$2; PORT=19960
taskset -c 0 $bin/ringcast serve --port $PORT --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port $((PORT + 1)) --api-key k > $name.server.log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((PORT + 1))/health" > /dev/null && break; sleep 0.1; done
echo $pid > $name.pid
taskset -c 1 perf record -q -g -k mono -a -C 0 -e sched:sched_switch -o $name.perf.data 2> /dev/null &
perfpid=$!
sleep 0.3
taskset -c 1 /tmp/lat/A/ringcast-bench hold --url "ws://127.0.0.1:$PORT/connection/websocket" --protocol raw -n 10000 --conns-per-addr 5000 -d 1 --server-pid $pid --cpu 1 --json --no-progress > $name.json 2> /dev/null
kill -INT $perfpid; wait $perfpid
kill $pid; wait $pid
