#!/usr/bin/env bash
# docs/benchmarks/runs/session11-slab2/drive.sh -- session11-slab's drive.sh (the paired
# idle-memory runs: A main, B the branch, in turn on fresh processes), with
# the runs written here unless OUT_DIR says otherwise. Same arguments:
#   BIN_A=DIR BIN_B=DIR [CFGS=...] [RAW=0] [PORT=P] drive.sh [PAIRS]
here=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${OUT_DIR:-$here} exec bash "$here/../session11-slab/drive.sh" "$@"
