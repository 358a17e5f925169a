#!/usr/bin/env bash
# scripts/bench-compare.sh -- ringcast against the comparison peer
# (bench/peers/tokio-ws), same load, same core, and the ratios.
#
#   scripts/bench-compare.sh                 # release build, default sizes
#   scripts/bench-compare.sh --quick         # tiny sizes, ~30 s (a check of the script)
#   HOLD_N=15000 ECHO_D=10 scripts/bench-compare.sh --out reports/compare
#
# Each server runs alone under `taskset -c $SERVER_CPU` (ringcast with
# --shards 1 --no-pin, so its thread keeps that mask; the peer with
# --threads 1), fresh for every scenario so its RSS baseline is clean;
# ringcast-bench runs pinned to $LOAD_CPU. Scenarios:
#   hold-raw     HOLD_N idle connections (upgrade only) for HOLD_D s:
#                server RSS per connection (ringcast echo vs peer /echo)
#   hold-cf      the same with Centrifugo connect + subscribe (ringcast serve
#                --insecure vs peer /connection/websocket)
#   echo         ECHO_C conns x ECHO_W in flight x ECHO_S bytes for ECHO_D s:
#                msgs/s, latency, server CPU per message
#   fanout       FAN_SUBS subscribers, FAN_CH channels, FAN_PUBS publishers
#                at FAN_RATE/s (or FAN_RATE=max) for FAN_D s, paced
#                FAN_PACE (even or burst): deliveries/s (over the span from
#                first to last delivery), acknowledged publishes/s, latency,
#                loss, server CPU per delivery
# A single run per scenario, no retries: for figures to publish use
# scripts/bench-run.sh / bench-doc.sh (re-runs disturbed runs) and
# scripts/bench-find-max.sh (zero-loss maximum).
# The Centrifugo scenarios are skipped for ringcast, with a note, when
# `ringcast serve --insecure` does not complete a connect (older builds).
# JSON of every run goes to --out (default target/bench-compare). All traffic
# stays on 127.0.0.0/8; every load is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
QUICK=0 PROFILE=release OUT=$TARGET/bench-compare
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --profile) PROFILE=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  : "${HOLD_N:=200}" "${HOLD_D:=1}" "${ECHO_C:=10}" "${ECHO_W:=4}" "${ECHO_D:=1}"
  : "${FAN_SUBS:=50}" "${FAN_CH:=5}" "${FAN_PUBS:=1}" "${FAN_RATE:=500}" "${FAN_D:=1}"
fi
: "${HOLD_N:=15000}" "${HOLD_D:=10}"
: "${ECHO_C:=100}" "${ECHO_W:=16}" "${ECHO_S:=100}" "${ECHO_D:=10}"
: "${FAN_SUBS:=1000}" "${FAN_CH:=10}" "${FAN_PUBS:=1}" "${FAN_RATE:=2000}" "${FAN_SIZE:=128}" "${FAN_D:=10}"
: "${FAN_PACE:=even}"
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${PORT:=18780}"

case $PROFILE in dev|debug) DIR=debug PFLAG=() ;; *) DIR=$PROFILE PFLAG=(--profile "$PROFILE") ;; esac
echo "building ($PROFILE)..." >&2
cargo build --quiet "${PFLAG[@]}" -p ringcast -p ringcast-bench -p ringcast-peer-tokio-ws
RINGCAST=$TARGET/$DIR/ringcast
PEER=$TARGET/$DIR/peer-tokio-ws
BENCH=$TARGET/$DIR/ringcast-bench
mkdir -p "$OUT"
for tool in jq taskset; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

# start_server LOG CMD...: runs CMD (which listens on $PORT) pinned to
# $SERVER_CPU and waits for the port. Every server gets a port of its own
# (PORT moves on after each): a killed server's sockets can keep its port
# busy for a while.
start_server() {
  local log=$1; shift
  PORT=$((PORT + 1))
  # A port something already listens on is skipped: with SO_REUSEPORT a
  # second server could bind it too and silently take half the load.
  while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
  local args=("${@//@PORT@/$PORT}")
  taskset -c "$SERVER_CPU" "${args[@]}" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not come up: $*" >&2; cat "$log" >&2; return 1
}

ringcast_echo()  { start_server "$OUT/$1.log" "$RINGCAST" echo --port @PORT@ --address 127.0.0.1 --shards 1 --no-pin; }
ringcast_serve() { start_server "$OUT/$1.log" "$RINGCAST" serve --port @PORT@ --address 127.0.0.1 --shards 1 --no-pin --insecure; }
peer()           { start_server "$OUT/$1.log" "$PEER" --port @PORT@ --threads 1; }

# bench NAME PATH ARGS...: one run against the current server's PATH, JSON
# to $OUT/NAME.json, the table to stderr.
bench() {
  local name=$1 path=$2; shift 2
  echo "--- $name" >&2
  taskset -c "$LOAD_CPU" "$BENCH" "$@" --url "ws://127.0.0.1:$PORT$path" \
    --server-pid "$SERVER_PID" --cpu "$LOAD_CPU" --json --no-progress >"$OUT/$name.json" \
    || echo "($name: bench exit $?)" >&2
}

