#!/usr/bin/env bash
# scripts/bench-ws2api.sh -- ringcast against an HTTP application backend:
# the ws2api mode and the connect proxy, with bench/peers/http-backend as
# the (fast) backend. Three measurements, each RUNS times on fresh processes:
#
#   hold     ringcast ws2api holding HOLD_N idle connections, one id each
#            (hold --protocol raw --url ws://…/c{i}): server RSS per
#            connection; also HOLD_SMALL connections (0: not), so that the
#            difference gives the cost of one more connection without the
#            fixed part (the pool of connections to the backend)
#   echo     message → POST → the backend's answer (its body: the message)
#            → the client, ECHO_C connections × ECHO_W in flight × ECHO_S B
#            text; also a light variant at ECHO_C × 1 in flight (latency
#            without queueing behind --max-in-flight)
#   connect  ringcast serve --insecure, without and with a connect proxy
#            ([client] connect_proxy → the backend's POST /connect), paired
#            (the order alternates from run to run): hold in the Centrifugo
#            protocol (connect only, --channels 0), CONNECT_N connections:
#            setup time and connects/s
#
#   scripts/bench-ws2api.sh [--out DIR] [--runs N] [--only hold,echo,connect]
#                           [--no-build] [--quiet-wait S] [--retries N]
#
# Before each run the host has to be quiet (other load under MAX_OTHER
# cores over 3 s; waited for at most --quiet-wait, 60 s); a run during
# which other processes kept more than MAX_OTHER cores busy (the host's
# busy time minus ringcast's, the backend's and the bench's, over the
# bench command) is repeated, at most --retries (3) attempts in all.
#
# Layout (2 cores): ringcast (shard and its "backends" thread; --shards 1
# --no-pin) on SERVER_CPU (0), the backend peer on BACKEND_CPU (1) with
# BACKEND_THREADS (1) threads, ringcast-bench (one worker) on LOAD_CPU (1).
# Per run in OUT: NAME.cmd (commands, host load before, git state),
# NAME.json (the bench's JSON), NAME.table, NAME.server.log,
# NAME.backend.log (address; request counts at stop), NAME.threads (CPU
# seconds per ringcast thread, of the backend and of the bench over the
# bench command; the foreign load),
# NAME.counters (ringcast's ws2api counters or proxy metrics after the run);
# build.txt (git state, binaries' sha256); summary.md tabulates every run
# and the medians.
#
# Environment: BIN (directory with ringcast, ringcast-bench and
# peer-http-backend; default: build them, release, into
# $CARGO_TARGET_DIR or target/), PORT (first port tried, 19100),
# SERVER_CPU, BACKEND_CPU, LOAD_CPU, BACKEND_THREADS, MAX_OTHER (0.15),
# HOLD_N (15000),
# HOLD_D (5), HOLD_SETTLE (1: seconds between the last connect and the RSS
# sample; 6 gives the idle figure, after the backend pool's idle timeout
# and the heap trim that follows it),
# HOLD_SMALL (5000), ECHO_C (100), ECHO_W (16), ECHO_S (100), ECHO_D (10),
# CONNECT_N (15000), CONNECT_D (2), CONNS_PER_ADDR (5000), WS2API_ARGS
# (more arguments for `ringcast ws2api`, e.g. "--max-in-flight 16").
# Every bench command is bounded by `timeout`; all processes are stopped
# at exit. All traffic stays on 127.0.0.1.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
: "${PORT:=19100}" "${SERVER_CPU:=0}" "${BACKEND_CPU:=1}" "${LOAD_CPU:=1}" "${BACKEND_THREADS:=1}"
: "${MAX_OTHER:=0.15}" "${HOLD_N:=15000}" "${HOLD_D:=5}" "${ECHO_C:=100}" "${ECHO_W:=16}"
: "${ECHO_S:=100}" "${ECHO_D:=10}" "${CONNECT_N:=15000}" "${CONNECT_D:=2}" "${CONNS_PER_ADDR:=5000}"
: "${HOLD_SMALL:=5000}" "${WS2API_ARGS:=}" "${HOLD_SETTLE:=1}"

