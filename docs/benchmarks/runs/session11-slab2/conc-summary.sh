#!/usr/bin/env bash
# conc-summary.sh: RSS per connection and the free heap (malloc_stats 3 s
# after setup: system - in use, summed over every arena, mmapped blocks
# left out) of every conc/ run, by kind, shards and connects in flight, and
# the medians (python3).
cd "$(dirname "$0")/conc"
python3 - <<'PY'
import glob, json, re, statistics, collections
rss, free = collections.defaultdict(list), collections.defaultdict(list)
for f in sorted(glob.glob("*-s*-cc*-*.json")):
    m = re.match(r"(\w+)-s(\d+)-cc(\d+)-(\d+)\.json", f)
    k = (m[1], int(m[2]), int(m[3]))
    rss[k].append((int(m[4]), json.load(open(f))["server"]["rss_per_conn_bytes"]))
    log = open(f.replace(".json", ".server.log")).read()
    arenas = re.findall(r"Arena \d+:\nsystem bytes\s+=\s+(\d+)\nin use bytes\s+=\s+(\d+)", log)
    free[k].append((int(m[4]), sum(int(s) - int(u) for s, u in arenas)))
print("| kind | shards | connects in flight | RSS per client, runs in order | median | arenas' free heap, KB (runs) | median per client |")
print("|---|---|---|---|---|---|---|")
for k in sorted(rss, key=lambda k: (k[0] != "ws", k[1], -k[2])):
    v = [round(x) for _, x in sorted(rss[k])]
    fr = [x for _, x in sorted(free[k])]
    print(f"| {k[0]} | {k[1]} | {k[2]} | {' · '.join(map(str, v))} | **{statistics.median(v):.0f} B** | "
          f"{' · '.join(str(round(x / 1024)) for x in fr)} | {statistics.median(fr) / 15000:.0f} B |")
PY
