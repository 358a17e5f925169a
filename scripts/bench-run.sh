#!/usr/bin/env bash
# scripts/bench-run.sh -- one benchmark run against a fresh server: the
# server alone on $SERVER_CPU, ringcast-bench on $LOAD_CPU, JSON kept.
#
#   scripts/bench-run.sh [options] SERVER -- BENCH-ARGS...
#
# SERVER:  rc-echo   ringcast echo  --shards 1 --no-pin          (raw WebSocket echo on /)
#          rc-serve  ringcast serve --shards 1 --no-pin --insecure, API and
#                    TCP publisher ports, API key $API_KEY
#          peer      peer-tokio-ws --threads 1                   (/echo, /connection/websocket)
# In BENCH-ARGS these are replaced: @WS@ ws://127.0.0.1:<client port>,
# @API@ http://127.0.0.1:<api port>/api, @TCP@ 127.0.0.1:<publisher port>,
# @KEY@ the API key, @METRICS@ http://127.0.0.1:<api port>/metrics (for
# `--metrics-url @METRICS@`: the server-side latency; rc-serve only). The script adds --server-pid, --cpu $LOAD_CPU, --json,
# --no-progress.
# BENCH-ARGS may instead be a wrk command line (`wrk -t1 -c16 -d10s -s
# bench/wrk/publish.lua @API@/publish`): it runs on $LOAD_CPU with API_KEY
# in its environment, and NAME.json gets the WRKJSON line its script prints
# plus the server's CPU and the host's other load over the run.
#
# Options:
#   --out DIR         where NAME.json, NAME.cmd and NAME.server.log go
#                     (default $TARGET/bench-run)
#   --name NAME       file name stem (default: SERVER-<scenario>)
#   --max-other X     a run during which other processes kept more than X
#                     cores busy (host.other_busy_cores) is repeated (0.1)
#   --retries N       repeats for that at most (default 3); the last run is
#                     kept either way, and every attempt is listed in NAME.cmd
#   --quiet-wait S    before each attempt, wait up to S seconds for the host
#                     to be idle (other load < X over 5 s; default 120)
#   --server-arg ARG  one more argument for the server (repeatable)
# Environment: BIN (directory holding ringcast, peer-tokio-ws and
# ringcast-bench; default $CARGO_TARGET_DIR/release or target/release,
# nothing is built), SERVER_CPU (0), LOAD_CPU (1), PORT (first port tried,
# 18900), API_KEY (bench-key).
#
# Exit: 0 the run is clean (other load <= X), 3 it stayed disturbed after
# the retries (JSON kept), 4 the server did not start, else the bench's
# exit code. All traffic stays on 127.0.0.1; the server is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release}
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${PORT:=18900}" "${API_KEY:=bench-key}"

OUT=$TARGET/bench-run NAME="" MAX_OTHER=0.1 RETRIES=3 QUIET_WAIT=120
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift ;;
    --name) NAME=$2; shift ;;
    --max-other) MAX_OTHER=$2; shift ;;
    --retries) RETRIES=$2; shift ;;
    --quiet-wait) QUIET_WAIT=$2; shift ;;
    --server-arg) SERVER_ARGS+=("$2"); shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) if [ -z "${KIND:-}" ]; then KIND=$1; else echo "unexpected $1 (missing --?)" >&2; exit 2; fi ;;
  esac
  shift
done
[ -n "${KIND:-}" ] || { echo "usage: $0 [options] rc-echo|rc-serve|peer -- BENCH-ARGS" >&2; exit 2; }
[ $# -gt 0 ] || { echo "no bench arguments" >&2; exit 2; }
[ -n "$NAME" ] || NAME=$KIND-$1
for tool in jq taskset awk; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
for b in ringcast peer-tokio-ws ringcast-bench; do
  [ -x "$BIN/$b" ] || { echo "$BIN/$b missing (build it, or set BIN)" >&2; exit 2; }
done
mkdir -p "$OUT"

# host_busy: "busy total" jiffies from /proc/stat (all cores).
host_busy() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat; }
# wait_quiet: until the host (no server running) stays under MAX_OTHER busy
# cores for 5 s, at most QUIET_WAIT seconds. Prints the last busy figure.
wait_quiet() {
  local waited=0 b0 t0 b1 t1 cores busy
  cores=$(nproc)
  while :; do
    read -r b0 t0 < <(host_busy); sleep 5; read -r b1 t1 < <(host_busy)
    busy=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v c="$cores" 'BEGIN{printf "%.3f", t ? b / t * c : 0}')
    if awk -v x="$busy" -v m="$MAX_OTHER" 'BEGIN{exit !(x <= m)}' || [ "$waited" -ge "$QUIET_WAIT" ]; then
      echo "$busy"; return
    fi
    sleep 5; waited=$((waited + 10))
  done
}

# port_busy, free_port N.
. scripts/lib/bench.sh

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
TIMES_FILE=$(mktemp)
trap 'stop_server; rm -f "$TIMES_FILE"' EXIT

