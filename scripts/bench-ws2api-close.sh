#!/usr/bin/env bash
# scripts/bench-ws2api-close.sh -- ringcast ws2api's memory through a mass
# close: N idle clients (ringcast-bench hold, one id each) connect, then all
# go at once, and their N DELETEs queue on the backends thread behind
# --max-in-flight backend connections. CLOSE=kill (the default): once all N
# are connected and admitted, the bench is SIGKILLed, so the kernel closes
# its N sockets at once; CLOSE=bench: the bench holds HOLD_D s and closes
# them itself (close frames, as fast as it goes). Server RSS is sampled
# (about every 70 ms) from before the connects until AFTER seconds after
# the close, on fresh processes, RUNS times.
#
#   scripts/bench-ws2api-close.sh [--out DIR] [--runs N]
#
# Per run in OUT: NAME.cmd (commands, git state), NAME.json (the bench's
# JSON, CLOSE=bench only), NAME.rss (ms since the bench started, RSS
# KiB, backend requests pending: ringcast_ws2api_backend_pending),
# NAME.counters (ringcast's counters once every DELETE was answered,
# then the backend's request counts), NAME.server.log, NAME.backend.log;
# summary.txt: one line per run, RSS in MiB:
#   established (N connected: before the kill, or the bench's
#   rss_established_bytes), the peak over the run, at +1 s, +5 s and
#   +AFTER s after the bench's exit, DELETEs the backend received, how
#   long after the bench's exit the last one was answered, and the most
#   requests pending (queued or in flight) in any sample.
#
# Environment: BIN (directory with ringcast, ringcast-bench and
# peer-http-backend; default target/release, not built here), N (15000),
# CLOSE (kill), HOLD_D (2), AFTER (10), CONNS_PER_ADDR (5000: the clients come from
# 127.0.0.2, .3, ...), PORT (first port tried, 19300), SERVER_CPU (0),
# LOAD_CPU (1), WS2API_ARGS (more arguments for `ringcast ws2api`). Every
# command is bounded (by `timeout`, or the bench by its own -d 120 when it
# is to be killed); all processes are stopped at exit.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
: "${BIN:=${CARGO_TARGET_DIR:-$PWD/target}/release}" "${N:=15000}" "${HOLD_D:=2}" "${AFTER:=10}"
: "${CLOSE:=kill}" "${CONNS_PER_ADDR:=5000}" "${PORT:=19300}" "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${WS2API_ARGS:=}"
OUT=target/bench-ws2api-close RUNS=3
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for b in ringcast ringcast-bench peer-http-backend; do
  [ -x "$BIN/$b" ] || { echo "$BIN/$b missing (build it, or set BIN)" >&2; exit 2; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
GIT_STATE="$(git rev-parse HEAD 2>/dev/null || echo '?') ($(git status --short 2>/dev/null | wc -l) paths modified)"
{
  echo "git $GIT_STATE"
  (cd "$BIN" && sha256sum ringcast ringcast-bench peer-http-backend)
  echo "$(uname -sr); $(nproc) cores"
} >"$OUT/build.txt"

SERVER_PID="" BACKEND_PID="" SAMPLER_PID="" BENCH_PID=""
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_all() {
  [ -n "$BENCH_PID" ] && kill -9 "$BENCH_PID" 2>/dev/null; BENCH_PID=""
  stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
  stop_pid "$SERVER_PID"; SERVER_PID=""
  stop_pid "$BACKEND_PID"; BACKEND_PID=""
}
trap stop_all EXIT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

once() {
  local name=$1
  local blog=$OUT/$name.backend.log slog=$OUT/$name.server.log
  rm -f "$blog"
  taskset -c "$LOAD_CPU" "$BIN/peer-http-backend" --port 0 --threads 1 >"$blog" 2>&1 &
  BACKEND_PID=$!
  local addr=""
  for _ in $(seq 50); do
    addr=$(head -1 "$blog" 2>/dev/null || true)
    [[ $addr == *:* ]] && port_busy "${addr##*:}" && break
    sleep 0.1
  done
  local p=$PORT
  while port_busy "$p"; do p=$((p + 1)); done
  # shellcheck disable=SC2206 # WS2API_ARGS: words on purpose
  local server=("$BIN/ringcast" ws2api --backend "http://$addr/ws/" --port "$p" --address 127.0.0.1
    --shards 1 --no-pin $WS2API_ARGS)
  taskset -c "$SERVER_CPU" "${server[@]}" >"$slog" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do port_busy "$p" && break; sleep 0.1; done
  local d=$HOLD_D
  [ "$CLOSE" = kill ] && d=120
  local cmd=("$BIN/ringcast-bench" hold --protocol raw --url "ws://127.0.0.1:$p/c{i}" -n "$N" -d "$d"
    --conns-per-addr "$CONNS_PER_ADDR" --server-pid "$SERVER_PID" --cpu "$LOAD_CPU" --json --no-progress)
  {
    echo "# $(date -u +%FT%TZ)  git $GIT_STATE"
    echo "taskset -c $LOAD_CPU $BIN/peer-http-backend --port 0 --threads 1   # -> $addr"
    echo "taskset -c $SERVER_CPU ${server[*]}"
    if [ "$CLOSE" = kill ]; then
      echo "${cmd[*]}   # SIGKILLed once all $N are connected and admitted"
    else
      echo "timeout 120 ${cmd[*]}"
    fi
    echo "# RSS (and pending) sampled until $AFTER s after the close (NAME.rss)"
  } >"$OUT/$name.cmd"
  local t0; t0=$(now_ms)
  (
    while kill -0 "$SERVER_PID" 2>/dev/null; do
      q=$(curl -s --max-time 1 "http://127.0.0.1:$p/metrics" |
        awk '/^ringcast_ws2api_backend_pending[{ ]/{print $2}')
      echo "$(($(now_ms) - t0)) $(rss_kib "$SERVER_PID") ${q:-?}"
      sleep 0.05
    done
  ) >"$OUT/$name.rss" &
  SAMPLER_PID=$!
  local est=""
  if [ "$CLOSE" = kill ]; then
    # Once all N are connected and admitted, the bench is killed: the
    # kernel closes its N sockets at once.
    "${cmd[@]}" >"$OUT/$name.json" 2>"$OUT/$name.table" &
    BENCH_PID=$!
    local page=""
    for _ in $(seq 1200); do
      page=$(curl -s --max-time 2 "http://127.0.0.1:$p/" || true)
      awk -v n="$N" '/^connections_opened/{o=$2} /^requests_started/{s=$2} /^requests_failed/{f=$2}
        /^requests_succeeded/{k=$2} END{exit !(o == n && s == f + k)}' <<<"$page" && break
      kill -0 "$BENCH_PID" 2>/dev/null || break
      sleep 0.1
    done
    est=$(($(rss_kib "$SERVER_PID") * 1024))
    kill -9 "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
    BENCH_PID=""
  else
    timeout 120 "${cmd[@]}" >"$OUT/$name.json" 2>"$OUT/$name.table" || echo "warning: $name: bench exited $?" >&2
    est=$(jq -r '.server.rss_established_bytes // 0' "$OUT/$name.json")
  fi
  local t1; t1=$(now_ms)
  # Until every request ringcast started has been answered (the DELETEs).
  local page="" done_ms=""
  for _ in $(seq 300); do
    page=$(curl -s --max-time 2 "http://127.0.0.1:$p/" || true)
    if awk '/^requests_started/{s=$2} /^requests_failed/{f=$2} /^requests_succeeded/{o=$2}
            END{exit !(s != "" && s == f + o)}' <<<"$page"; then
      done_ms=$(($(now_ms) - t1))
      break
    fi
    sleep 0.05
  done
  local left=$((AFTER * 1000 - ($(now_ms) - t1)))
  [ $left -gt 0 ] && sleep "$(awk -v l=$left 'BEGIN{print l / 1000}')"
  stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
  echo "$page" >"$OUT/$name.counters"
  stop_pid "$SERVER_PID"; SERVER_PID=""
  stop_pid "$BACKEND_PID"; BACKEND_PID=""
  tail -n +2 "$blog" >>"$OUT/$name.counters"
  local end=$((t1 - t0)) deletes
  deletes=$(awk '/^connections/{for(i=1;i<NF;i++) if($i=="delete") print $(i+1)}' "$OUT/$name.counters")
  awk -v e="$end" -v est="$est" -v a="$AFTER" -v name="$name" -v d="$deletes" -v dm="${done_ms:-?}" '
    { if ($2 > peak) peak = $2; if ($3 != "?" && $3 + 0 > q) q = $3 + 0 }
    $1 <= e + 1000 { r1 = $2 } $1 <= e + 5000 { r5 = $2 } { last = $2 }
    END { printf "%s  established %.1f  peak %.1f  +1s %.1f  +5s %.1f  +%ds %.1f MiB  deletes %s  answered +%s ms  most queued %d\n",
      name, est / 1048576, peak / 1024, r1 / 1024, r5 / 1024, a, last / 1024, d, dm, q }' "$OUT/$name.rss" |
    tee -a "$OUT/summary.txt"
}

: >"$OUT/summary.txt"
for r in $(seq "$RUNS"); do
  once "close-$r"
done
