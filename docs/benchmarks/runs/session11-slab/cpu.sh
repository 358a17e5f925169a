#!/usr/bin/env bash
# cpu.sh: server CPU per message of every side-by-side round here, A and B,
# B / A per round, the medians and B / A of the medians (python3).
cd "$(dirname "$0")"
python3 - <<'PY'
import glob, json, re, statistics, collections
rows = collections.defaultdict(dict)
for f in sorted(glob.glob("side-by-side*/*-[AB]-*.json")):
    m = re.match(r"(side-by-side[^/]*)/(\w+)-([AB])-(\d+)\.json", f)
    j = json.load(open(f))
    fan = j.get("fanout") or {}
    rows[(m[2], m[1], int(m[4]))][m[3]] = (j["server"]["cpu_us_per_msg"], fan.get("lost"), fan.get("delivered"))
for scen in sorted({k[0] for k in rows}):
    print(f"### {scen}\n")
    print("| set | round | A µs/msg | B µs/msg | B / A | lost A / B |")
    print("|---|---|---|---|---|---|")
    a_all, b_all, r_all = [], [], []
    for k in sorted(k for k in rows if k[0] == scen):
        r = rows[k]
        if "A" not in r or "B" not in r:
            continue
        a, b = r["A"][0], r["B"][0]
        a_all.append(a); b_all.append(b); r_all.append(b / a)
        print(f"| {k[1]} | {k[2]} | {a:.3f} | {b:.3f} | {b/a:.3f} | {r['A'][1]} / {r['B'][1]} |")
    ma, mb = statistics.median(a_all), statistics.median(b_all)
    print(f"| median | | {ma:.3f} | {mb:.3f} | **{mb/ma:.3f}** (median of ratios {statistics.median(r_all):.3f}) | |\n")
PY
