#!/usr/bin/env python3
"""Tabulates the session 9 latency runs: python3 summarize.py DIR..."""
import json
import os
import statistics
import sys


def row(path):
    j = json.load(open(path))
    f = j.get("fanout") or {}
    lat = j.get("latency") or {}
    srv = j.get("server_latency") or {}
    return {
        "run": os.path.basename(path)[:-5],
        "cpu_us": (j.get("server") or {}).get("cpu_us_per_msg"),
        "other": (j.get("host") or {}).get("other_busy_cores"),
        "bench_util": (j.get("bench") or {}).get("cpu_util"),
        "delivered": f.get("delivered"),
        "expected": f.get("expected"),
        "lost": f.get("lost"),
        "p50_ms": lat.get("p50_us", 0) / 1000,
        "p99_ms": lat.get("p99_us", 0) / 1000,
        "srv_n": srv.get("count"),
        "srv_p50_ms": srv.get("p50_us", 0) / 1000 if srv else None,
        "srv_p99_ms": srv.get("p99_us", 0) / 1000 if srv else None,
        "srv_p999_ms": srv.get("p999_us", 0) / 1000 if srv else None,
        "srv_le500": srv.get("within_500us") if srv else None,
    }


for d in sys.argv[1:]:
    rows = [row(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith(".json")]
    print(f"== {d}")
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    for prefix in sorted({r["run"].rsplit("-", 1)[0] for r in rows}):
        sel = [r for r in rows if r["run"].rsplit("-", 1)[0] == prefix]
        med = lambda k: statistics.median([r[k] for r in sel if r[k] is not None]) if any(r[k] is not None for r in sel) else None
        print(f"  median {prefix}: cpu_us={med('cpu_us')} p50_ms={med('p50_ms')} p99_ms={med('p99_ms')} "
              f"srv_p50_ms={med('srv_p50_ms')} srv_p99_ms={med('srv_p99_ms')} srv_p999_ms={med('srv_p999_ms')} other={med('other')}")