OUT=$TARGET/bench-ws2api RUNS=3 ONLY=hold,echo,connect BUILD=1 QUIET_WAIT=60 RETRIES=3
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --no-build) BUILD=0 ;;
    --quiet-wait) QUIET_WAIT=$2; shift ;;
    --retries) RETRIES=$2; shift ;;
    -h|--help) sed -n '2,56p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in jq taskset awk curl timeout; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
if [ -z "${BIN:-}" ]; then
  BIN=$TARGET/release
  if [ $BUILD = 1 ]; then
    cargo build --release -p ringcast -p ringcast-bench -p ringcast-peer-http-backend
  fi
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# The binaries are copied first: a build elsewhere in the same target
# directory during the runs cannot swap them.
RUN_BIN=$(mktemp -d)
trap 'rm -rf "$RUN_BIN"' EXIT
for b in ringcast ringcast-bench peer-http-backend; do
  [ -x "$BIN/$b" ] || { echo "$BIN/$b missing (build it, or set BIN)" >&2; exit 2; }
  cp "$BIN/$b" "$RUN_BIN/"
done
BIN=$RUN_BIN
HZ=$(getconf CLK_TCK)
GIT_STATE="$(git rev-parse HEAD 2>/dev/null || echo '?') ($(git status --short 2>/dev/null | wc -l) paths modified in the working tree)"
{
  echo "git $GIT_STATE"
  git status --short 2>/dev/null || true
  echo
  (cd "$BIN" && sha256sum ringcast ringcast-bench peer-http-backend)
  echo
  echo "$(uname -sr); $(nproc) cores; $(rustc --version 2>/dev/null || true)"
} >"$OUT/build.txt"

# ---- host and process sampling --------------------------------------------

# host_busy, wait_quiet (MAX_OTHER, QUIET_WAIT), port_busy, free_port.
. scripts/lib/bench.sh
# proc_cpu PID: utime + stime, seconds.
proc_cpu() { awk -v hz="$HZ" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# thread_cpu PID: "tid name cpu_s" per thread.
thread_cpu() {
  local t
  for t in /proc/"$1"/task/*; do
    awk -v hz="$HZ" -v tid="${t##*/}" '{ s = $0; match(s, /\(.*\)/); n = substr(s, RSTART + 1, RLENGTH - 2);
      gsub(/ /, "_", n); sub(/.*\) /, "", s); split(s, f, " "); print tid, n, (f[12] + f[13]) / hz }' "$t/stat" 2>/dev/null || true
  done
}
# children_cpu VAR: user + system seconds of the waited-for children of this
# shell (`times` has to run in this shell, not in a $(…) subshell).
TIMES_FILE=$(mktemp)
children_cpu() {
  times >"$TIMES_FILE"
  printf -v "$1" '%s' "$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
    print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$TIMES_FILE")"
}

# ---- processes -------------------------------------------------------------

SERVER_PID="" BACKEND_PID=""
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_all() { stop_pid "$SERVER_PID"; SERVER_PID=""; stop_pid "$BACKEND_PID"; BACKEND_PID=""; }
trap 'stop_all; rm -rf "$RUN_BIN" "$TIMES_FILE"' EXIT
for sig in INT TERM HUP; do
  # shellcheck disable=SC2064 # the signal's name now
  trap "echo 'bench-ws2api: stopped by SIG$sig' >&2; exit 130" $sig
done

# start_backend NAME: the peer on a free port; sets BACKEND_ADDR.
start_backend() {
  local log=$OUT/$1.backend.log
  # Removed first: the new process truncates it only once it runs, and
  # until then it would still name the last attempt's backend.
  rm -f "$log"
  taskset -c "$BACKEND_CPU" "$BIN/peer-http-backend" --port 0 --threads "$BACKEND_THREADS" >"$log" 2>&1 &
  BACKEND_PID=$!
  for _ in $(seq 50); do
    BACKEND_ADDR=$(head -1 "$log" 2>/dev/null || true)
    [[ $BACKEND_ADDR == *:* ]] && port_busy "${BACKEND_ADDR##*:}" && return 0
    sleep 0.1
  done
  echo "the backend did not start" >&2; cat "$log" >&2; exit 4
}