RAW_RC=/ RAW_PEER=/echo CF=/connection/websocket
HOLD=(hold -n "$HOLD_N" -d "$HOLD_D")
ECHO=(echo -c "$ECHO_C" -w "$ECHO_W" -s "$ECHO_S" -d "$ECHO_D")
if [ "$FAN_RATE" = max ]; then RATE=(--max); else RATE=(--rate "$FAN_RATE" --pace "$FAN_PACE"); fi
FANOUT=(fanout --subscribers "$FAN_SUBS" --channels "$FAN_CH" --publishers "$FAN_PUBS"
        "${RATE[@]}" --size "$FAN_SIZE" -d "$FAN_D")

# ---- ringcast
ringcast_echo rc-hold-raw; bench rc-hold-raw $RAW_RC "${HOLD[@]}" --protocol raw; stop_server
ringcast_echo rc-echo;     bench rc-echo $RAW_RC "${ECHO[@]}"; stop_server
RC_CF=1
ringcast_serve rc-probe
if ! "$BENCH" hold --url "ws://127.0.0.1:$PORT$CF" -n 1 --smoke --json --no-progress --connect-timeout 3 \
     >"$OUT/rc-probe.json" 2>/dev/null; then
  RC_CF=0
  echo "note: ringcast serve did not complete a Centrifugo connect; skipping its hold-cf and fanout" >&2
fi
stop_server
if [ "$RC_CF" = 1 ]; then
  ringcast_serve rc-hold-cf; bench rc-hold-cf $CF "${HOLD[@]}"; stop_server
  ringcast_serve rc-fanout;  bench rc-fanout $CF "${FANOUT[@]}"; stop_server
fi

# ---- peer
peer peer-hold-raw; bench peer-hold-raw $RAW_PEER "${HOLD[@]}" --protocol raw; stop_server
peer peer-echo;     bench peer-echo $RAW_PEER "${ECHO[@]}"; stop_server
peer peer-hold-cf;  bench peer-hold-cf $CF "${HOLD[@]}"; stop_server
peer peer-fanout;   bench peer-fanout $CF "${FANOUT[@]}"; stop_server

# ---- ratios
get() { # get NAME JQ-PATH -> value or "-"
  local f=$OUT/$1.json
  [ -s "$f" ] || { echo -; return; }
  jq -r "($2) // \"-\" | if type == \"number\" then (. * 1000 | round / 1000) else . end" "$f" 2>/dev/null || echo -
}
row() { # row LABEL SCENARIO JQ-PATH BETTER(lower|higher|none)
  local rc peer ratio
  rc=$(get "rc-$2" "$3"); peer=$(get "peer-$2" "$3")
  ratio=$(awk -v a="$rc" -v b="$peer" -v better="$4" 'BEGIN {
    if (better == "none" || a == "-" || b == "-" || a + 0 == 0 || b + 0 == 0) { print "-"; exit }
    r = (better == "lower") ? b / a : a / b; printf "%.2fx", r }')
  printf '%-34s %14s %14s %10s\n' "$1" "$rc" "$peer" "$ratio"
}
echo
echo "ringcast vs peer-tokio-ws (server on core $SERVER_CPU, load on core $LOAD_CPU; x = ringcast's advantage)"
printf '%-34s %14s %14s %10s\n' metric ringcast peer advantage
row "hold raw: RSS/conn (B)"            hold-raw .server.rss_per_conn_bytes lower
row "hold raw: established"             hold-raw .connections.established higher
row "hold raw: setup (conn/s)"          hold-raw .connections.per_s higher
row "hold cf: RSS/conn (B)"             hold-cf  .server.rss_per_conn_bytes lower
row "hold cf: setup (conn/s)"           hold-cf  .connections.per_s higher
row "echo: msgs/s"                      echo     .echo.msgs_per_s higher
row "echo: server CPU/msg (us)"         echo     .server.cpu_us_per_msg lower
row "echo: latency p50 (us)"            echo     .latency.p50_us lower
row "echo: latency p99 (us)"            echo     .latency.p99_us lower
row "echo: bench per-worker util"       echo     .bench.per_worker_util lower
row "fanout: delivered/s (span)"        fanout   .fanout.delivered_per_s higher
row "fanout: acked publishes/s"         fanout   .fanout.acked_per_s higher
row "fanout: drain after window (s)"    fanout   .fanout.drain_s lower
row "fanout: server CPU/delivery (us)"  fanout   .server.cpu_us_per_msg lower
row "fanout: latency p50 (us)"          fanout   .latency.p50_us lower
row "fanout: latency p99 (us)"          fanout   .latency.p99_us lower
row "fanout: lost"                      fanout   .fanout.lost lower
row "echo: other load (cores)"          echo     .host.other_busy_cores none
row "fanout: other load (cores)"        fanout   .host.other_busy_cores none
echo "(other load: cores busy with neither server nor bench during the run; > 0.25 disturbs the figures)"
echo "JSON: $OUT"
