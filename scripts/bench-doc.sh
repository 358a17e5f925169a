#!/usr/bin/env bash
# scripts/bench-doc.sh -- every run behind docs/benchmarks.md: ringcast
# (--shards 1) against the comparison peer (--threads 1), each server alone
# on core $SERVER_CPU, the load on core $LOAD_CPU, same commands, through
# scripts/bench-run.sh (fresh server per run, re-run when other processes
# disturbed it) and scripts/bench-find-max.sh.
#
#   BIN=/tmp/bench-target/release scripts/bench-doc.sh [--out DIR] [--repeat N] [--first I] [SCENARIO...]
#
# Scenarios (default: all):
#   hold-raw     15,000 idle WebSocket connections (upgrade only)
#   hold-cf      15,000 connections, Centrifugo connect + subscribe (1,000 channels)
#   echo         100 conns x 16 in flight x 100 B
#   fanout-max   1 channel x 10,000 subscribers, client publish as fast as
#                acknowledged, in-flight 32 and 256
#   fanout-find  the same setup: zero-loss maximum rate (bench-find-max.sh,
#                p99 <= 100 ms and p99 <= 500 ms), even pacing; run once
#   fanout-b     the same channel at 100 publications/s, even and burst pacing
#   latency      1,000 channels x 10 subscribers at 10,000/s, even and burst
#   latency-small  100 channels x 10 subscribers at 5,000/s, even and burst
#   latency-sweep  1,000 channels x 10 subscribers at 2,000 and 5,000/s, even
#   tcp          ringcast only: one TCP publisher pipelining into a channel
#                with one subscriber, in-flight 256, 1024, 4096
#   http         ringcast only: bench HTTP publisher (keep-alive, pipelined)
#                and wrk (bench/wrk/publish.lua)
#   storm        10,000 subscribers on 10 channels with recovery, 100
#                publications/s, all dropped at 3 s: ringcast by one API
#                disconnect and by client resets (docs/benchmarks/runs/storm.toml),
#                the peer by client resets (it has no recovery)
#   publish      ingest, one publisher connection, no subscribers: ringcast
#                over TCP (window 1024) and HTTP (64); both over client
#                publish (256)
# Each repeated scenario runs --repeat times (default 3; numbered from
# --first, default 1), ringcast and peer alternating; files are NAME-<i>.json / .cmd / .table / .server.log in
# --out (default docs/benchmarks/runs). Summarise with
# scripts/bench-summary.sh DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/benchmarks/runs REPEAT=3 FIRST=1
SCENARIOS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift ;;
    --repeat) REPEAT=$2; shift ;;
    --first) FIRST=$2; shift ;;
    -h|--help) sed -n "2,40p" "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) SCENARIOS+=("$1") ;;
  esac
  shift
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(hold-raw hold-cf echo fanout-max fanout-b latency latency-small latency-sweep tcp http fanout-find)
mkdir -p "$OUT"

RUN_OPTS=() # extra bench-run.sh options for the next runs (--server-arg ...)
run() { # run NAME SERVER BENCH-ARGS...
  local name=$1 kind=$2; shift 2
  bash scripts/bench-run.sh "${RUN_OPTS[@]}" --out "$OUT" --name "$name" "$kind" -- "$@" >/dev/null 2>>"$OUT/bench-doc.log" \
    || echo "($name: bench-run exit $?)" | tee -a "$OUT/bench-doc.log" >&2
  echo "$(date +%T) $name done" >&2
}
# both NAME RC-SERVER PEER-PATH RC-PATH ARGS... : the same bench arguments
# against ringcast and the peer ("@PATH@" in ARGS is the server's path).
both() {
  local name=$1 rc=$2 rc_path=$3 peer_path=$4; shift 4
  run "rc-$name" "$rc" "${@//@PATH@/$rc_path}"
  run "peer-$name" peer "${@//@PATH@/$peer_path}"
}

CF=/connection/websocket
SPREAD=(--conns-per-addr 5000)
FAN_A=(fanout --url @WS@$CF --subscribers 10000 --channels 1 --publishers 1 --size 100 "${SPREAD[@]}")

