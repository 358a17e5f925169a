#!/usr/bin/env bash
# marginal.sh -- what further clients cost once some are connected, with no
# warm-up: one server (SHARDS shards on SERVER_CPU), a first `hold` of
# N1 clients kept open, then, 3 s after they are all connected, a second
# `hold` of N2 more with --server-pid. The second bench's rss_per_conn_bytes
# is (RSS with N1 + N2 − RSS with N1) / N2: no first-touch of code or
# one-time structures is in it, since the first N1 paid those.
#   BIN=DIR OUT=DIR marginal.sh NAME     (N1=7500 N2=7500 SHARDS=1)
set -euo pipefail
NAME=$1
: "${BIN:?}" "${OUT:?}" "${N1:=7500}" "${N2:=7500}" "${SHARDS:=1}" "${PORT:=23700}"
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}"
mkdir -p "$OUT"
. "$(dirname "$0")/../../../../scripts/lib/bench.sh"
p=$(free_port 3)
PIDS=()
cleanup() { for x in "${PIDS[@]}"; do kill "$x" 2>/dev/null || true; done; for x in "${PIDS[@]}"; do wait "$x" 2>/dev/null || true; done; }
trap cleanup EXIT
SERVER=(ringcast serve --port "$p" --address 127.0.0.1 --shards "$SHARDS" --no-pin --insecure --api-port $((p+1))
        --publisher-port $((p+2)) --api-key bench-key)
# --warmup 0: the first hold is the warm-up (session 12's runs were made with
# a bench from before --warmup, which had none).
HOLD=(hold --url "ws://127.0.0.1:$p/connection/websocket" --transport websocket --channels 1 --subs-per-conn 1
      --conns-per-addr 5000 --no-progress --warmup 0)
taskset -c "$SERVER_CPU" "$BIN/ringcast" "${SERVER[@]:1}" >"$OUT/$NAME.server.log" 2>&1 &
SPID=$!; PIDS+=($SPID)
for _ in $(seq 100); do port_busy "$p" && break; sleep 0.1; done
# The first clients from 127.0.0.2.., the second from 127.0.0.20.. The first
# hold is stopped when the script ends, before it reports: its .first.json
# stays empty; what matters is the second's report.
taskset -c "$LOAD_CPU" "$BIN/ringcast-bench" "${HOLD[@]}" -n "$N1" -d 60 --server-pid "$SPID" --json \
  >"$OUT/$NAME.first.json" 2>"$OUT/$NAME.first.table" &
FIRST=$!; PIDS+=($FIRST)
for _ in $(seq 600); do [ "$(ls /proc/$SPID/fd | wc -l)" -ge "$N1" ] && break; sleep 0.1; done
sleep 3
{
  echo "# $(date -u +%FT%TZ) $(git -C "$(dirname "$0")" rev-parse --short HEAD) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "taskset -c $SERVER_CPU ${SERVER[*]}"
  echo "taskset -c $LOAD_CPU ringcast-bench ${HOLD[*]} -n $N1 -d 60 --server-pid $SPID --json &   # kept open"
  echo "taskset -c $LOAD_CPU ringcast-bench ${HOLD[*]} -n $N2 -d 6 --source-base 127.0.0.20 --server-pid $SPID --cpu $LOAD_CPU --json"
} >"$OUT/$NAME.cmd"
taskset -c "$LOAD_CPU" "$BIN/ringcast-bench" "${HOLD[@]}" -n "$N2" -d 6 --source-base 127.0.0.20 --server-pid "$SPID" \
  --cpu "$LOAD_CPU" --json >"$OUT/$NAME.json" 2>"$OUT/$NAME.table"
jq -r --arg n "$NAME" '"\($n): \(.connections.established) more on top of the first: rss/conn \(.server.rss_per_conn_bytes|floor) B, anon/conn \(.server.anon_per_conn_bytes|floor) B"' "$OUT/$NAME.json"