# start_server NAME ARGS...: ringcast ARGS on SERVER_CPU; waits for the
# ports in WANT_PORTS.
start_server() {
  local name=$1; shift
  SERVER_CMD=("$BIN/ringcast" "$@")
  taskset -c "$SERVER_CPU" "${SERVER_CMD[@]}" >"$OUT/$name.server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    local up=1 p
    for p in "${WANT_PORTS[@]}"; do port_busy "$p" || { up=0; break; }; done
    [ $up = 1 ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not come up: ${SERVER_CMD[*]}" >&2; cat "$OUT/$name.server.log" >&2; exit 4
}

# drain_ws2api PORT: until every backend request ringcast started has ended
# (the DELETEs of the closes), at most 30 s; prints the counters.
drain_ws2api() {
  local page
  for _ in $(seq 300); do
    page=$(curl -s --max-time 2 "http://127.0.0.1:$1/" || true)
    if awk '/^requests_started/{s=$2} /^requests_failed/{f=$2} /^requests_succeeded/{o=$2}
            END{exit !(s != "" && s == f + o)}' <<<"$page"; then
      break
    fi
    sleep 0.1
  done
  echo "$page"
}

# bench NAME ARGS...: ringcast-bench ARGS on LOAD_CPU (bounded), JSON kept;
# the ringcast threads' and the backend's CPU over it to NAME.threads.
bench() {
  local name=$1; shift
  local cmd=("$BIN/ringcast-bench" "$@" --server-pid "$SERVER_PID" --cpu "$LOAD_CPU" --json --no-progress)
  {
    echo "# $(date -u +%FT%TZ)  git $GIT_STATE"
    echo "# host other load before (cores busy over 3 s): $QUIET"
    echo "# layout: server cpu $SERVER_CPU, backend cpu $BACKEND_CPU ($BACKEND_THREADS thread(s)), load cpu $LOAD_CPU"
    echo "taskset -c $BACKEND_CPU $BIN/peer-http-backend --port 0 --threads $BACKEND_THREADS   # -> $BACKEND_ADDR"
    echo "taskset -c $SERVER_CPU ${SERVER_CMD[*]}"
    echo "timeout 300 ${cmd[*]}"
  } >"$OUT/$name.cmd"
  local before t0 t1 b0 b1 s0 s1 h0 h1 c0 c1 x rc=0
  before=$(thread_cpu "$SERVER_PID")
  s0=$(proc_cpu "$SERVER_PID"); b0=$(proc_cpu "$BACKEND_PID")
  read -r h0 x < <(host_busy); children_cpu c0
  t0=$(date +%s.%N)
  timeout 300 "${cmd[@]}" >"$OUT/$name.json" 2>"$OUT/$name.table" || rc=$?
  t1=$(date +%s.%N)
  children_cpu c1; read -r h1 x < <(host_busy)
  s1=$(proc_cpu "$SERVER_PID"); b1=$(proc_cpu "$BACKEND_PID")
  # Cores busy with anything but ringcast, the backend and the bench.
  FOREIGN=$(awk -v h=$((h1 - h0)) -v hz="$HZ" -v s="$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b - a}')" \
    -v b="$(awk -v a="$b0" -v b="$b1" 'BEGIN{print b - a}')" -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b - a}')" \
    -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" 'BEGIN{ f = (h / hz - s - b - c) / w; printf "%.3f", f < 0 ? 0 : f }')
  {
    echo "# CPU seconds over the bench command (setup, window, close: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}') s wall)"
    join <(sort <<<"$before") <(thread_cpu "$SERVER_PID" | sort) |
      awk '{ printf "ringcast thread %-12s %.2f\n", $2, $5 - $3 }'
    awk -v a="$b0" -v b="$b1" 'BEGIN{ printf "backend process             %.2f\n", b - a }'
    awk -v a="$c0" -v b="$c1" 'BEGIN{ printf "bench process               %.2f\n", b - a }'
    echo "foreign load (cores)        $FOREIGN"
  } >"$OUT/$name.threads"
  [ $rc = 0 ] || echo "warning: $name: ringcast-bench exited $rc" >&2
  return 0
}

# attempts NAME FUNCTION ARGS...: FUNCTION ARGS (one run on fresh
# processes) until other load stayed under MAX_OTHER cores during it, at
# most RETRIES times; the last attempt's files stay, NAME.cmd lists all.
attempts() {
  local name=$1; shift
  local log="" a
  for a in $(seq "$RETRIES"); do
    "$@"
    log+="# attempt $a: other load before $QUIET, foreign load during the bench $FOREIGN cores"$'\n'
    awk -v x="$FOREIGN" -v m="$MAX_OTHER" 'BEGIN{exit !(x <= m)}' && break
    [ "$a" -lt "$RETRIES" ] && echo "   $name: foreign load $FOREIGN cores, again" >&2
  done
  printf '%s' "$log" >>"$OUT/$name.cmd"
}

has() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---- the measurements ------------------------------------------------------

ws2api_run() { attempts "$1" ws2api_once "$@"; }
ws2api_once() {   # ws2api_once NAME BENCH-ARGS (with @WS@)
  local name=$1; shift
  QUIET=$(wait_quiet)
  start_backend "$name"
  local p; p=$(free_port 1); PORT=$((p + 1))
  WANT_PORTS=("$p")
  # shellcheck disable=SC2086 # WS2API_ARGS: words on purpose
  start_server "$name" ws2api --backend "http://$BACKEND_ADDR/ws/" --port "$p" \
    --address 127.0.0.1 --shards 1 --no-pin $WS2API_ARGS
  bench "$name" "${@//@WS@/ws://127.0.0.1:$p}"
  drain_ws2api "$p" >"$OUT/$name.counters"
  stop_all
  tail -n +2 "$OUT/$name.backend.log" >>"$OUT/$name.counters"
}

connect_run() { attempts "$1" connect_once "$@"; }
connect_once() {  # connect_once NAME plain|proxy
  local name=$1 mode=$2
  QUIET=$(wait_quiet)
  start_backend "$name"
  local p; p=$(free_port 3); PORT=$((p + 3))
  WANT_PORTS=("$p" "$((p + 1))" "$((p + 2))")
  local extra=()
  if [ "$mode" = proxy ]; then
    printf '[client]\nconnect_proxy = "auth"\n\n[proxy.auth]\nendpoint = "http://%s/connect"\n' \
      "$BACKEND_ADDR" >"$OUT/$name.toml"
    extra=(--config "$OUT/$name.toml")
  fi
  start_server "$name" serve --port "$p" --api-port "$((p + 1))" --publisher-port "$((p + 2))" \
    --address 127.0.0.1 --shards 1 --no-pin --insecure --api-key bench-key "${extra[@]}"
  bench "$name" hold --url "ws://127.0.0.1:$p/connection/websocket" --channels 0 \
    -n "$CONNECT_N" -d "$CONNECT_D" --conns-per-addr "$CONNS_PER_ADDR"
  curl -s --max-time 5 -H 'Authorization: apikey bench-key' "http://127.0.0.1:$((p + 1))/metrics" |
    grep -E '^ringcast_proxy_(requests_total|request_seconds_(sum|count))' >"$OUT/$name.counters" || true
  stop_all
  tail -n +2 "$OUT/$name.backend.log" >>"$OUT/$name.counters"
}

for r in $(seq "$RUNS"); do
  if has hold; then
    echo "== hold $r" >&2
    ws2api_run "hold-$r" hold --protocol raw --url '@WS@/c{i}' -n "$HOLD_N" -d "$HOLD_D" \
      --conns-per-addr "$CONNS_PER_ADDR" --settle "$HOLD_SETTLE"
    if [ "$HOLD_SMALL" -gt 0 ]; then
      echo "== hold-small $r" >&2
      ws2api_run "hold-small-$r" hold --protocol raw --url '@WS@/c{i}' -n "$HOLD_SMALL" -d "$HOLD_D" \
        --conns-per-addr "$CONNS_PER_ADDR" --settle "$HOLD_SETTLE"
    fi
  fi
  if has echo; then
    echo "== echo $r" >&2
    ws2api_run "echo-$r" echo --url '@WS@/e{i}' --text -c "$ECHO_C" -w "$ECHO_W" -s "$ECHO_S" -d "$ECHO_D"
    echo "== echo-w1 $r" >&2
    ws2api_run "echo-w1-$r" echo --url '@WS@/e{i}' --text -c "$ECHO_C" -w 1 -s "$ECHO_S" -d "$ECHO_D"
  fi
  if has connect; then
    echo "== connect $r" >&2
    if [ $((r % 2)) = 1 ]; then order=(plain proxy); else order=(proxy plain); fi
    for m in "${order[@]}"; do connect_run "connect-$m-$r" "$m"; done
  fi
done

# ---- summary ---------------------------------------------------------------

# thread NAME WHICH: CPU seconds of a ringcast thread (or "backend").
thread() {
  if [ "$2" = backend ]; then awk '/^backend process/{print $3}' "$OUT/$1.threads"
  else awk -v w="$2" '$3 == w {print $4}' "$OUT/$1.threads"; fi
}
foreign() { awk '/^foreign load/{print $4}' "$OUT/$1.threads"; }
median() { sort -g | awk '{v[NR] = $1} END{ if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
{
  echo "# ws2api and connect-proxy runs ($(date -u +%F), git $GIT_STATE)"
  echo
  echo "Layout: ringcast on cpu $SERVER_CPU, backend peer on cpu $BACKEND_CPU ($BACKEND_THREADS thread(s)), bench on cpu $LOAD_CPU."
  if has hold; then
    echo
    echo "## hold: ws2api, $HOLD_N idle connections"
    echo
    echo "| run | established | RSS before | RSS established | RSS / connection | setup conn/s | foreign load (cores) |"
    echo "|---|---|---|---|---|---|---|"
    for f in "$OUT"/hold-[0-9]*.json; do
        n=$(basename "$f" .json)
        jq -r --arg n "$n" --arg fo "$(foreign "$n")" '"| \($n) | \(.connections.established) | \(.server.rss_before_bytes / 1048576 * 10 | round / 10) MiB | \(.server.rss_established_bytes / 1048576 * 10 | round / 10) MiB | \(.server.rss_per_conn_bytes | round) B | \(.connections.per_s | round) | \($fo) |"' "$f"
    done
    echo
    echo "median RSS / connection: $(for f in "$OUT"/hold-[0-9]*.json; do jq '.server.rss_per_conn_bytes' "$f"; done | median | xargs printf '%.0f') B"
    if [ "$HOLD_SMALL" -gt 0 ]; then
      echo
      echo "## hold: ws2api, $HOLD_SMALL idle connections"
      echo
      echo "| run | established | RSS before | RSS established | RSS / connection | setup conn/s | foreign load (cores) |"
      echo "|---|---|---|---|---|---|---|"
      for f in "$OUT"/hold-small-[0-9]*.json; do
        n=$(basename "$f" .json)
        jq -r --arg n "$n" --arg fo "$(foreign "$n")" '"| \($n) | \(.connections.established) | \(.server.rss_before_bytes / 1048576 * 10 | round / 10) MiB | \(.server.rss_established_bytes / 1048576 * 10 | round / 10) MiB | \(.server.rss_per_conn_bytes | round) B | \(.connections.per_s | round) | \($fo) |"' "$f"
      done
      big=$(for f in "$OUT"/hold-[0-9]*.json; do jq '.server.rss_established_bytes - .server.rss_before_bytes' "$f"; done | median)
      small=$(for f in "$OUT"/hold-small-[0-9]*.json; do jq '.server.rss_established_bytes - .server.rss_before_bytes' "$f"; done | median)
      echo
      echo "one more connection (median growth at $HOLD_N − at $HOLD_SMALL, over the difference): $(awk -v a="$big" -v b="$small" -v n="$HOLD_N" -v m="$HOLD_SMALL" 'BEGIN{printf "%.0f", (a - b) / (n - m)}') B; the fixed rest: $(awk -v a="$big" -v b="$small" -v n="$HOLD_N" -v m="$HOLD_SMALL" 'BEGIN{printf "%.1f", (b - (a - b) / (n - m) * m) / 1048576}') MiB"
    fi
  fi
  if has echo; then
    for v in echo echo-w1; do
      echo
      w=$ECHO_W; [ $v = echo-w1 ] && w=1
      echo "## $v: ws2api round trips, $ECHO_C connections x $w in flight x $ECHO_S B text, ${ECHO_D} s"
      echo
      echo "| run | round trips/s | p50 | p99 | mismatched | server CPU (cores) | µs / round trip | shard-0 s | backends s | backend peer s | foreign load (cores) |"
      echo "|---|---|---|---|---|---|---|---|---|---|---|"
      for f in "$OUT"/$v-[0-9]*.json; do
        n=$(basename "$f" .json)
        jq -r --arg n "$n" --arg fo "$(foreign "$n")" --arg sh "$(thread "$n" shard-0)" --arg be "$(thread "$n" backends)" --arg pe "$(thread "$n" backend)" \
          '"| \($n) | \(.echo.msgs_per_s | round) | \(.latency.p50_us / 1000 * 100 | round / 100) ms | \(.latency.p99_us / 1000 * 100 | round / 100) ms | \(.echo.mismatched) | \(.server.cpu_util * 100 | round / 100) | \(.server.cpu_us_per_msg * 10 | round / 10) | \($sh) | \($be) | \($pe) | \($fo) |"' "$f"
      done
      echo
      echo "median round trips/s: $(for f in "$OUT"/$v-[0-9]*.json; do jq '.echo.msgs_per_s' "$f"; done | median | xargs printf '%.0f'); median p99: $(for f in "$OUT"/$v-[0-9]*.json; do jq '.latency.p99_us / 1000' "$f"; done | median | xargs printf '%.2f') ms"
    done
  fi
  if has connect; then
    echo
    echo "## connect: serve --insecure, hold --channels 0, $CONNECT_N connections, without and with a connect proxy"
    echo
    echo "| run | mode | established | errors | setup s | connects/s | connect p50 | connect p99 | RSS / connection | foreign load (cores) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for r in $(seq "$RUNS"); do
      for m in plain proxy; do
        f=$OUT/connect-$m-$r.json
        [ -f "$f" ] || continue
        jq -r --arg n "connect-$m-$r" --arg m "$m" --arg fo "$(foreign "connect-$m-$r")" '"| \($n) | \($m) | \(.connections.established) | \(.connections.errors) | \(.connections.setup_s * 100 | round / 100) | \(.connections.per_s | round) | \(.connections.connect_latency.p50_us / 1000 * 10 | round / 10) ms | \(.connections.connect_latency.p99_us / 1000 * 10 | round / 10) ms | \(.server.rss_per_conn_bytes | round) B | \($fo) |"' "$f"
      done
    done
    for m in plain proxy; do
      echo
      echo "median connects/s, $m: $(for f in "$OUT"/connect-$m-[0-9]*.json; do jq '.connections.per_s' "$f"; done | median | xargs printf '%.0f')"
    done
  fi
} >"$OUT/summary.md"
cat "$OUT/summary.md"
