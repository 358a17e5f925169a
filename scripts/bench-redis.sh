#!/usr/bin/env bash
# scripts/bench-redis.sh -- ringcast on two nodes over one Redis: the
# publisher (TCP publisher protocol) on node A, the subscribers on node B, so
# every delivery crosses Redis. Reports deliveries/s and latency from
# ringcast-bench, and the CPU of node A, node B and redis-server per
# publication / delivery from /proc. `ceiling` runs redis-benchmark with the
# same publish script ringcast runs (EVALSHA publish.lua, history on, one
# PUB/SUB subscriber) in the same session: what one Redis can do at most.
#
#   scripts/bench-redis.sh latency [RATE]   100 channels x 10 subscribers, RATE/s (5000), 10 s
#   scripts/bench-redis.sh max              100 channels x 1 subscriber, publish as fast as acked
#   scripts/bench-redis.sh ceiling          redis-benchmark EVALSHA publish.lua
#   scripts/bench-redis.sh memory [RATE]    the latency run on ONE node with the memory broker
#
# Placement (2 cores): redis-server on $REDIS_CPU (0), node A on $A_CPU (0),
# node B and the load on $B_CPU (1); `max` puts A on $B_CPU too, so Redis
# has a core to itself as in `ceiling` (redis-benchmark on $B_CPU). Environment: BIN (target/release: ringcast,
# ringcast-bench; nothing is built), OUT (target/bench-redis), NAME (file
# stem, default the scenario), DURATION (10). All traffic stays on
# 127.0.0.1; every process started here is stopped at exit.
# NODE_NICE=N (opt-in, e.g. -10; negative needs root): the ringcast nodes and
# redis-server run under `nice -n N`, the load generator at the default nice
# 0, so on the shared core a node's wake-up preempts the busy bench instead of
# waiting for its time slice. This measures the server path with the load
# generator deprioritized; the setting is written into NAME.cmd and NAME.table.
# BENCH_ARGS: more ringcast-bench fanout arguments (split on spaces), e.g.
# --rx-timestamps to split the latency at the subscriber's socket.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/target/release}
OUT=${OUT:-$ROOT/target/bench-redis}
SCENARIO=${1:-latency}
RATE=${2:-5000}
NAME=${NAME:-$SCENARIO}
DURATION=${DURATION:-10}
: "${REDIS_CPU:=0}" "${B_CPU:=1}"
# NICE: the prefix for redis-server and the nodes (empty unless NODE_NICE is set).
NICE=()
if [ -n "${NODE_NICE:-}" ]; then NICE=(nice -n "$NODE_NICE"); fi
read -ra EXTRA <<<"${BENCH_ARGS:-}"
if [ "$SCENARIO" = max ]; then : "${A_CPU:=$B_CPU}"; else : "${A_CPU:=0}"; fi
KEY=bench-key
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU ticks of a node's `redis` thread (the broker's I/O thread), 0 if none.
rticks() {
  local t
  for t in /proc/"$1"/task/*; do
    if [ "$(cat "$t/comm")" = redis ]; then awk '{print $14 + $15}' "$t/stat"; return; fi
  done
  echo 0
}
wait_health() { # wait_health API_PORT
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node on api port $1 not healthy" >&2; return 1
}

cat >"$WORK/ringcast.toml" <<EOF
[namespace.bench]
history_size = 1000
history_ttl = 300
EOF

RP=$(free_port)
taskset -c "$REDIS_CPU" "${NICE[@]}" redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$WORK/redis.log" &
RPID=$!; PIDS+=("$RPID")
for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_node() { # start_node NAME CPU BROKER-ARGS... ; sets WS, API, TCP, NPID
  local name=$1 cpu=$2; shift 2
  WS=$(free_port); API=$(free_port); TCP=$(free_port)
  taskset -c "$cpu" "${NICE[@]}" "$BIN/ringcast" serve --config "$WORK/ringcast.toml" --shards 1 --no-pin --insecure \
    --api-key "$KEY" --address 127.0.0.1 --port "$WS" --api-port "$API" --publisher-port "$TCP" \
    --node-name "$name" "$@" >"$OUT/$NAME.$name.log" 2>&1 &
  NPID=$!; PIDS+=("$NPID")
  wait_health "$API"
}

REDIS_ARGS=(--broker redis --redis-address "redis://127.0.0.1:$RP" --redis-prefix bench)
case $SCENARIO in
  ceiling)
    SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$(sed -n '/^pub const PUBLISH: &str = r#"/,/^"#;/p' engine/src/broker/redis/scripts.rs | sed '1d;$d')")
    PAYLOAD="{\"data\":{\"p\":\"$(head -c 100 /dev/zero | tr '\0' x)\"}}"
    redis-cli -p "$RP" SUBSCRIBE 'bench.pub.{bench:c-0}' >/dev/null &
    PIDS+=($!)
    t0=$(ticks "$RPID")
    taskset -c "$B_CPU" redis-benchmark -p "$RP" -c 32 -P 32 -n 1000000 -q \
      EVALSHA "$SHA" 2 'bench.stream.{bench:c-0}' 'bench.meta.{bench:c-0}' "$PAYLOAD" 1000 300 \
      'bench.pub.{bench:c-0}' 0 EpOcH01 publish | tr '\r' '\n' | grep -a 'requests per second' | tail -1 | tee "$OUT/$NAME.txt"
    t1=$(ticks "$RPID")
    echo "redis_cpu_s=$(echo "($t1 - $t0) / $(getconf CLK_TCK)" | bc -l)" | tee -a "$OUT/$NAME.txt"
    exit 0 ;;
  memory)
    start_node A "$A_CPU"; A_PID=$NPID; A_TCP=$TCP; B_PID=$NPID; B_WS=$WS ;;
  latency|max)
    start_node A "$A_CPU" "${REDIS_ARGS[@]}"; A_PID=$NPID; A_TCP=$TCP
    start_node B "$B_CPU" "${REDIS_ARGS[@]}"; B_PID=$NPID; B_WS=$WS ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

case $SCENARIO in
  latency|memory) LOAD=(--channels 100 --subscribers 1000 --rate "$RATE" --pace even) ;;
  max) LOAD=(--channels 100 --subscribers 100 --max --in-flight 1024) ;;
esac
CMD=("$BIN/ringcast-bench" fanout --url "ws://127.0.0.1:$B_WS/connection/websocket" --publisher tcp
  --publisher-addr "127.0.0.1:$A_TCP" --api-key "$KEY" --channel-prefix bench:c --size 100
  -d "$DURATION" "${LOAD[@]}" "${EXTRA[@]}" --cpu "$B_CPU" --json --no-progress)
{
  [ ${#NICE[@]} -eq 0 ] || echo "# NODE_NICE=$NODE_NICE: redis-server and the nodes under nice -n $NODE_NICE, the bench at nice 0"
  echo "taskset -c $B_CPU ${CMD[*]}"
} >"$OUT/$NAME.cmd"
a0=$(ticks "$A_PID"); b0=$(ticks "$B_PID"); r0=$(ticks "$RPID"); at0=$(rticks "$A_PID"); bt0=$(rticks "$B_PID")
taskset -c "$B_CPU" "${CMD[@]}" >"$OUT/$NAME.json"
a1=$(ticks "$A_PID"); b1=$(ticks "$B_PID"); r1=$(ticks "$RPID"); at1=$(rticks "$A_PID"); bt1=$(rticks "$B_PID")
python3 - "$OUT/$NAME.json" "$((a1 - a0))" "$((b1 - b0))" "$((r1 - r0))" "$(getconf CLK_TCK)" "$SCENARIO" \
  "$((at1 - at0))" "$((bt1 - bt0))" "${NODE_NICE:-}" <<'EOF' | tee "$OUT/$NAME.table"
import json, sys
d = json.load(open(sys.argv[1]))
a, b, r, hz, sc = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
at, bt = int(sys.argv[7]), int(sys.argv[8])
nice = f" (nice {sys.argv[9]})" if sys.argv[9] else ""
f, lat = d["fanout"], d["latency"]
pubs, dels = max(f["acked"], 1), max(f["delivered"], 1)
one = sc == "memory"
print(f"{sc}{nice}: published/s {f['acked_per_s']:.0f}  delivered/s {f['delivered_per_s']:.0f}  "
      f"lost {f['lost']} dup {f['duplicated']} disorder {f['out_of_order']}  "
      f"latency p50 {lat['p50_us']/1000:.3f} ms p99 {lat['p99_us']/1000:.3f} ms  "
      + (f"node CPU {a/hz*1e6/dels:.2f} us/delivery" if one else
         f"A {a/hz*1e6/pubs:.2f} us/publication  B {b/hz*1e6/dels:.2f} us/delivery  "
         f"redis {r/hz*1e6/pubs:.2f} us/publication  "
         f"(of which redis threads: A {at/hz*1e6/pubs:.2f} us/publication, B {bt/hz*1e6/pubs:.2f} us/publication)")
      + "".join(f"  {k} p50 {d[j]['p50_us']/1000:.3f} ms p99 {d[j]['p99_us']/1000:.3f} ms"
                for k, j in (("publish->socket", "socket_latency"), ("socket->read", "read_delay")) if d.get(j)))
EOF
