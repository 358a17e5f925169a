#!/usr/bin/env bash
# cpu.sh: server CPU per message of every side-by-side round here: A (main)
# against the branch, B / A per round, the medians and B / A of the medians,
# by scenario and by the branch build the set ran: side-by-side and
# side-by-side-2 ran b35915b (queue in a Cell), side-by-side-c and -c2 ran
# faf8662 (queue in an UnsafeCell; its files call it B too). python3.
cd "$(dirname "$0")"
python3 - <<'PY'
import glob, json, re, statistics, collections
build = {"side-by-side": "b35915b", "side-by-side-2": "b35915b", "side-by-side-c": "faf8662", "side-by-side-c2": "faf8662"}
rows = collections.defaultdict(dict)
for f in sorted(glob.glob("side-by-side*/*-[AB]-*.json")):
    m = re.match(r"(side-by-side[^/]*)/(\w+)-([AB])-(\d+)\.json", f)
    j = json.load(open(f))
    fan = j.get("fanout") or {}
    rows[(m[2], build[m[1]], m[1], int(m[4]))][m[3]] = (j["server"]["cpu_us_per_msg"], fan.get("lost"))
for scen, b in sorted({k[:2] for k in rows}):
    print(f"### {scen}: A = main 5f9e8e4, B = {b}\n")
    print("| set | round | A µs/msg | B µs/msg | B / A | lost A / B |")
    print("|---|---|---|---|---|---|")
    a_all, b_all, r_all = [], [], []
    for k in sorted(k for k in rows if k[:2] == (scen, b)):
        r = rows[k]
        if "A" not in r or "B" not in r:
            continue
        x, y = r["A"][0], r["B"][0]
        a_all.append(x); b_all.append(y); r_all.append(y / x)
        lost = "" if r["A"][1] is None else f"{r['A'][1]} / {r['B'][1]}"
        print(f"| {k[2]} | {k[3]} | {x:.3f} | {y:.3f} | {y/x:.3f} | {lost} |")
    ma, mb = statistics.median(a_all), statistics.median(b_all)
    print(f"| median | | {ma:.3f} | {mb:.3f} | **{mb/ma:.3f}** (median of ratios {statistics.median(r_all):.3f}) | |\n")
PY
