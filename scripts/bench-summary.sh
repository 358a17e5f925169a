#!/usr/bin/env bash
# scripts/bench-summary.sh DIR -- a markdown summary of the runs in DIR
# (written by scripts/bench-run.sh / bench-doc.sh): one row per run group
# (NAME without its trailing -<repeat>), the median over the repeats and,
# in brackets, every run. Find-max results (NAME.findmax.json) get a table
# of their own. Latencies (p50, p99, p999) are in µs; p99_sec_med is the
# median over the window's seconds of each second's p99 (fanout).
set -euo pipefail
DIR=${1:?usage: $0 DIR}
command -v jq >/dev/null || { echo "needs jq" >&2; exit 2; }

# One compact JSON object per run with the figures that matter.
facts() {
  for f in "$DIR"/*.json; do
    case $f in *.findmax.json) continue ;; esac
    local name; name=$(basename "$f" .json)
    jq -c --arg name "$name" '{
      name: $name, group: ($name | sub("-[0-9]+$"; "")), scenario: .scenario,
      other: .host.other_busy_cores, bench_util: (.bench.per_worker_util // .bench.cpu_util),
      server_util: .server.cpu_util, cpu_us: .server.cpu_us_per_msg,
      rss_per_conn: .server.rss_per_conn_bytes, established: .connections.established,
      conn_per_s: .connections.per_s, dropped: .connections.disconnects,
      msgs_per_s: (.echo.msgs_per_s // .fanout.delivered_per_s // .requests_per_s),
      acked_per_s: .fanout.acked_per_s, window_per_s: .fanout.delivered_per_window_s,
      drain_s: .fanout.drain_s, lost: .fanout.lost, deficit: .fanout.rate_deficit,
      p50: (.latency.p50_us // .wrk.latency_us.p50), p99: (.latency.p99_us // .wrk.latency_us.p99),
      p999: (.latency.p999_us // .wrk.latency_us.p999),
      p99_sec_med: ((.duration_s // 0) as $d | [.latency_timeline[]? | select(.s < $d) | .p99_us] | sort
                    | if length == 0 then null else .[(length - 1) / 2 | floor] end)}' "$f" 2>/dev/null || true
  done
}

facts | jq -rs '
  def fmt: if . == null then "-" elif type == "number" then
      (if . >= 1e6 then "\(. / 1e4 | round / 100)M" elif . >= 1e4 then "\(. / 1e2 | round / 10)k"
       elif . >= 100 then "\(. | round)" else "\(. * 1000 | round / 1000)" end) else tostring end;
  def med: map(select(. != null)) | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def cell(k): (map(.[k]) | med | fmt) + (if length > 1 then " [" + (map(.[k] | fmt) | join(", ")) + "]" else "" end);
  group_by(.group) | map({group: .[0].group, scenario: .[0].scenario, runs: .}) as $groups |
  ["hold", "echo", "fanout", "wrk"][] as $sc |
  ($groups | map(select(.scenario == $sc))) as $g |
  select($g | length > 0) |
  (if $sc == "hold" then
     ["rss_per_conn", "established", "conn_per_s", "dropped", "server_util", "other"]
   elif $sc == "echo" then
     ["msgs_per_s", "cpu_us", "p50", "p99", "server_util", "bench_util", "other"]
   elif $sc == "fanout" then
     ["msgs_per_s", "acked_per_s", "window_per_s", "drain_s", "lost", "deficit", "p50", "p99", "p999",
      "p99_sec_med", "cpu_us", "server_util", "bench_util", "other"]
   else ["msgs_per_s", "cpu_us", "p50", "p99", "server_util", "bench_util", "other"] end) as $cols |
  "\n### \($sc)\n",
  "| run | " + ($cols | join(" | ")) + " |",
  "| --- |" + ($cols | map(" ---: |") | join("")),
  ($g[] | .runs as $r | "| \(.group) | " + ($cols | map(. as $k | $r | cell($k)) | join(" | ")) + " |")'

shopt -s nullglob
fm=("$DIR"/*.findmax.json)
if [ ${#fm[@]} -gt 0 ]; then
  echo
  echo "### find-max"
  echo
  echo "| search | zero-loss max (pub/s) | lowest failing | steps (rate: verdict) |"
  echo "| --- | ---: | ---: | --- |"
  for f in "${fm[@]}"; do
    jq -r '"| \(.server) \(.fanout_args | .[0:60])… | \(.zero_loss_max_rate) | \(.lowest_failing_rate // "-") | " +
      (.steps | map("\(.rate): \(.verdict)") | join("; ")) + " |"' "$f"
  done
fi
