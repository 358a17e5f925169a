#!/usr/bin/env bash
# Session 9 (reactor split): A and B at the same time, so that both see the
# same load from the rest of the (shared) host: both servers on cpu 0, both
# load generators on cpu 1, the same arguments; ROUNDS rounds per scenario.
# Each server's CPU per message is read by its own ringcast-bench
# (--server-pid). All traffic on 127.0.0.1; every run bounded by -d. OUT:
# where the runs go (default side-by-side/).
#
#   BIN_A=/tmp/reactor-bins/A BIN_B=/tmp/reactor-bins/B \
#     docs/benchmarks/runs/session9-reactor/side-by-side.sh echo fanout
set -euo pipefail
cd "$(dirname "$0")/../../../.."
OUT=${OUT:-docs/benchmarks/runs/session9-reactor/side-by-side}
mkdir -p "$OUT"
: "${BIN_A:?}" "${BIN_B:?}" "${ROUNDS:=3}" "${PORT:=19600}"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
up() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
[ $# -gt 0 ] || set -- echo fanout
for scenario in "$@"; do
  for r in $(seq "$ROUNDS"); do
    declare -A SPID=()
    for build in A B; do
      bin=BIN_$build
      [ "$build" = B ] && port=$((PORT + 10)) || port=$PORT
      case $scenario in
        echo) cmd=("${!bin}/ringcast" echo --port "$port" --address 127.0.0.1 --shards 1 --no-pin) ;;
        fanout) cmd=("${!bin}/ringcast" serve --port "$port" --address 127.0.0.1 --shards 1 --no-pin --insecure
                     --api-port $((port + 1)) --publisher-port $((port + 2)) --api-key bench-key) ;;
      esac
      taskset -c 0 "${cmd[@]}" >"$OUT/$scenario-$build-$r.server.log" 2>&1 &
      SPID[$build]=$!; PIDS+=($!)
      up "$port"
      echo "taskset -c 0 ${cmd[*]//${!bin}\//}" >"$OUT/$scenario-$build-$r.cmd"
    done
    for build in A B; do
      [ "$build" = B ] && port=$((PORT + 10)) || port=$PORT
      case $scenario in
        echo) args=(echo --url "ws://127.0.0.1:$port/" -c 100 -w 16 -s 100 -d 10) ;;
        fanout) args=(fanout --url "ws://127.0.0.1:$port/connection/websocket" --subscribers 5000 --channels 1
                      --publishers 1 --size 100 --rate 200 --pace even -d 10 --conns-per-addr 5000) ;;
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
