#!/usr/bin/env bash
# scripts/bench-smoke.sh -- the `bench` stage of scripts/test.sh: runs
# scripts/bench-compare.sh --quick --report (tiny loads, debug build, ~1 min)
# and checks every JSON report: all connections up, no errors, echoes
# received, fanout delivered everything with nothing lost, duplicated or
# reordered; ringcast's storms recovered every dropped subscriber and lost
# nothing (the peer's storm only has to be reported: it has no recovery);
# every publish run was acknowledged without errors; the report dirs hold
# report.md and SVG charts.
# (bench/tests/smoke.rs covers the same scenarios from `cargo test`.)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$TARGET/bench-smoke
rm -rf "$OUT"
if ! bash scripts/bench-compare.sh --quick --report --profile "${PROFILE:-dev}" --out "$OUT"; then
  echo "bench-compare.sh --quick failed"; echo "0 passed, 1 failed"; exit 1
fi

PASSED=0 FAILED=0
check() { # check NAME JQ-BOOLEAN-EXPRESSION
  local f=$OUT/$1.json
  if [ -s "$f" ] && jq -e "$2" "$f" >/dev/null 2>&1; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1)); echo "FAILED: $1: $2"; [ -s "$f" ] && jq -c '.connections, .errors' "$f"
  fi
}
CONNECTED='.connections.attempted > 0 and .connections.established == .connections.attempted
  and .connections.errors == 0 and .connections.disconnects == 0 and .protocol_errors == 0'
for side in rc peer; do
  check $side-hold-raw "$CONNECTED and (.server.rss_per_conn_bytes | type) == \"number\""
  check $side-hold-cf  "$CONNECTED and .hold.held == .connections.established"
  check $side-echo     "$CONNECTED and .echo.received > 0 and .echo.mismatched == 0
                        and (.server.cpu_us_per_msg | type) == \"number\""
  check $side-fanout   "$CONNECTED and .fanout.delivered > 0 and .fanout.lost == 0
                        and .fanout.duplicated == 0 and .fanout.out_of_order == 0
                        and .fanout.delivered == .fanout.expected"
done
STORMED='.storm.dropped > 0 and .storm.resubscribed == .storm.dropped'
for run in rc-storm rc-storm-api; do
  check $run "$CONNECTED and $STORMED and .storm.recovered == .storm.dropped
              and .fanout.lost == 0 and .fanout.duplicated == 0 and .fanout.out_of_order == 0"
done
check peer-storm "$CONNECTED and $STORMED and (.fanout.lost | type) == \"number\""
for run in rc-publish-client rc-publish-tcp rc-publish-http peer-publish-client; do
  check $run "$CONNECTED and .publish.acked > 0 and .publish.errors == 0"
done
svg() { # svg FILE: an SVG document with at least one line
  [ -s "$1" ] && head -c 4 "$1" | grep -q '<svg' && grep -q '<polyline\|<path' "$1"
}
for run in rc-echo rc-storm peer-storm rc-publish-tcp; do
  if [ -s "$OUT/$run/report.md" ] && svg "$OUT/$run/latency.svg" && svg "$OUT/$run/throughput.svg"; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1)); echo "FAILED: $run: no report.md or charts in $OUT/$run"
  fi
done
echo "bench: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
