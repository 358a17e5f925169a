#!/usr/bin/env bash
# scripts/bench-find-max.sh -- the zero-loss maximum publication rate of a
# fanout setup: fixed-rate runs (each against a fresh server, through
# scripts/bench-run.sh) at increasing rates until one fails; the highest
# passing rate is the zero-loss maximum.
#
#   scripts/bench-find-max.sh [options] SERVER -- FANOUT-ARGS...
#
# FANOUT-ARGS are ringcast-bench fanout arguments without --rate/--max
# (placeholders as in bench-run.sh: @WS@, @API@, @TCP@, @KEY@).
#
# A run that other processes disturbed even after bench-run.sh's retries
# (its exit code 3) is not judged: the step waits a minute and runs again
# (at most 5 times; after that its verdict counts, marked "disturbed").
#
# A run passes when: every connection was established and none dropped,
# lost = 0, duplicated = 0, out_of_order = 0, publish_errors = 0,
# rate_deficit = 0 (the in-flight cap never held a publication back),
# acked = published, and latency p99 <= --p99-ms. A failing run is repeated
# once (--confirm 1) and the rate fails only if the repeat fails too (the
# host is shared; a single hiccup should not end the search).
#
# Procedure: rate = --start, then rate × --factor until a rate fails (or
# --limit is reached); then --refine bisection steps between the highest
# pass and the lowest fail. Rates are rounded to 3 significant digits.
#
# Options: --start R (100), --factor F (1.25), --refine N (2), --limit R
# (1e9), --p99-ms MS (100), --confirm N (1), --out DIR, --name NAME; other
# options go to bench-run.sh (--max-other, --retries, --server-arg …).
# Output: a line per run on stderr, NAME.findmax.json (every step and the
# result) in --out, the zero-loss maximum on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
START=100 FACTOR=1.25 REFINE=2 LIMIT=1000000000 P99_MS=100 CONFIRM=1
OUT=$TARGET/bench-find-max NAME=""
RUN_OPTS=()
while [ $# -gt 0 ]; do
  case $1 in
    --start) START=$2; shift ;;
    --factor) FACTOR=$2; shift ;;
    --refine) REFINE=$2; shift ;;
    --limit) LIMIT=$2; shift ;;
    --p99-ms) P99_MS=$2; shift ;;
    --confirm) CONFIRM=$2; shift ;;
    --out) OUT=$2; shift ;;
    --name) NAME=$2; shift ;;
    --max-other|--retries|--quiet-wait|--server-arg) RUN_OPTS+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) if [ -z "${KIND:-}" ]; then KIND=$1; else echo "unexpected $1 (missing --?)" >&2; exit 2; fi ;;
  esac
  shift
done
[ -n "${KIND:-}" ] && [ $# -gt 0 ] || { echo "usage: $0 [options] SERVER -- FANOUT-ARGS" >&2; exit 2; }
[ "$1" = fanout ] || { echo "FANOUT-ARGS must start with 'fanout'" >&2; exit 2; }
for a in "$@"; do
  case $a in --rate|--max) echo "$a is set by this script" >&2; exit 2 ;; esac
done
[ -n "$NAME" ] || NAME=$KIND-fanout
mkdir -p "$OUT"
STEPS=$OUT/$NAME.steps.jsonl
: >"$STEPS"

round3() { awk -v r="$1" 'BEGIN { if (r < 1) r = 1; e = int(log(r) / log(10)) - 2; if (e < 0) e = 0;
  m = 10 ^ e; printf "%d", int(r / m + 0.5) * m }'; }

