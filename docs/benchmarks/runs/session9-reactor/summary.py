#!/usr/bin/env python3
"""Tabulates the A/B pairs of this directory (drive.sh): per pair A, B and
B/A; the medians of A and of B and their ratio; the host's other load.
An argument: that directory instead (merged/)."""
import json
import os
import statistics
import sys

HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
METRICS = {
    "echo": [("server CPU per message (µs)", ".server.cpu_us_per_msg"), ("messages/s", ".echo.msgs_per_s")],
    "fanout": [("server CPU per delivery (µs)", ".server.cpu_us_per_msg"),
               ("deliveries/s", ".fanout.delivered_per_s"), ("lost", ".fanout.lost")],
    "hold-raw": [("RSS per connection (B)", ".server.rss_per_conn_bytes")],
    "hold-cf": [("RSS per connection (B)", ".server.rss_per_conn_bytes")],
}


def get(doc, path):
    for k in path.strip(".").split("."):
        doc = doc.get(k) if isinstance(doc, dict) else None
    return doc


def load(name):
    p = os.path.join(HERE, name + ".json")
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        return None
    with open(p) as f:
        return json.load(f)


def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4f}"


for scenario, metrics in METRICS.items():
    pairs = []
    i = 1
    while load(f"{scenario}-A-{i}") or load(f"{scenario}-B-{i}"):
        pairs.append((load(f"{scenario}-A-{i}"), load(f"{scenario}-B-{i}")))
        i += 1
    if not pairs:
        continue
    for label, path in metrics:
        print(f"\n{scenario}: {label}\n")
        print("| pair | A (main) | B (reactor) | B / A | other load A, B (cores) |")
        print("|---|---|---|---|---|")
        avals, bvals = [], []
        for n, (a, b) in enumerate(pairs, 1):
            av = get(a, path) if a else None
            bv = get(b, path) if b else None
            oa = get(a, ".host.other_busy_cores") if a else None
            ob = get(b, ".host.other_busy_cores") if b else None
            ratio = f"{bv / av:.3f}" if av and bv is not None else "-"
            load_s = ", ".join("-" if o is None else f"{o:.2f}" for o in (oa, ob))
            print(f"| {n} | {fmt(av)} | {fmt(bv)} | {ratio} | {load_s} |")
            if av is not None:
                avals.append(av)
            if bv is not None:
                bvals.append(bv)
        if avals and bvals:
            ma, mb = statistics.median(avals), statistics.median(bvals)
            r = f"{mb / ma:.3f}" if ma else "-"
            print(f"| median | {fmt(ma)} | {fmt(mb)} | {r} | |")

# The side-by-side rounds (side-by-side.sh): A and B at the same time.
SBS = os.path.join(HERE, "side-by-side")
if os.path.isdir(SBS):
    for scenario in ("echo", "fanout"):
        rows = []
        r = 1
        while os.path.exists(os.path.join(SBS, f"{scenario}-A-{r}.json")):
            docs = []
            for b in "AB":
                with open(os.path.join(SBS, f"{scenario}-{b}-{r}.json")) as f:
                    docs.append(json.load(f))
            rows.append(docs)
            r += 1
        if not rows:
            continue
        print(f"\nside by side, {scenario}: server CPU per message (µs)\n")
        print("| round | A (main) | B (reactor) | B / A |")
        print("|---|---|---|---|")
        av = [get(a, ".server.cpu_us_per_msg") for a, _ in rows]
        bv = [get(b, ".server.cpu_us_per_msg") for _, b in rows]
        for n, (x, y) in enumerate(zip(av, bv), 1):
            print(f"| {n} | {fmt(x)} | {fmt(y)} | {y / x:.3f} |")
        ma, mb = statistics.median(av), statistics.median(bv)
        print(f"| median | {fmt(ma)} | {fmt(mb)} | {mb / ma:.3f} |")
