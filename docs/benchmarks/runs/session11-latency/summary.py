#!/usr/bin/env python3
# summary.py DIR: one line per run (*.json) of DIR: bench and server-side
# latency, with --rx-timestamps the split at the subscriber's socket, the
# bench's p99 per second, other load (the bench's other_busy_cores, and the
# steal ticks of cpu 0 and 1 from NAME.host), lost, the server's CPU per
# delivery and core use, and (bench reports since session 13) its frames per
# send and flush holds; then the medians of A and B.
import json, sys, glob, os, statistics
out = sys.argv[1]
ms = lambda v: "%.3f" % (v / 1000) if v is not None else "-"
rows = {}
print("run | bench p50 / p99 / p99.9 (ms) | server-side p50 / p99 / p99.9 (ms) | within 0.5 ms | "
      "publish → socket p99 | socket → read p99 | bench p99 per second (ms) | other cores busy | steal ticks | lost | "
      "server µs / delivery, core busy | frames / send, holds")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(f)[:-5]
    try:
        d = json.load(open(f))
    except ValueError:
        print(f"{name} | (no report)")
        continue
    l, s = d["latency"], d.get("server_latency") or {}
    sock, rd = d.get("socket_latency") or {}, d.get("read_delay") or {}
    steal = "-"
    host = os.path.join(out, name + ".host")
    if os.path.exists(host):
        cpu = [ln.split() for ln in open(host) if ln.startswith("cpu")]
        if len(cpu) == 4:
            steal = "%d/%d" % (int(cpu[2][8]) - int(cpu[0][8]), int(cpu[3][8]) - int(cpu[1][8]))
    sv = d.get("server") or {}
    srv = "%.2f, %.0f %%" % (sv["cpu_us_per_msg"], sv["cpu_util"] * 100) if "cpu_us_per_msg" in sv else "-"
    sends = "%.2f, %d" % (s["frames_per_send"], s["flush_holds"]) if "frames_per_send" in s and "flush_holds" in s else "-"
    print(f"{name} | {ms(l['p50_us'])} / {ms(l['p99_us'])} / {ms(l['p999_us'])} | "
          f"{ms(s.get('p50_us'))} / {ms(s.get('p99_us'))} / {ms(s.get('p999_us'))} | "
          f"{s.get('within_500us', 0) * 100:.1f} % | {ms(sock.get('p99_us'))} | {ms(rd.get('p99_us'))} | "
          f"{' '.join('%.1f' % (t['p99_us'] / 1000) for t in d['latency_timeline'])} | "
          f"{d.get('host', {}).get('other_busy_cores', 0):.2f} | {steal} | {d['fanout']['lost']} | "
          f"{srv} | {sends}")
    rows.setdefault(name.split("-")[0], []).append((l["p99_us"], s.get("p99_us"), sock.get("p99_us"), rd.get("p99_us")))
for v, rs in sorted(rows.items()):
    med = lambda i: statistics.median(r[i] for r in rs) if all(r[i] is not None for r in rs) else None
    print(f"median {v} ({len(rs)} runs): bench p99 {ms(med(0))} ms, server-side p99 {ms(med(1))} ms, "
          f"publish → socket p99 {ms(med(2))}, socket → read p99 {ms(med(3))}")
