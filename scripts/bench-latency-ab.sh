#!/usr/bin/env bash
# scripts/bench-latency-ab.sh -- issue 16's latency scenarios, A and B in
# turn, ROUNDS rounds: one shard on cpu 0, `ringcast-bench fanout` on cpu 1
# (the same bench binary, BENCH, for both), 100-byte publications, even
# pacing, the server's delivery-latency histogram read through /metrics.
# A and B differ by server (KIND_A, KIND_B: ringcast, the default, or peer,
# bench/peers/tokio-ws with one thread, no server-side histogram), build
# (BIN_A, BIN_B: the directory holding ringcast or peer-tokio-ws), server
# arguments (ARGS_A, ARGS_B), bench arguments (BENCH_ARGS_A, BENCH_ARGS_B),
# real-time priority (RT_A, RT_B: the server's shard threads -- the whole
# peer process, under chrt -- and the bench's worker, SCHED_FIFO at that
# priority; RT sets both), shards (SHARDS_A, SHARDS_B, default 1: one shard
# on cpu 0, unpinned; N > 1: N shards pinned to cores 0..N-1, which the
# bench's core 1 is then one of) and/or network (NET_A, NET_B):
#   loopback  the host's loopback, as it is;
#   rfs       a network namespace made for the run, whose loopback steers
#             each packet's receive work to the core of the socket's reader
#             (RPS + RFS: rps_cpus = cores 0 and 1, rps_flow_cnt, and the
#             global flow table net.core.rps_sock_flow_entries, put back
#             afterwards; the root namespace's loopback keeps rps_cpus 0).
# Why rfs: on loopback a packet's receive path (TCP input, waking the
# reader) runs on the sending core, inside its sendmsg. A fan-out server on
# core 0 then also pays its subscribers' receive work, which a real network
# puts on the subscribers' hosts. With RFS the bench's sockets are served
# on core 1, the server's on core 0.
#
#   SCENARIO: goal1 = 1,000 channels x 10 subscribers, 10,000 publications/s
#             goal2 = 100 x 10, 5,000/s, --rx-timestamps
#   RATE (or RATE_A, RATE_B): publications/s instead of the scenario's
#   BIN_A=DIR [BIN_B=DIR] [NET_B=rfs] [ARGS_B=...] [RT_B=1] [KIND_B=peer] OUT=DIR \
#     SCENARIO=goal1 ROUNDS=3 scripts/bench-latency-ab.sh
# Per run NAME.json (the bench), NAME.server.log, NAME.bench.log, NAME.host
# (loadavg and the cpu0/cpu1 lines of /proc/stat before and after: steal is
# the 8th number). Each run waits (at most 10 min) for the host to be quiet
# (all processes <= 0.1 core over 3 s). The table:
# docs/benchmarks/runs/session11-latency/summary.py OUT
set -euo pipefail
: "${BIN_A:?}" "${OUT:?}"
BIN_B=${BIN_B:-$BIN_A} BENCH=${BENCH:-$BIN_A/ringcast-bench} NET_A=${NET_A:-loopback} NET_B=${NET_B:-loopback}
SCENARIO=${SCENARIO:-goal1} ROUNDS=${ROUNDS:-3} PORT=${PORT:-19700} DUR=${DUR:-10}
RT_A=${RT_A:-${RT:-}} RT_B=${RT_B:-${RT:-}} KIND_A=${KIND_A:-ringcast} KIND_B=${KIND_B:-ringcast}
SHARDS_A=${SHARDS_A:-1} SHARDS_B=${SHARDS_B:-1}
RATE_A=${RATE_A:-${RATE:-}} RATE_B=${RATE_B:-${RATE:-}}
for n in "$NET_A" "$NET_B"; do
  case $n in loopback|rfs) ;; *) echo "NET must be loopback or rfs, not $n" >&2; exit 2 ;; esac
done
for k in "$KIND_A" "$KIND_B"; do
  case $k in ringcast|peer) ;; *) echo "KIND must be ringcast or peer, not $k" >&2; exit 2 ;; esac
