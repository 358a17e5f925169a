#!/usr/bin/env bash
# scripts/bench-hold.sh -- one idle-memory run on fresh processes: ringcast on
# SERVER_CPU, `ringcast-bench hold` on LOAD_CPU, N idle connections; the
# bench's JSON gives the server's RSS (and anonymous RSS) per connection.
# scripts/bench-hold-pairs.sh calls it for each run of a pair, and
# scripts/bench-hold-summary.sh makes the tables (they replace the copies of
# hold.sh, drive.sh and summary.sh that sessions 8 to 11 kept in their run
# folders, which stay as the record of those runs).
#
#   scripts/bench-hold.sh KIND NAME      KIND: ws | sse | http_stream | ws2api | raw
#
# ws, sse, http_stream: `ringcast serve` and a client-protocol hold (connect,
# then subscribe to SUBS of CHANNELS channels); ws2api: `ringcast ws2api` in
# front of bench/peers/http-backend; raw: `ringcast echo`, bare WebSocket.
#
# Environment:
#   BIN      directory with ringcast, ringcast-bench (and peer-http-backend)
#   OUT      where NAME.json/.cmd/.table/.server.log/.mem go
#   N (15000) connections, D (6) seconds held, PORT (first port tried, 21700)
#   SHARDS (1; with 2 give SERVER_CPU=0,1), CHANNELS (1), SUBS (1)
#   SERVER_CPU (0), LOAD_CPU (1), SERVER_ENV (e.g. GLIBC_TUNABLES=...)
#   HOLD_EXTRA  more hold arguments (e.g. --connect-concurrency 16)
#   WARMUP (64) the bench's --warmup: that many connections opened,
#            subscribed and closed before its "before" sample, the server's
#            fd count polled back to where it was. The code their paths run
#            is then resident before the sample, so the figure is what each
#            further connection costs, not also the binary's pages that the
#            first connection touched (~640 KB on session 12's build, ~43 B
#            per connection at 15,000). WARMUP=0: none, as sessions 8 to 11
#            measured. (Session 12's own runs made the warm-up with a
#            separate bench run before the measured one; same effect.)
#   STATS (1): 3 s after N sockets are open, smaps_rollup into NAME.mem and
#            malloc_stats() through gdb into NAME.server.log.
# The bench's rss_per_conn_bytes is (RSS 1 s after setup − RSS before) / N;
# anon_per_conn_bytes the same for RssAnon.
set -euo pipefail
KIND=$1 NAME=$2
: "${BIN:?}" "${OUT:?}" "${N:=15000}" "${D:=6}" "${PORT:=21700}" "${SERVER_ENV:=}" "${STATS:=1}"
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${SHARDS:=1}" "${CHANNELS:=1}" "${SUBS:=1}" "${WARMUP:=64}"
mkdir -p "$OUT"
. "$(dirname "$0")/lib/bench.sh"
p=$(free_port 3)
PIDS=()
cleanup() { for x in "${PIDS[@]}"; do kill "$x" 2>/dev/null || true; done; for x in "${PIDS[@]}"; do wait "$x" 2>/dev/null || true; done; }
trap cleanup EXIT
BACKEND=""
case $KIND in
  ws2api)
    taskset -c "$LOAD_CPU" "$BIN/peer-http-backend" --port 0 --threads 1 >"$OUT/$NAME.backend.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do BACKEND=$(head -1 "$OUT/$NAME.backend.log" 2>/dev/null || true); [[ $BACKEND == *:* ]] && break; sleep 0.1; done
    SERVER=(ringcast ws2api --backend "http://$BACKEND/ws/" --port "$p" --address 127.0.0.1 --shards "$SHARDS" --no-pin)
    HOLD=(hold --protocol raw --url "ws://127.0.0.1:$p/c{i}") ;;
  raw)
    SERVER=(ringcast echo --port "$p" --address 127.0.0.1 --shards "$SHARDS" --no-pin)
    HOLD=(hold --protocol raw --url "ws://127.0.0.1:$p/c{i}") ;;
  ws|sse|http_stream)
    SERVER=(ringcast serve --port "$p" --address 127.0.0.1 --shards "$SHARDS" --no-pin --insecure --api-port $((p+1))
            --publisher-port $((p+2)) --api-key bench-key --http-stream --sse)
    T=$KIND; [ "$KIND" = ws ] && T=websocket
    HOLD=(hold --url "ws://127.0.0.1:$p/connection/websocket" --transport "$T" --channels "$CHANNELS" --subs-per-conn "$SUBS") ;;
  *) echo "unknown KIND $KIND" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
env $SERVER_ENV taskset -c "$SERVER_CPU" "$BIN/${SERVER[0]}" "${SERVER[@]:1}" >"$OUT/$NAME.server.log" 2>&1 &
SPID=$!; PIDS+=($SPID)
for _ in $(seq 100); do port_busy "$p" && break; sleep 0.1; done
fds() { ls "/proc/$SPID/fd" 2>/dev/null | wc -l; }
# shellcheck disable=SC2206
HOLD+=(-n "$N" -d "$D" --conns-per-addr 5000 --warmup "$WARMUP" ${HOLD_EXTRA:-})
{
  echo "# $(date -u +%FT%TZ) $(git -C "$(dirname "$0")" rev-parse --short HEAD) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "$BACKEND" ] && echo "taskset -c $LOAD_CPU peer-http-backend --port 0 --threads 1   # -> $BACKEND"
  echo "${SERVER_ENV:+$SERVER_ENV }taskset -c $SERVER_CPU ${SERVER[*]}"
  echo "taskset -c $LOAD_CPU ringcast-bench ${HOLD[*]} --server-pid $SPID --cpu $LOAD_CPU --json --no-progress"
} >"$OUT/$NAME.cmd"
taskset -c "$LOAD_CPU" "$BIN/ringcast-bench" "${HOLD[@]}" --server-pid "$SPID" --cpu "$LOAD_CPU" --json --no-progress \
  >"$OUT/$NAME.json" 2>"$OUT/$NAME.table" &
BPID=$!; PIDS+=($BPID)
if [ "$STATS" = 1 ]; then
  for _ in $(seq 600); do [ "$(fds)" -ge "$N" ] && break; sleep 0.1; done
  sleep 3
  {
    echo "# rss at +3 s: $(awk '/VmRSS/{print $2, $3}' "/proc/$SPID/status")"
    cat "/proc/$SPID/smaps_rollup"
  } >"$OUT/$NAME.mem" 2>&1 || true
  gdb -p "$SPID" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true
fi
wait "$BPID" || echo "bench exit $?" >&2
jq -r --arg n "$NAME" '"\($n): rss/conn \(.server.rss_per_conn_bytes|floor) B, anon/conn \(.server.anon_per_conn_bytes // -1|floor) B, before \(.server.rss_before_bytes), established \(.server.rss_established_bytes), conns \(.connections.established // "?")"' "$OUT/$NAME.json"
