#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian packages, Node packages, the Autobahn venv), then runs every stage and
# prints one summary line. `.ci/run` calls exactly this.
#
#   scripts/test.sh            # everything
#   STAGES="unit sdk" scripts/test.sh   # a subset (names below)
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never
STAGES=${STAGES:-"lint unit conformance sdk api storm tuning ops fuzz bench"}
VENV=${VENV:-$ROOT/target/test-venv}
PASSED=0 FAILED=0 FAILED_NAMES=""
LOGDIR=${LOGDIR:-$ROOT/target/test-logs}
mkdir -p "$LOGDIR"

say() { printf '\n=== %s\n' "$*"; }
run_stage() {
  local name=$1; shift
  say "$name"
  local t0=$SECONDS
  if "$@"; then
    PASSED=$((PASSED + 1)); echo "--- $name: ok ($((SECONDS - t0)) s)"
  else
    FAILED=$((FAILED + 1)); FAILED_NAMES="$FAILED_NAMES $name"; echo "--- $name: FAILED ($((SECONDS - t0)) s)"
  fi
}
want() { case " $STAGES " in *" $1 "*) return 0;; *) return 1;; esac; }

# ---- set-up (idempotent) ----
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install: ${missing[*]}" >&2; return 1; fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
# Set-up steps and their times, printed as one line (`--- setup: ...`): the
# set-up is a third of a fresh machine's CI run, and this says where it goes.
SETUP_TIMES=""
step() {
  local name=$1; shift
  local t0=$SECONDS
  "$@" || return 1
  SETUP_TIMES="$SETUP_TIMES${SETUP_TIMES:+, }$name $((SECONDS - t0)) s"
}
packages() {
  { want sdk || want storm; } && { apt_install chromium || return 1; }
  # The Redis broker's tests start their own redis-server / redis-sentinel.
  { want sdk || want storm || want unit; } && { apt_install redis-server redis-sentinel || return 1; }
  # HAProxy fronts two `ringcast ws2api` nodes (balance uri) in the sdk stage.
  want sdk && { apt_install haproxy || return 1; }
  # promtool (Debian's prometheus package) lints /metrics in the api and sdk stages.
  { want sdk || want api || want ops; } && { apt_install prometheus || return 1; }
  want ops && { apt_install redis-server || return 1; }
  want tuning && { apt_install iproute2 || return 1; }
  return 0
}
venv() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || return 1
  "$VENV/bin/pip" install -q -r tests/api/requirements.txt -r tests/publishers/requirements.txt
}
autobahn() {
  ../shared/tools/autobahn3/setup.sh >"$LOGDIR/autobahn-setup.log" 2>&1 || { cat "$LOGDIR/autobahn-setup.log"; return 1; }
}
setup() {
  step packages packages || return 1
  if want sdk || want storm; then step node bash -c 'cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error' || return 1; fi
  if want api; then step venv venv || return 1; fi
  if want conformance; then step autobahn autobahn || return 1; fi
  step "debug build" cargo build --workspace --all-targets || return 1
  step "release build" cargo build --release -p ringcast || return 1
  echo "--- setup: $SETUP_TIMES"
}

# ---- stages ----
lint() {
  cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings &&
    python3 scripts/check-layers.py
}
unit() {
  cargo test --workspace
}
conformance() {
  # Autobahn|Testsuite 1.* to 10.* against `ringcast echo` (release), on io_uring
  # and on the epoll fallback: 0 FAILED, 0 MISSING. On io_uring also
  # permessage-deflate: every 13.* case (each offer the suite makes) and 12.1,
  # 12.4 (12.2, 12.3 and 12.5 are the same with more payload sizes, 4 min
  # more; AUTOBAHN_DEFLATE="12.*,13.*" runs them all).
  local rc=0
  local base="1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*"
  local deflate="${AUTOBAHN_DEFLATE:-12.1.*,12.4.*,13.*}"
  for driver in uring epoll; do
    local cases="$base"
    [ "$driver" = uring ] && cases="$base,$deflate"
    # Port 0: the ready line (JSON on stdout) says where it listens.
    target/release/ringcast echo --port 0 --address 127.0.0.1 --shards 2 --driver "$driver" \
      >"$LOGDIR/echo-$driver.out" 2>"$LOGDIR/echo-$driver.log" &
    local pid=$!
    for _ in $(seq 100); do grep -q '"ready"' "$LOGDIR/echo-$driver.out" && break; sleep 0.1; done
    local addr
    addr=$(grep -o '"listen":"[^"]*"' "$LOGDIR/echo-$driver.out" | head -1 | cut -d'"' -f4)
    [ -n "$addr" ] || { echo "ringcast echo ($driver) did not start"; cat "$LOGDIR/echo-$driver.log"; kill "$pid"; return 1; }
    ../shared/tools/autobahn3/run.sh -o "$LOGDIR/autobahn-$driver" -a "ringcast-$driver" "ws://$addr" "$cases" || rc=1
    kill "$pid"; wait "$pid" 2>/dev/null
  done
  return $rc
}
sdk() {
  (cd tests/sdk && RINGCAST_BIN="$ROOT/target/debug/ringcast" node --test --test-concurrency=1 .) &&
    RINGCAST_BIN="$ROOT/target/debug/ringcast" node --test --test-concurrency=1 tests/publishers/
}
storm() {
  # 10,000 centrifuge-js clients dropped at once must recover everything.
  # The same over two nodes and a real Redis, clients recovering on the
  # other node.
  (cd tests/sdk && STORM_CLIENTS=${STORM_CLIENTS:-10000} RINGCAST_BIN="$ROOT/target/release/ringcast" \
    node --test --test-concurrency=1 storm.mjs storm-redis.mjs)
}
api() {
  (cd tests/api && RINGCAST_BIN="$ROOT/target/debug/ringcast" "$VENV/bin/python" -m pytest -q) &&
    (cd tests/publishers && RINGCAST_BIN="$ROOT/target/debug/ringcast" "$VENV/bin/python" -m pytest -q)
}
tuning() {
  bash scripts/test-tuning.sh
}
ops() {
  # Alert rules (promtool check/test rules), the Grafana dashboard's queries,
  # and the metrics they use against a live node's /metrics.
  RINGCAST_BIN="$ROOT/target/debug/ringcast" bash scripts/test-ops.sh
}
fuzz() {
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
}
bench() {
  if [ -x scripts/bench-smoke.sh ]; then bash scripts/bench-smoke.sh; else echo "no bench smoke yet"; fi
}

say "setup"
if ! setup; then echo "setup failed"; echo "test.sh: 0 passed, 1 failed"; exit 1; fi
for s in $STAGES; do run_stage "$s" "$s"; done
echo
[ -n "$FAILED_NAMES" ] && echo "failed stages:$FAILED_NAMES"
echo "test.sh: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
