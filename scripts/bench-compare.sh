#!/usr/bin/env bash
# scripts/bench-compare.sh -- ringcast against the comparison peer
# (bench/peers/tokio-ws), same load, same core, and the ratios.
#
#   scripts/bench-compare.sh                 # release build, default sizes
#   scripts/bench-compare.sh --quick         # tiny sizes, ~1 min (a check of the script)
#   scripts/bench-compare.sh --report        # + a report dir (report.md, SVG charts) per run
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
#   storm        STORM_N subscribers on STORM_CH channels (namespace storm:,
#                history + force_recovery for ringcast), publishing STORM_RATE/s
#                for STORM_D s; after STORM_WARMUP s every connection is reset by
#                the bench (--drop client, the same for both servers) and
#                reconnects within STORM_RECONNECT_MAX s, resubscribing with
#                recovery: time to re-establish, recovered, lost (the peer has
#                no recovery: its losses are the honest result). ringcast also
#                runs storm-api: one server API disconnect (code 3011) drops all.
#   publish      publisher ingest for PUB_D s, PUB_SIZE-byte publications: client
#                publish over WebSocket (both servers, window PUB_W_CLIENT);
#                ringcast only, no peer equivalent: the TCP publisher protocol
#                (window PUB_W_TCP) and the HTTP API (window PUB_W_HTTP)
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
QUICK=0 PROFILE=release OUT=$TARGET/bench-compare REPORT=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --report) REPORT=1 ;;
    --profile) PROFILE=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  : "${HOLD_N:=200}" "${HOLD_D:=1}" "${ECHO_C:=10}" "${ECHO_W:=4}" "${ECHO_D:=1}"
  : "${FAN_SUBS:=50}" "${FAN_CH:=5}" "${FAN_PUBS:=1}" "${FAN_RATE:=500}" "${FAN_D:=1}"
  : "${STORM_N:=100}" "${STORM_RATE:=200}" "${STORM_D:=2.5}" "${STORM_WARMUP:=0.8}" "${STORM_RECONNECT_MAX:=0.5}"
  : "${PUB_D:=1}"
fi
: "${HOLD_N:=15000}" "${HOLD_D:=10}"
: "${ECHO_C:=100}" "${ECHO_W:=16}" "${ECHO_S:=100}" "${ECHO_D:=10}"
: "${FAN_SUBS:=1000}" "${FAN_CH:=10}" "${FAN_PUBS:=1}" "${FAN_RATE:=2000}" "${FAN_SIZE:=128}" "${FAN_D:=10}"
: "${FAN_PACE:=even}"
: "${STORM_N:=10000}" "${STORM_CH:=10}" "${STORM_RATE:=1000}" "${STORM_D:=10}" "${STORM_WARMUP:=3}"
: "${STORM_RECONNECT_MAX:=1}"
: "${PUB_D:=10}" "${PUB_SIZE:=100}" "${PUB_W_TCP:=1024}" "${PUB_W_HTTP:=64}" "${PUB_W_CLIENT:=256}"
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${PORT:=18780}"

case $PROFILE in dev|debug) DIR=debug PFLAG=() ;; *) DIR=$PROFILE PFLAG=(--profile "$PROFILE") ;; esac
echo "building ($PROFILE)..." >&2
cargo build --quiet "${PFLAG[@]}" -p ringcast -p ringcast-bench -p ringcast-peer-tokio-ws
RINGCAST=$TARGET/$DIR/ringcast
PEER=$TARGET/$DIR/peer-tokio-ws
BENCH=$TARGET/$DIR/ringcast-bench
mkdir -p "$OUT"
for tool in jq taskset; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done

SERVER_PID="" KEY=bench-compare-key API_ARGS=() PUB_ARGS=()
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

# start_server LOG CMD...: runs CMD (which listens on $PORT; ringcast serve
# also on $API_PORT and $PUB_PORT: @PORT@, @API@, @PUB@ in CMD) pinned to
# $SERVER_CPU and waits for the port. Every server gets ports of its own
# (PORT moves on after each): a killed server's sockets can keep its port
# busy for a while.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start_server() {
  local log=$1; shift
  PORT=$((PORT + 3))
  # Ports something already listens on are skipped: with SO_REUSEPORT a
  # second server could bind them too and silently take half the load.
  while in_use $PORT || in_use $((PORT + 1)) || in_use $((PORT + 2)); do PORT=$((PORT + 3)); done
  API_PORT=$((PORT + 1)) PUB_PORT=$((PORT + 2))
  API_ARGS=(--api-url "http://127.0.0.1:$API_PORT/api" --api-key "$KEY")
  PUB_ARGS=(--publisher-addr "127.0.0.1:$PUB_PORT" --api-key "$KEY")
  local args=("${@//@PORT@/$PORT}")
  args=("${args[@]//@API@/$API_PORT}")
  args=("${args[@]//@PUB@/$PUB_PORT}")
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
SERVE=(serve --port @PORT@ --api-port @API@ --publisher-port @PUB@ --api-key "$KEY"
       --address 127.0.0.1 --shards 1 --no-pin --insecure)
ringcast_serve() { start_server "$OUT/$1.log" "$RINGCAST" "${SERVE[@]}"; }
# The storm namespace keeps history and recovers (what `bench storm` subscribes to).
cat >"$OUT/storm.toml" <<'TOML'
[namespace.storm]
history_size = 10000
history_ttl = 300
force_recovery = true
TOML
ringcast_storm() { start_server "$OUT/$1.log" "$RINGCAST" "${SERVE[@]}" --config "$OUT/storm.toml"; }
peer()           { start_server "$OUT/$1.log" "$PEER" --port @PORT@ --threads 1; }

