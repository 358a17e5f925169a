#!/usr/bin/env bash
# summary.sh (session11-pool): per configuration and build (A main, B the
# pool branch), runs in order and medians of: RSS per client (the bench's,
# RSS 1 s after setup − RSS before, over N), the server's RSS at start
# (the bench's "before"), the arenas' free heap 3 s after setup
# (malloc_stats: system − in use over every arena), the connect rate and
# the connect p99; then B − A of the medians. The tables are made by
# scripts/bench-hold-summary.sh, which this script's first version became
# (it gives this folder's summary.md and hw128/summary.md unchanged).
#   [DIR=hw128] summary.sh > summary.md
exec bash "$(dirname "$0")/../../../../scripts/bench-hold-summary.sh" "${DIR:-$(dirname "$0")}"