# verdict FILE: "pass" or "fail:<reasons>".
verdict() {
  jq -r --argjson p99 "$P99_MS" '
    [ (if .connections.established != .connections.attempted then "conns" else empty end),
      (if .connections.disconnects > 0 then "dropped" else empty end),
      (if .fanout.lost > 0 then "lost=\(.fanout.lost)" else empty end),
      (if .fanout.duplicated > 0 then "dup" else empty end),
      (if .fanout.out_of_order > 0 then "reordered" else empty end),
      (if .fanout.publish_errors > 0 then "refused" else empty end),
      (if .fanout.rate_deficit > 0 then "deficit=\(.fanout.rate_deficit)" else empty end),
      (if .fanout.acked != .fanout.published then "unacked" else empty end),
      (if (.latency.p99_us // 1e12) > $p99 * 1000 then "p99=\((.latency.p99_us / 1000 * 10 | round) / 10)ms" else empty end)
    ] | if length == 0 then "pass" else "fail:" + join(",") end' "$1" 2>/dev/null || echo "fail:no-report"
}

# try RATE: runs it (plus confirmations); returns 0 on pass.
try() {
  local rate=$1 n=0 v name rc disturbed
  shift
  while :; do
    name=$NAME-r$rate
    [ "$n" = 0 ] || name=$name-again$n
    disturbed=0
    while :; do
      rc=0
      bash scripts/bench-run.sh "${RUN_OPTS[@]}" --out "$OUT" --name "$name" "$KIND" -- "$@" --rate "$rate" \
        >/dev/null 2>>"$OUT/$name.log" || rc=$?
      [ "$rc" = 3 ] || break
      disturbed=$((disturbed + 1))
      [ "$disturbed" -le 5 ] || break
      echo "($name: disturbed by other processes; waiting a minute)" >&2
      sleep 60
    done
    v=$(verdict "$OUT/$name.json")
    [ "$rc" = 3 ] && v="$v (disturbed)"
    jq -c --arg name "$name" --argjson rate "$rate" --arg v "$v" '{name: $name, rate: $rate, verdict: $v,
        delivered_per_s: .fanout.delivered_per_s, acked_per_s: .fanout.acked_per_s, lost: .fanout.lost,
        rate_deficit: .fanout.rate_deficit, p50_us: .latency.p50_us, p99_us: .latency.p99_us,
        server_cpu_us_per_msg: .server.cpu_us_per_msg, server_cpu_util: .server.cpu_util,
        bench_per_worker_util: .bench.per_worker_util, other_busy_cores: .host.other_busy_cores}' \
      "$OUT/$name.json" 2>/dev/null >>"$STEPS" || echo "{\"name\":\"$name\",\"rate\":$rate,\"verdict\":\"$v\"}" >>"$STEPS"
    tail -1 "$STEPS" | jq -r '"\(.name): \(.verdict)  delivered/s \(.delivered_per_s // "-" | tostring | .[0:10])  p50 \(.p50_us // "-")us p99 \(.p99_us // "-")us  server cpu \(.server_cpu_util // "-" | tostring | .[0:5])  bench \(.bench_per_worker_util // "-" | tostring | .[0:5])  other \(.other_busy_cores // "-" | tostring | .[0:5])"' >&2
    case $v in pass*) return 0 ;; esac
    n=$((n + 1))
    [ "$n" -le "$CONFIRM" ] || return 1
  done
}

PASS=0 FAIL=0
rate=$(round3 "$START")
while :; do
  if try "$rate" "$@"; then
    PASS=$rate
    next=$(round3 "$(awk -v r="$rate" -v f="$FACTOR" 'BEGIN{print r * f}')")
    [ "$next" -gt "$rate" ] || next=$((rate + 1))
    if [ "$next" -gt "$(round3 "$LIMIT")" ]; then break; fi
    rate=$next
  else
    FAIL=$rate; break
  fi
done
for ((i = 0; i < REFINE; i++)); do
  [ "$FAIL" -gt 0 ] && [ "$PASS" -gt 0 ] || break
  mid=$(round3 $(((PASS + FAIL) / 2)))
  [ "$mid" -gt "$PASS" ] && [ "$mid" -lt "$FAIL" ] || break
  if try "$mid" "$@"; then PASS=$mid; else FAIL=$mid; fi
done
jq -s --arg kind "$KIND" --argjson max "$PASS" --argjson fail "$FAIL" --argjson p99 "$P99_MS" \
   --arg args "$*" '{server: $kind, fanout_args: $args, p99_bound_ms: $p99,
     zero_loss_max_rate: $max, lowest_failing_rate: (if $fail > 0 then $fail else null end), steps: .}' \
   "$STEPS" >"$OUT/$NAME.findmax.json"
[ "$FAIL" -gt 0 ] || FAIL="none up to the limit"
echo "zero-loss maximum: $PASS publications/s (lowest failing: $FAIL; p99 bound ${P99_MS} ms) -> $OUT/$NAME.findmax.json" >&2
echo "$PASS"
