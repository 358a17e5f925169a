#!/usr/bin/env bash
# The table from a side-by-side directory: per scenario, each round's CPU
# per message (A, B, B/A), the median ratio; quiet also the server-side
# delivery p99 (from /metrics) and the bench's p99.
#   docs/benchmarks/runs/session10-uring/summarize.sh DIR
set -euo pipefail
DIR=${1:?}
for s in echo ingest fanout quiet; do
  ls "$DIR/$s-A-"*.json >/dev/null 2>&1 || continue
  ratios=()
  for a in "$DIR/$s-A-"*.json; do
    r=${a##*-A-}; r=${r%.json}; b="$DIR/$s-B-$r.json"
    ca=$(jq '.server.cpu_us_per_msg' "$a"); cb=$(jq '.server.cpu_us_per_msg' "$b")
    ratio=$(echo "$cb / $ca" | bc -l)
    ratios+=("$ratio")
    extra=""
    if [ "$s" = quiet ] || [ "$s" = fanout ]; then
      extra=$(printf " server p99 A %s B %s ms; bench p99 A %s B %s ms" \
        "$(jq '(.server_latency.p99_us // 0) / 1000 | . * 100 | round / 100' "$a")" \
        "$(jq '(.server_latency.p99_us // 0) / 1000 | . * 100 | round / 100' "$b")" \
        "$(jq '.latency.p99_us / 1000 | . * 100 | round / 100' "$a")" \
        "$(jq '.latency.p99_us / 1000 | . * 100 | round / 100' "$b")")
    fi
    printf "%s round %s: A %.3f B %.3f µs/msg, B/A %.2f;%s\n" "$s" "$r" "$ca" "$cb" "$ratio" "$extra"
  done
  med=$(printf "%s\n" "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf "%s median B/A %.2f\n" "$s" "$med"
done
