#!/usr/bin/env bash
# docs/benchmarks/runs/session11-slab/hold.sh -- session 9's hold.sh with one
# more KIND, raw: `ringcast echo` and `hold --protocol raw` (SHARDS shards).
# One idle-memory run on fresh
# processes: ringcast on SERVER_CPU (0), ringcast-bench `hold` on LOAD_CPU (1)
# (and the ws2api backend peer on LOAD_CPU too), N idle connections.
# Session 9 (from session8-mem/hold.sh): SHARDS (1; with 2, SERVER_CPU=0,1),
# CHANNELS (1) and SUBS (subscriptions per connection, 1) for `hold`.
#
#   hold.sh KIND NAME        KIND: ws | sse | http_stream | ws2api | raw
#
# HOLD_EXTRA: more hold arguments (session 11, slab2: --connect-concurrency K).
# Environment: BIN (ringcast, ringcast-bench, peer-http-backend), OUT (where
# NAME.json/.cmd/.server.log/.mem go), N (15000), D (10), PORT (first port
# tried, 19500), SERVER_ENV (e.g. "GLIBC_TUNABLES=glibc.malloc.arena_max=1"),
# STATS (1: after setup, gdb calls malloc_stats() in the server, which prints
# to its stderr = NAME.server.log; also smaps_rollup into NAME.mem).
# GDB_TRIM=1: then also a malloc_trim(0) through gdb, and RSS after it (.mem).
# POST_TRIM=1: 5 s after the bench ends (its clients closed), RSS, then a gdb
# malloc_trim(0) and RSS again (.mem).
# The bench's rss_per_conn_bytes is (RSS 1 s after setup - RSS before) / N.
set -euo pipefail
KIND=$1 NAME=$2
: "${BIN:?}" "${OUT:?}" "${N:=15000}" "${D:=10}" "${PORT:=19500}" "${SERVER_ENV:=}" "${STATS:=1}"
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${SHARDS:=1}" "${CHANNELS:=1}" "${SUBS:=1}"
mkdir -p "$OUT"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
p=$PORT; while port_busy $p || port_busy $((p+1)) || port_busy $((p+2)); do p=$((p+3)); done
PIDS=()
cleanup() { for x in "${PIDS[@]}"; do kill "$x" 2>/dev/null || true; done; for x in "${PIDS[@]}"; do wait "$x" 2>/dev/null || true; done; }
trap cleanup EXIT
BACKEND=""
if [ "$KIND" = ws2api ]; then
  taskset -c "$LOAD_CPU" "$BIN/peer-http-backend" --port 0 --threads 1 >"$OUT/$NAME.backend.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do BACKEND=$(head -1 "$OUT/$NAME.backend.log" 2>/dev/null || true); [[ $BACKEND == *:* ]] && break; sleep 0.1; done
  SERVER=(ringcast ws2api --backend "http://$BACKEND/ws/" --port "$p" --address 127.0.0.1 --shards 1 --no-pin)
  HOLD=(hold --protocol raw --url "ws://127.0.0.1:$p/c{i}")
elif [ "$KIND" = raw ]; then
  SERVER=(ringcast echo --port "$p" --address 127.0.0.1 --shards "$SHARDS" --no-pin)
  HOLD=(hold --protocol raw --url "ws://127.0.0.1:$p/c{i}")
else
  SERVER=(ringcast serve --port "$p" --address 127.0.0.1 --shards "$SHARDS" --no-pin --insecure --api-port $((p+1))
          --publisher-port $((p+2)) --api-key bench-key --http-stream --sse)
  T=$KIND; [ "$KIND" = ws ] && T=websocket
  HOLD=(hold --url "ws://127.0.0.1:$p/connection/websocket" --transport "$T" --channels "$CHANNELS" --subs-per-conn "$SUBS")
fi
HOLD+=(-n "$N" -d "$D" --conns-per-addr 5000 ${HOLD_EXTRA:-})
# shellcheck disable=SC2086
env $SERVER_ENV taskset -c "$SERVER_CPU" "$BIN/${SERVER[0]}" "${SERVER[@]:1}" >"$OUT/$NAME.server.log" 2>&1 &
SPID=$!; PIDS+=($SPID)
for _ in $(seq 100); do port_busy "$p" && break; sleep 0.1; done
{
  echo "# $(date -u +%FT%TZ) $(git -C "$(dirname "$0")" rev-parse --short HEAD) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "$BACKEND" ] && echo "taskset -c $LOAD_CPU peer-http-backend --port 0 --threads 1   # -> $BACKEND"
  echo "${SERVER_ENV:+$SERVER_ENV }taskset -c $SERVER_CPU ${SERVER[*]}"
  echo "taskset -c $LOAD_CPU ringcast-bench ${HOLD[*]} --server-pid $SPID --cpu $LOAD_CPU --json --no-progress"
} >"$OUT/$NAME.cmd"
taskset -c "$LOAD_CPU" "$BIN/ringcast-bench" "${HOLD[@]}" --server-pid "$SPID" --cpu "$LOAD_CPU" --json --no-progress \
  >"$OUT/$NAME.json" 2>"$OUT/$NAME.table" &
BPID=$!
if [ "$STATS" = 1 ]; then
  # Once N sockets are open plus 3 s (after the bench's established sample).
  for _ in $(seq 600); do
    [ "$(ls /proc/$SPID/fd 2>/dev/null | wc -l)" -ge "$N" ] && break; sleep 0.1
  done
  sleep 3
  {
    echo "# rss at +3 s: $(awk '/VmRSS/{print $2, $3}' /proc/$SPID/status)"
    cat /proc/$SPID/smaps_rollup
  } >"$OUT/$NAME.mem" 2>&1 || true
    gdb -p "$SPID" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true
  if [ "${GDB_TRIM:-0}" = 1 ]; then
    # Exploration: what malloc_trim(0) would give, called from outside.
    gdb -p "$SPID" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
    sleep 0.5
    echo "# rss after gdb malloc_trim(0): $(awk '/VmRSS/{print $2, $3}' /proc/$SPID/status)" >>"$OUT/$NAME.mem"
    gdb -p "$SPID" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true
  fi
fi
wait "$BPID" || echo "bench exit $?" >&2
if [ "${POST_TRIM:-0}" = 1 ]; then
  # Exploration: after the clients closed, what malloc_trim(0) gives.
  sleep 5
  echo "# after the close, +5 s: rss $(awk '/VmRSS/{print $2, $3}' /proc/$SPID/status)" >>"$OUT/$NAME.mem"
  gdb -p "$SPID" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
  echo "# then gdb malloc_trim(0): rss $(awk '/VmRSS/{print $2, $3}' /proc/$SPID/status)" >>"$OUT/$NAME.mem"
fi
jq -r --arg n "$NAME" '"\($n): rss/conn \(.server.rss_per_conn_bytes|floor) B, established \(.server.rss_established_bytes), end \(.server.rss_end_bytes), before \(.server.rss_before_bytes), conns \(.connections.established // "?")"' "$OUT/$NAME.json"