for sc in "${SCENARIOS[@]}"; do
  case $sc in
    fanout-find)
      # Two bounds: the issue's example (p99 <= 100 ms; on this box one
      # publication's fan-out to 10,000 sockets alone takes ~70 ms, so the
      # search starts low) and p99 <= 500 ms.
      for bound in "100 5" "500 100"; do
        read -r p99 start <<<"$bound"
        for kind in rc-serve peer; do
          short=${kind%-serve}
          bash scripts/bench-find-max.sh --out "$OUT" --name "$short-fanout-find-p$p99" --p99-ms "$p99" \
            --start "$start" --factor 1.25 --refine 2 "$kind" -- "${FAN_A[@]}" --pace even -d 10 \
            >/dev/null 2>>"$OUT/bench-doc.log" || echo "($kind find-max: exit $?)" >&2
          echo "$(date +%T) $short-fanout-find-p$p99 done" >&2
        done
      done
      continue ;;
  esac
  for i in $(seq "$FIRST" $((FIRST + REPEAT - 1))); do
    case $sc in
      hold-raw)
        both "hold-raw-$i" rc-echo / /echo hold --url @WS@@PATH@ --protocol raw -n 15000 -d 10 "${SPREAD[@]}" ;;
      hold-cf)
        both "hold-cf-$i" rc-serve $CF $CF hold --url @WS@@PATH@ -n 15000 --channels 1000 -d 10 "${SPREAD[@]}" ;;
      echo)
        both "echo-$i" rc-echo / /echo echo --url @WS@@PATH@ -c 100 -w 16 -s 100 -d 10 ;;
      fanout-max)
        for w in 32 256; do
          both "fanout-max-w$w-$i" rc-serve $CF $CF "${FAN_A[@]}" --max --in-flight $w -d 10
        done ;;
      fanout-b)
        for pace in even burst; do
          both "fanout-b-$pace-$i" rc-serve $CF $CF "${FAN_A[@]}" --rate 100 --pace $pace -d 10
        done ;;
      latency)
        for pace in even burst; do
          both "latency-1000x10-$pace-$i" rc-serve $CF $CF fanout --url @WS@$CF --subscribers 10000 \
            --channels 1000 --publishers 1 --rate 10000 --pace $pace --size 100 -d 10 "${SPREAD[@]}"
        done ;;
      latency-small)
        for pace in even burst; do
          both "latency-100x10-$pace-$i" rc-serve $CF $CF fanout --url @WS@$CF --subscribers 1000 \
            --channels 100 --publishers 1 --rate 5000 --pace $pace --size 100 -d 10
        done ;;
      latency-sweep)
        for rate in 2000 5000; do
          both "latency-1000x10-r$rate-$i" rc-serve $CF $CF fanout --url @WS@$CF --subscribers 10000 \
            --channels 1000 --publishers 1 --rate $rate --pace even --size 100 -d 10 "${SPREAD[@]}"
        done ;;
      tcp)
        for w in 256 1024 4096; do
          run "rc-tcp-w$w-$i" rc-serve fanout --url @WS@$CF --publisher tcp --publisher-addr @TCP@ \
            --api-key @KEY@ --subscribers 1 --channels 1 --publishers 1 --size 100 --max --in-flight $w -d 10
        done ;;
      http)
        for w in 1 64; do
          run "rc-http-w$w-$i" rc-serve fanout --url @WS@$CF --publisher http --api-url @API@ \
            --api-key @KEY@ --subscribers 1 --channels 1 --publishers 1 --size 100 --max --in-flight $w -d 10
        done
        for c in 1 16 64; do
          run "rc-wrk-c$c-$i" rc-serve wrk -t1 -c$c -d10s -s bench/wrk/publish.lua @API@/publish
        done ;;
      storm)
        STORM=(storm --url @WS@$CF -n 10000 --channels 10 -d 10 --warmup 3 "${SPREAD[@]}" --rate 100)
        RUN_OPTS=(--server-arg --config --server-arg docs/benchmarks/runs/storm.toml)
        run "rc-storm-api-$i" rc-serve "${STORM[@]}" --api-url @API@ --api-key @KEY@
        run "rc-storm-client-$i" rc-serve "${STORM[@]}" --drop client --publisher client
        RUN_OPTS=()
        run "peer-storm-client-$i" peer "${STORM[@]}" --drop client --publisher client ;;
      publish)
        PUB=(publish --size 100 -d 10)
        run "rc-publish-tcp-$i" rc-serve "${PUB[@]}" --url @WS@$CF --via tcp -w 1024 --publisher-addr @TCP@ --api-key @KEY@
        run "rc-publish-http-$i" rc-serve "${PUB[@]}" --url @WS@$CF --via http -w 64 --api-url @API@ --api-key @KEY@
        both "publish-client-$i" rc-serve $CF $CF "${PUB[@]}" --url @WS@@PATH@ --via client -w 256 ;;
      *) echo "unknown scenario $sc" >&2; exit 2 ;;
    esac
  done
done
echo "done: $OUT" >&2
