#!/usr/bin/env python3
"""session12-redis/summary.py -- the table in README.md from the NAME.table / NAME.json files.
other load (cores) = host busy cores (bench JSON `host.busy_cores`, over the bench's active time)
minus node A, node B, redis-server and the bench's own CPU over the same time: the host's other work."""
import json, re, statistics as st, sys, os
os.chdir(os.path.dirname(os.path.abspath(__file__)))
NUM = r"([0-9.]+)"
def row(name):
    t = open(f"{name}.table").read().strip().splitlines()[-1]
    g = lambda pat: float(re.search(pat, t).group(1))
    d = json.load(open(f"{name}.json"))
    r = dict(pubs=g(r"published/s " + NUM), p50=g(r"latency p50 " + NUM), p99=g(r"p99 " + NUM),
             A=g(r" A " + NUM + " us/publication  B"), B=g(r"B " + NUM + " us/delivery"),
             R=g(r"redis " + NUM + " us/publication"), At=g(r"threads: A " + NUM), Bt=g(r", B " + NUM))
    active = d["bench"]["cpu_s"] / d["bench"]["cpu_util"]
    pubs, dels = d["fanout"]["acked"], d["fanout"]["delivered"]
    ours = (r["A"] * pubs + r["R"] * pubs + r["B"] * dels) / 1e6 + d["bench"]["cpu_s"]
    r["other"] = d["host"]["busy_cores"] - ours / active
    return r
COLS = [("pubs", "pub/s", "{:.0f}"), ("A", "A µs/pub", "{:.2f}"), ("At", "A redis thr µs/pub", "{:.2f}"),
        ("B", "B µs/del", "{:.2f}"), ("Bt", "B redis thr µs/pub", "{:.2f}"), ("R", "Redis µs/pub", "{:.2f}"),
        ("p50", "p50 ms", "{:.3f}"), ("p99", "p99 ms", "{:.3f}"), ("other", "other load (cores)", "{:.2f}")]
def table(sc, rounds, title):
    print(f"\n### {sc}: {title}\n")
    print("| run | " + " | ".join(c[1] for c in COLS) + " |")
    print("|---" * (len(COLS) + 1) + "|")
    rows = {v: [] for v in "AB"}
    for i in rounds:
        for v in ("BA" if i >= 11 else "AB"):
            r = row(f"{sc}-{v}-{i}"); rows[v].append(r)
            print(f"| {sc}-{v}-{i} | " + " | ".join(f.format(r[k]) for k, _, f in COLS) + " |")
    med = {v: {k: st.median(x[k] for x in rows[v]) for k, _, _ in COLS} for v in "AB"}
    for v in "AB":
        print(f"| **median {v}** | " + " | ".join(f.format(med[v][k]) for k, _, f in COLS) + " |")
    print("| **B/A (medians)** | " + " | ".join(f"{med['B'][k] / med['A'][k]:.3f}" if k != "other" else "" for k, _, _ in COLS) + " |")
    # per-round paired ratios (B_i / A_i), then their median
    pr = {k: [rb[k] / ra[k] for ra, rb in zip(rows["A"], rows["B"])] for k, _, _ in COLS if k != "other"}
    print("| B/A per round | " + " | ".join(
        (" ".join(f"{x:.2f}" for x in pr[k]) if k in pr else "") for k, _, _ in COLS) + " |")
    print("| **median of per-round B/A** | " + " | ".join(
        (f"{st.median(pr[k]):.3f}" if k in pr else "") for k, _, _ in COLS) + " |")
R = lambda a, b: list(range(a, b + 1))
only = sys.argv[1:]
for sc, rounds, title in [
        ("max", R(1, 3), "rounds 1-3 (the 3 asked for; another helper's load on the host, ~0.6 core)"),
        ("max", R(4, 10), "rounds 4-10 (quiet host, A first in each pair)"),
        ("max", R(11, 14), "rounds 11-14 (quiet host, B first in each pair: order control)"),
        ("max", R(4, 14), "rounds 4-14 (all quiet-host pairs)"),
        ("latency", R(1, 3), "rounds 1-3 (the 3 asked for; another helper's bench-hold overlapped round 1)"),
        ("latency", R(4, 10), "rounds 4-10 (quiet host)"),
        ("latency", R(1, 10), "rounds 1-10")]:
    if not only or f"{sc}:{rounds[0]}-{rounds[-1]}" in only:
        table(sc, rounds, title)
