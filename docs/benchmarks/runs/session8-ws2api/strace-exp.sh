#!/usr/bin/env bash
# ad-hoc: strace the backends thread through a mass close at max-in-flight 1
set -u
B=$1; OUTF=$2; N=${N:-5000}
blog=$(mktemp)
taskset -c 1 $B/peer-http-backend --port 0 --threads 1 >$blog 2>&1 & BP=$!
sleep 0.3; addr=$(head -1 $blog)
p=19450; while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p+1)); done
taskset -c 0 $B/ringcast ws2api --backend http://$addr/ws/ --port $p --address 127.0.0.1 --shards 1 --no-pin --max-in-flight 1 >/dev/null 2>&1 & SP=$!
sleep 0.5
$B/ringcast-bench hold --protocol raw --url "ws://127.0.0.1:$p/c{i}" -n $N -d 120 --conns-per-addr 5000 --cpu 1 --json --no-progress >/dev/null 2>&1 & HP=$!
for i in $(seq 600); do curl -s http://127.0.0.1:$p/ | awk -v n=$N '/^connections_opened/{o=$2} /^requests_started/{s=$2} /^requests_failed/{f=$2} /^requests_succeeded/{k=$2} END{exit !(o==n && s==f+k)}' && break; sleep 0.1; done
TID=$(for t in /proc/$SP/task/*; do grep -q backends $t/comm && basename $t; done)
kill -9 $HP; wait $HP 2>/dev/null
sleep 0.3
timeout 0.5 strace -tt -T -p $TID -o $OUTF 2>/dev/null
kill $SP $BP; wait 2>/dev/null; rm -f $blog