# start_server: a fresh server on fresh ports; sets P_WS P_API P_TCP SERVER_CMD.
start_server() {
  local base
  base=$(free_port 3)
  P_WS=$base P_API=$((base + 1)) P_TCP=$((base + 2))
  PORT=$((base + 3))   # the next server gets other ports (a killed one's may linger)
  case $KIND in
    rc-echo) SERVER_CMD=("$BIN/ringcast" echo --port "$P_WS" --address 127.0.0.1 --shards 1 --no-pin) ;;
    rc-serve) SERVER_CMD=("$BIN/ringcast" serve --port "$P_WS" --address 127.0.0.1 --shards 1 --no-pin
                          --insecure --api-port "$P_API" --publisher-port "$P_TCP" --api-key "$API_KEY") ;;
    peer) SERVER_CMD=("$BIN/peer-tokio-ws" --port "$P_WS" --threads 1) ;;
    *) echo "unknown server $KIND" >&2; exit 2 ;;
  esac
  SERVER_CMD+=("${SERVER_ARGS[@]}")
  taskset -c "$SERVER_CPU" "${SERVER_CMD[@]}" >"$OUT/$NAME.server.log" 2>&1 &
  SERVER_PID=$!
  local want=("$P_WS")
  [ "$KIND" = rc-serve ] && want+=("$P_API" "$P_TCP")
  for _ in $(seq 100); do
    local up=1 p
    for p in "${want[@]}"; do port_busy "$p" || { up=0; break; }; done
    [ $up = 1 ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not come up: ${SERVER_CMD[*]}" >&2; cat "$OUT/$NAME.server.log" >&2
  exit 4
}

# proc_cpu PID: utime + stime in seconds.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
# children_cpu VAR: user + system seconds of the waited-for children of this
# shell into VAR (`times` has to run in this shell, not in a $(…) subshell).
children_cpu() {
  times >"$TIMES_FILE"
  printf -v "$1" '%s' "$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
    print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$TIMES_FILE")"
}

# run_wrk: BENCH_CMD (wrk) with the server and host sampled around it;
# prints the JSON report, wrk's own output goes to stderr.
run_wrk() {
  local s0 s1 h0 t0 h1 t1 c0 c1 w0 w1 out
  s0=$(proc_cpu "$SERVER_PID"); read -r h0 t0 < <(host_busy); children_cpu c0; w0=$(date +%s.%N)
  out=$(API_KEY=$API_KEY "${BENCH_CMD[@]}") || return $?
  w1=$(date +%s.%N); children_cpu c1; read -r h1 t1 < <(host_busy); s1=$(proc_cpu "$SERVER_PID")
  echo "$out" >&2
  local hz cores; hz=$(getconf CLK_TCK); cores=$(nproc)
  echo "$out" | sed -n 's/^WRKJSON //p' | jq --argjson s0 "$s0" --argjson s1 "$s1" --argjson c0 "$c0" \
    --argjson c1 "$c1" --argjson w0 "$w0" --argjson w1 "$w1" --argjson hb $(((h1 - h0))) --argjson hz "$hz" \
    --argjson cores "$cores" --argjson pid "$SERVER_PID" '
    . as $w | ($w1 - $w0) as $el | ($s1 - $s0) as $scpu | ($c1 - $c0) as $lcpu |
    {scenario: "wrk", wrk: $w,
     requests_per_s: ($w.requests / ($w.duration_us / 1e6)),
     server: {pid: $pid, cpu_s: $scpu, cpu_util: ($scpu / $el),
              cpu_us_per_msg: (if $w.requests > 0 then $scpu * 1e6 / $w.requests else null end)},
     bench: {cpu_s: $lcpu, cpu_util: ($lcpu / $el)},
     host: {cores: $cores, busy_cores: ($hb / $hz / $el),
            other_busy_cores: ([($hb / $hz - $scpu - $lcpu) / $el, 0] | max)}}'
}

attempt=0 rc=0
: >"$OUT/$NAME.cmd"
while :; do
  attempt=$((attempt + 1))
  idle=$(wait_quiet)
  start_server
  args=()
  for a in "$@"; do
    a=${a//@WS@/ws://127.0.0.1:$P_WS}
    a=${a//@API@/http://127.0.0.1:$P_API/api}
    a=${a//@TCP@/127.0.0.1:$P_TCP}
    a=${a//@KEY@/$API_KEY}
    a=${a//@METRICS@/http://127.0.0.1:$P_API/metrics}
    args+=("$a")
  done
  echo "--- $NAME (attempt $attempt; host idle check: $idle other busy cores)" >&2
  rc=0
  if [ "${args[0]}" = wrk ]; then
    BENCH_CMD=(taskset -c "$LOAD_CPU" "${args[@]}")
    run_wrk >"$OUT/$NAME.json" 2>"$OUT/$NAME.table" || rc=$?
  else
    BENCH_CMD=(taskset -c "$LOAD_CPU" "$BIN/ringcast-bench" "${args[@]}"
               --server-pid "$SERVER_PID" --cpu "$LOAD_CPU" --json --no-progress)
    "${BENCH_CMD[@]}" >"$OUT/$NAME.json" 2>"$OUT/$NAME.table" || rc=$?
  fi
  stop_server
  cat "$OUT/$NAME.table" >&2
  other=$(jq -r '.host.other_busy_cores // "nan"' "$OUT/$NAME.json" 2>/dev/null || echo nan)
  {
    echo "# attempt $attempt: bench exit $rc, host.other_busy_cores $other (idle check before: $idle)"
    echo "taskset -c $SERVER_CPU ${SERVER_CMD[*]//$BIN\//}"
    if [ "${args[0]}" = wrk ]; then echo "API_KEY=$API_KEY ${BENCH_CMD[*]}"; else echo "${BENCH_CMD[*]//$BIN\//}"; fi
  } >>"$OUT/$NAME.cmd"
  [ "$rc" = 0 ] || exit "$rc"
  if awk -v x="$other" -v m="$MAX_OTHER" 'BEGIN{exit !(x <= m)}'; then exit 0; fi
  if [ "$attempt" -gt "$RETRIES" ]; then
    echo "warning: $NAME still disturbed ($other other busy cores) after $attempt attempts" >&2
    exit 3
  fi
  echo "($NAME: $other other busy cores > $MAX_OTHER; running it again)" >&2
  sleep 20
done
