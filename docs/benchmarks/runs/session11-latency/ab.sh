#!/usr/bin/env bash
# Paired runs, A and B in turn, ROUNDS rounds, one scenario (goal1: 1,000
# channels x 10 subscribers, 10,000 publications/s; goal2: 100 x 10,
# 5,000/s, --rx-timestamps): session 11's driver, now scripts/bench-latency-ab.sh
# (the same environment: BIN_A, BIN_B, BENCH, OUT, SCENARIO, ROUNDS, ARGS_A,
# ARGS_B, PORT, DUR; session 12 added a network per side, loopback here).
# This folder's runs were made by the script as it was then, git show
# a3e22a9~1:docs/benchmarks/runs/session11-latency/ab.sh.
#   BIN_A=DIR BIN_B=DIR BENCH=PATH OUT=DIR SCENARIO=goal1 ROUNDS=3 ab.sh
set -euo pipefail
: "${BENCH:?}"
exec bash "$(dirname "$0")/../../../../scripts/bench-latency-ab.sh" "$@"
