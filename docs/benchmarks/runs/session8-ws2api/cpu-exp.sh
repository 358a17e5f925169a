#!/usr/bin/env bash
# ad-hoc: per-thread CPU of ringcast ws2api through a mass close (kill mode), max-in-flight $MIF
set -u
B=$1; MIF=${2:-1}; N=${N:-15000}
HZ=$(getconf CLK_TCK)
blog=$(mktemp); slog=$(mktemp)
taskset -c 1 $B/peer-http-backend --port 0 --threads 1 >$blog 2>&1 & BP=$!
sleep 0.3; addr=$(head -1 $blog)
p=19400; while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p+1)); done
taskset -c 0 $B/ringcast ws2api --backend http://$addr/ws/ --port $p --address 127.0.0.1 --shards 1 --no-pin --max-in-flight $MIF >$slog 2>&1 & SP=$!
sleep 0.5
$B/ringcast-bench hold --protocol raw --url "ws://127.0.0.1:$p/c{i}" -n $N -d 120 --conns-per-addr 5000 --cpu 1 --json --no-progress >/dev/null 2>&1 & HP=$!
for i in $(seq 600); do curl -s http://127.0.0.1:$p/ | awk -v n=$N '/^connections_opened/{o=$2} /^requests_started/{s=$2} /^requests_failed/{f=$2} /^requests_succeeded/{k=$2} END{exit !(o==n && s==f+k)}' && break; sleep 0.1; done
snap() { for t in /proc/$SP/task/*; do awk -v hz=$HZ '{s=$0; match(s,/\(.*\)/); n=substr(s,RSTART+1,RLENGTH-2); sub(/.*\) /,"",s); split(s,f," "); printf "%s=%.2f ", n, (f[12]+f[13])/hz}' $t/stat; done; echo; }
echo "before kill: $(snap)"
t0=$(date +%s%N); kill -9 $HP; wait $HP 2>/dev/null
for i in $(seq 1200); do curl -s http://127.0.0.1:$p/ | awk -v n=$N '/^requests_started/{s=$2} /^requests_failed/{f=$2} /^requests_succeeded/{k=$2} END{exit !(s==2*n && s==f+k)}' && break; sleep 0.05; done
t1=$(date +%s%N)
echo "drained in $(( (t1-t0)/1000000 )) ms: $(snap)"
kill $SP $BP; wait 2>/dev/null
tail -1 $blog; rm -f $blog $slog
