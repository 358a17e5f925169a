#!/usr/bin/env bash
# Session 10 (io_uring data path): session 9's side-by-side.sh with the
# server's flags per side. A and B run at the same time, so that both see
# the same load from the rest of the (shared) host: both servers on cpu 0,
# both load generators on cpu 1, the same arguments; ROUNDS rounds per
# scenario. Each server's CPU per message is read by its own ringcast-bench
# (--server-pid). All traffic on 127.0.0.1; every run bounded by -d.
#
#   BIN=target/release FLAGS_A="--data-path epoll" FLAGS_B="--data-path uring" \
#     OUT=docs/benchmarks/runs/session10-uring/pairs \
#     docs/benchmarks/runs/session10-uring/side-by-side.sh echo ingest fanout quiet
#
# BIN_A / BIN_B (default BIN) may differ too. Scenarios:
#   echo    100 connections x 16 in flight x 100 B
#   ingest  TCP publisher (window 1024, 100 B), one subscriber
#   fanout  5,000 subscribers of 1 channel, 200 publications/s of 100 B
#   quiet   1,000 channels x 10 subscribers, 10,000 publications/s, even;
#           the server-side delivery latency from /metrics (--metrics-url)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
OUT=${OUT:-docs/benchmarks/runs/session10-uring/pairs}
mkdir -p "$OUT"
: "${BIN:=target/release}" "${ROUNDS:=3}" "${PORT:=19600}" "${DUR:=10}"
: "${BIN_A:=$BIN}" "${BIN_B:=$BIN}" "${FLAGS_A:=}" "${FLAGS_B:=}"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
up() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
[ $# -gt 0 ] || set -- echo fanout
for scenario in "$@"; do
  for r in $(seq "$ROUNDS"); do
    declare -A SPID=()
    for build in A B; do
      bin=BIN_$build; flags=FLAGS_$build
      [ "$build" = B ] && port=$((PORT + 10)) || port=$PORT
      # shellcheck disable=SC2206
      extra=(${!flags})
      case $scenario in
        echo) cmd=("${!bin}/ringcast" echo --port "$port" --address 127.0.0.1 --shards 1 --no-pin "${extra[@]}") ;;
        *) cmd=("${!bin}/ringcast" serve --port "$port" --address 127.0.0.1 --shards 1 --no-pin --insecure
                --api-port $((port + 1)) --publisher-port $((port + 2)) --api-key bench-key "${extra[@]}") ;;
      esac
      taskset -c 0 "${cmd[@]}" >"$OUT/$scenario-$build-$r.server.log" 2>&1 &
      SPID[$build]=$!; PIDS+=($!)
      up "$port"
      echo "taskset -c 0 ${cmd[*]//${!bin}\//}" >"$OUT/$scenario-$build-$r.cmd"
    done
    for build in A B; do
      [ "$build" = B ] && port=$((PORT + 10)) || port=$PORT
      ws="ws://127.0.0.1:$port/connection/websocket"
      case $scenario in
        echo) args=(echo --url "ws://127.0.0.1:$port/" -c 100 -w 16 -s 100 -d "$DUR") ;;
        ingest) args=(publish --url "$ws" --via tcp -w 1024 --size 100 --publisher-addr "127.0.0.1:$((port + 2))"
                      --api-key bench-key -d "$DUR") ;;
        fanout) args=(fanout --url "$ws" --subscribers 5000 --channels 1
                      --publishers 1 --size 100 --rate 200 --pace even -d "$DUR" --conns-per-addr 5000) ;;
        quiet) args=(fanout --url "$ws" --subscribers 10000 --channels 1000 --publishers 1 --rate 10000
                     --pace even --size 100 -d "$DUR" --conns-per-addr 5000
                     --metrics-url "http://127.0.0.1:$((port + 1))/metrics") ;;
      esac
      bench=(taskset -c 1 "$BIN_A/ringcast-bench" "${args[@]}" --server-pid "${SPID[$build]}" --cpu 1 --json --no-progress)
      echo "${bench[*]//$BIN_A\//}" >>"$OUT/$scenario-$build-$r.cmd"
      "${bench[@]}" >"$OUT/$scenario-$build-$r.json" 2>"$OUT/$scenario-$build-$r.table" &
      PIDS+=($!)
    done
    wait "${PIDS[@]: -2}" || true
    kill "${SPID[A]}" "${SPID[B]}" 2>/dev/null || true
    wait "${SPID[A]}" "${SPID[B]}" 2>/dev/null || true
    PIDS=()
    PORT=$((PORT + 20))
    echo "$scenario round $r: A $(jq .server.cpu_us_per_msg "$OUT/$scenario-A-$r.json") B $(jq .server.cpu_us_per_msg "$OUT/$scenario-B-$r.json") µs/msg" >&2
  done
done
