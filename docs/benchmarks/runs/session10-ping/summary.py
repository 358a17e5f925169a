#!/usr/bin/env python3
# summary.py DIR: one line per run (*.json) of DIR: bench and server-side
# latency, the bench's p99 per second, other load, lost.
import json, sys, glob, os
out = sys.argv[1]
print("run | bench p50 / p99 / p99.9 (ms) | server-side p50 / p99 / p99.9 (ms) | within 0.5 ms | bench p99 per second (ms) | other cores busy | lost")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    d = json.load(open(f))
    l, s = d["latency"], d.get("server_latency", {})
    ms = lambda v: "%.3f" % (v / 1000) if v is not None else "-"
    print(f"{os.path.basename(f)[:-5]} | {ms(l['p50_us'])} / {ms(l['p99_us'])} / {ms(l['p999_us'])} | "
          f"{ms(s.get('p50_us'))} / {ms(s.get('p99_us'))} / {ms(s.get('p999_us'))} | "
          f"{s.get('within_500us', 0) * 100:.1f} % | "
          f"{' '.join('%.0f' % (t['p99_us'] / 1000) for t in d['latency_timeline'])} | "
          f"{d.get('host', {}).get('other_busy_cores', 0):.2f} | {d['fanout']['lost']}")
