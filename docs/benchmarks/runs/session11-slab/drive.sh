#!/usr/bin/env bash
# docs/benchmarks/runs/session11-slab/drive.sh -- the paired idle-memory runs
# of session 11: A (main) and B (the slab branch) alternate on fresh
# processes, A B A B ..., for each configuration (shards, channels,
# subscriptions per connection), then raw WebSocket (`ringcast echo`).
#   BIN_A=/tmp/slab-bin/A BIN_B=/tmp/slab-bin/B drive.sh [PAIRS]
# FIRST=K: pairs K..PAIRS only. CFGS overrides the client configurations,
# RAW=0 skips the raw runs, OUT_DIR puts the runs elsewhere. Each run is ./hold.sh (session 9's plus `raw`);
# the table: ./summary.sh > summary.md.
# The loop is scripts/bench-hold-pairs.sh (session 12), which this script's
# first version became; it runs ./hold.sh here, as then. With a bench from
# session 12 on, `hold --server-pid` first warms up 64 connections;
# HOLD_EXTRA="--warmup 0" gives session 11's reading.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
HOLD_SCRIPT=$here/hold.sh OUT_DIR=${OUT_DIR:-$here} exec bash "$here/../../../../scripts/bench-hold-pairs.sh" "$@"