done
mkdir -p "$OUT"
NS=ringcast-rfs-$$
if [ "$NET_A" = rfs ] || [ "$NET_B" = rfs ]; then
  old_flows=$(cat /proc/sys/net/core/rps_sock_flow_entries)
  cleanup() {
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    sysctl -qw net.core.rps_sock_flow_entries="$old_flows"
  }
  trap cleanup EXIT
  ip netns add "$NS"
  ip netns exec "$NS" sh -c 'ip link set lo up &&
    echo 3 > /sys/class/net/lo/queues/rx-0/rps_cpus &&
    echo 32768 > /sys/class/net/lo/queues/rx-0/rps_flow_cnt'
  sysctl -qw net.core.rps_sock_flow_entries=32768
fi
. "$(dirname "$0")/lib/bench.sh"   # wait_quiet
case $SCENARIO in
  goal1) load=(--subscribers 10000 --channels 1000 --conns-per-addr 5000) default_rate=10000 ;;
  goal2) load=(--subscribers 1000 --channels 100 --rx-timestamps) default_rate=5000 ;;
  *) echo "unknown SCENARIO $SCENARIO" >&2; exit 2 ;;
esac
for r in $(seq "$ROUNDS"); do
  for v in A B; do
    bin=BIN_$v; bin=${!bin}
    args=ARGS_$v; read -r -a extra <<< "${!args:-}"
    bargs=BENCH_ARGS_$v; read -r -a bextra <<< "${!bargs:-}"
    net=NET_$v; in=(); [ "${!net}" = rfs ] && in=(ip netns exec "$NS")
    kind=KIND_$v; kind=${!kind}
    rt=RT_$v; rt=${!rt}; wrap=() metrics=()
    shards=SHARDS_$v; shards=${!shards}; place=(--shards 1 --no-pin) cpus=0
    rate=RATE_$v; rate=${!rate:-$default_rate}
    [ "$shards" -gt 1 ] && place=(--shards "$shards") cpus=0-$((shards - 1))
    [ -n "$rt" ] && bextra+=(--realtime-priority "$rt")
    name=$v-$r
    quiet=$(wait_quiet)
    { echo "start $(date -u +%T) loadavg $(cat /proc/loadavg) other-busy-before $quiet net ${!net} kind $kind rt ${rt:-none} shards $shards rate $rate args ${extra[*]:-} bench-args ${bextra[*]:-}"; grep -E '^cpu[01] ' /proc/stat; } > "$OUT/$name.host"
    if [ "$kind" = ringcast ]; then
      [ -n "$rt" ] && extra+=(--realtime-priority "$rt")
      "${in[@]}" taskset -c "$cpus" "$bin/ringcast" serve --port "$PORT" --address 127.0.0.1 "${place[@]}" --insecure \
        --api-port $((PORT + 1)) --publisher-port $((PORT + 2)) --api-key bench-key ${extra[@]+"${extra[@]}"} \
        > "$OUT/$name.server.log" 2>&1 &
      metrics=(--metrics-url "http://127.0.0.1:$((PORT + 1))/metrics")
    else
      [ -n "$rt" ] && wrap=(chrt -f "$rt")
      "${in[@]}" ${wrap[@]+"${wrap[@]}"} taskset -c 0 "$bin/peer-tokio-ws" --port "$PORT" --threads 1 ${extra[@]+"${extra[@]}"} \
        > "$OUT/$name.server.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do "${in[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2> /dev/null && break; sleep 0.1; done
    "${in[@]}" taskset -c 1 "$BENCH" fanout --url "ws://127.0.0.1:$PORT/connection/websocket" "${load[@]}" --rate "$rate" \
      --publishers 1 --pace even --size 100 -d "$DUR" ${metrics[@]+"${metrics[@]}"} \
      --server-pid "$pid" --cpu 1 --json --no-progress ${bextra[@]+"${bextra[@]}"} \
      > "$OUT/$name.json" 2> "$OUT/$name.bench.log" || true
    kill "$pid"; wait "$pid" 2> /dev/null || true
    { echo "end $(date -u +%T) loadavg $(cat /proc/loadavg)"; grep -E '^cpu[01] ' /proc/stat; } >> "$OUT/$name.host"
  done
done
python3 "$(dirname "$0")/../docs/benchmarks/runs/session11-latency/summary.py" "$OUT"
