#!/usr/bin/env bash
# summary.sh: RSS per connection of every run here (or in DIR), by configuration and
# build, the medians, and B/A of the medians (python3).
cd "${DIR:-$(dirname "$0")}"
python3 - "$@" <<'PY'
import glob, json, re, statistics, collections
runs = collections.defaultdict(list)
for f in sorted(glob.glob("*-[AB]-*.json")):
    m = re.match(r"(ws-s\d+-c\d+-k\d+|raw-s\d+)-([AB])-(\d+)\.json", f)
    if not m:
        continue
    j = json.load(open(f))
    runs[(m[1], m[2])].append((int(m[3]), j["server"]["rss_per_conn_bytes"]))
print("| configuration | build | runs (in order), B per connection | median |")
print("|---|---|---|---|")
med = {}
for k in sorted(runs):
    v = [round(x) for _, x in sorted(runs[k])]
    med[k] = statistics.median(v)
    print(f"| {k[0]} | {k[1]} | {' · '.join(map(str, v))} | {med[k]:.0f} |")
print()
print("| configuration | A | B | B − A |")
print("|---|---|---|---|")
for c in sorted({k[0] for k in runs}):
    if (c, "A") in med and (c, "B") in med:
        a, b = med[(c, "A")], med[(c, "B")]
        print(f"| {c} | {a:.0f} | {b:.0f} | {b - a:+.0f} |")
PY
