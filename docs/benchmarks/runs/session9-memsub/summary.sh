#!/usr/bin/env bash
# summary.sh [GLOB-PREFIX...]: RSS per connection of every run here (or in
# DIR, e.g. DIR=../session10-memsub), by configuration and build, and the
# medians (python3).
cd "${DIR:-$(dirname "$0")}"
python3 - "$@" <<'PY'
import glob, json, re, statistics, sys, collections
runs = collections.defaultdict(list)
for f in sorted(glob.glob("ws-s*-c*-k*-*-*.json")):
    m = re.match(r"ws-(s\d+)-(c\d+)-(k\d+)-([A-Z]\w*)-(\d+)\.json", f)
    if not m:
        continue
    j = json.load(open(f))
    runs[(m[1], m[2], m[3], m[4])].append((int(m[5]), j["server"]["rss_per_conn_bytes"]))
print("| shards | channels | subs/conn | build | runs (in order), B per connection | median |")
print("|---|---|---|---|---|---|")
for k in sorted(runs):
    v = [round(x) for _, x in sorted(runs[k])]
    print(f"| {k[0][1:]} | {k[1][1:]} | {k[2][1:]} | {k[3]} | {' · '.join(map(str, v))} | {statistics.median(v):.0f} |")
PY