# bench NAME PATH ARGS...: one run against the current server's PATH, JSON
# to $OUT/NAME.json (with --report also $OUT/NAME/report.md and charts),
# the table to stderr.
bench() {
  local name=$1 path=$2; shift 2
  local report=()
  [ "$REPORT" = 1 ] && report=(--report "$OUT/$name")
  echo "--- $name" >&2
  taskset -c "$LOAD_CPU" "$BENCH" "$@" --url "ws://127.0.0.1:$PORT$path" "${report[@]}" \
    --server-pid "$SERVER_PID" --cpu "$LOAD_CPU" --json --no-progress >"$OUT/$name.json" \
    || echo "($name: bench exit $?)" >&2
}


RAW_RC=/ RAW_PEER=/echo CF=/connection/websocket
HOLD=(hold -n "$HOLD_N" -d "$HOLD_D")
ECHO=(echo -c "$ECHO_C" -w "$ECHO_W" -s "$ECHO_S" -d "$ECHO_D")
if [ "$FAN_RATE" = max ]; then RATE=(--max); else RATE=(--rate "$FAN_RATE" --pace "$FAN_PACE"); fi
FANOUT=(fanout --subscribers "$FAN_SUBS" --channels "$FAN_CH" --publishers "$FAN_PUBS"
        "${RATE[@]}" --size "$FAN_SIZE" -d "$FAN_D")
STORM=(storm -n "$STORM_N" --channels "$STORM_CH" --rate "$STORM_RATE" -d "$STORM_D"
       --warmup "$STORM_WARMUP" --reconnect-max "$STORM_RECONNECT_MAX")
PUBLISH=(publish --size "$PUB_SIZE" -d "$PUB_D")

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
  ringcast_serve rc-fanout;  bench rc-fanout $CF "${FANOUT[@]}" --metrics-url "http://127.0.0.1:$API_PORT/metrics"; stop_server
  ringcast_storm rc-storm;   bench rc-storm $CF "${STORM[@]}" --drop client --publisher client; stop_server
  ringcast_storm rc-storm-api; bench rc-storm-api $CF "${STORM[@]}" --drop api --publisher http "${API_ARGS[@]}"; stop_server
  ringcast_serve rc-publish-client; bench rc-publish-client $CF "${PUBLISH[@]}" --via client -w "$PUB_W_CLIENT"; stop_server
  ringcast_serve rc-publish-tcp;  bench rc-publish-tcp $CF "${PUBLISH[@]}" --via tcp -w "$PUB_W_TCP" "${PUB_ARGS[@]}"; stop_server
  ringcast_serve rc-publish-http; bench rc-publish-http $CF "${PUBLISH[@]}" --via http -w "$PUB_W_HTTP" "${API_ARGS[@]}"; stop_server
fi

# ---- peer
peer peer-hold-raw; bench peer-hold-raw $RAW_PEER "${HOLD[@]}" --protocol raw; stop_server
peer peer-echo;     bench peer-echo $RAW_PEER "${ECHO[@]}"; stop_server
peer peer-hold-cf;  bench peer-hold-cf $CF "${HOLD[@]}"; stop_server
peer peer-fanout;   bench peer-fanout $CF "${FANOUT[@]}"; stop_server
peer peer-storm;    bench peer-storm $CF "${STORM[@]}" --drop client --publisher client; stop_server
peer peer-publish-client; bench peer-publish-client $CF "${PUBLISH[@]}" --via client -w "$PUB_W_CLIENT"; stop_server

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
row "storm: re-established all (s)"     storm    .storm.reestablish_s lower
row "storm: resubscribed"               storm    .storm.resubscribed higher
row "storm: recovered"                  storm    .storm.recovered higher
row "storm: lost"                       storm    .fanout.lost lower
row "storm: duplicated"                 storm    .fanout.duplicated lower
row "storm: server CPU/delivery (us)"   storm    .server.cpu_us_per_msg lower
row "publish client: acked/s"           publish-client .publish.acked_per_s higher
row "publish client: ack p99 (us)"      publish-client .ack_latency.p99_us lower
row "publish client: CPU/publish (us)"  publish-client .publish.server_cpu_us_per_publish lower
row "echo: other load (cores)"          echo     .host.other_busy_cores none
row "fanout: other load (cores)"        fanout   .host.other_busy_cores none
row "storm: other load (cores)"         storm    .host.other_busy_cores none
echo "(other load: cores busy with neither server nor bench during the run; > 0.25 disturbs the figures)"
echo "(storm: both servers' subscribers reset by the bench; the peer has no recovery, so it loses what was"
echo " published while they were away)"
echo
echo "ringcast only (the peer has neither a server API nor a TCP publisher port)"
printf '%-34s %14s\n' metric ringcast
only() { printf '%-34s %14s\n' "$1" "$(get "rc-$2" "$3")"; }
only "storm api: re-established all (s)" storm-api .storm.reestablish_s
only "storm api: recovered"              storm-api .storm.recovered
only "storm api: lost"                   storm-api .fanout.lost
only "publish tcp: acked/s"              publish-tcp .publish.acked_per_s
only "publish tcp: ack p99 (us)"         publish-tcp .ack_latency.p99_us
only "publish tcp: CPU/publish (us)"     publish-tcp .publish.server_cpu_us_per_publish
only "publish http: acked/s"             publish-http .publish.acked_per_s
only "publish http: CPU/publish (us)"    publish-http .publish.server_cpu_us_per_publish
echo "JSON: $OUT"
[ "$REPORT" = 1 ] && echo "reports: $OUT/<run>/report.md"
exit 0
