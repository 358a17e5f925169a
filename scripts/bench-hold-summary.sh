#!/usr/bin/env bash
# scripts/bench-hold-summary.sh [DIR] -- the tables of a folder of paired
# idle-memory runs (scripts/bench-hold-pairs.sh): per configuration and
# build (A, B), the runs in order and their medians: RSS per client (the bench's
# rss_per_conn_bytes), anonymous RSS per client (anon_per_conn_bytes), the
# server's RSS at start (the bench's "before"), the arenas' free heap 3 s
# after setup (malloc_stats: system − in use), connects/s and the connect
# p99; then B − A of the medians. A column no run has is left out.
cd "${1:-.}"
python3 - <<'PY'
import glob, json, re, statistics, collections
runs = collections.defaultdict(list)
for f in sorted(glob.glob("*-[AB]-*.json")):
    m = re.match(r"((?:ws-s\d+-c\d+-k\d+|raw-s\d+)[^AB]*?)-([AB])-(\d+)\.json", f)
    if not m:
        continue
    j = json.load(open(f))
    s, c = j["server"], j["connections"]
    try:
        log = open(f.replace(".json", ".server.log")).read()
        arenas = re.findall(r"Arena \d+:\nsystem bytes\s+=\s+(\d+)\nin use bytes\s+=\s+(\d+)", log)
        free = sum(int(a) - int(b) for a, b in arenas) / 1024 if arenas else float("nan")
    except OSError:
        free = float("nan")
    runs[(m[1], m[2])].append((int(m[3]), dict(
        per=s["rss_per_conn_bytes"], anon=s.get("anon_per_conn_bytes") or float("nan"),
        start=s["rss_before_bytes"] / 1024, free=free, rate=c["per_s"],
        p99=c["connect_latency"]["p99_us"] / 1000)))
cols = [("per", "RSS per client, B", "{:.0f}"), ("anon", "anonymous RSS per client, B", "{:.0f}"),
        ("start", "RSS at start, KB", "{:.0f}"), ("free", "free heap, KB", "{:.0f}"),
        ("rate", "connects/s", "{:.0f}"), ("p99", "connect p99, ms", "{:.1f}")]
# A column no run has (RssAnon came with session 12's bench) is left out.
cols = [c for c in cols if any(r[c[0]] == r[c[0]] for rs in runs.values() for _, r in rs)]
med = {}
for key, title, fmt in cols:
    print(f"### {title}\n")
    print("| configuration | build | runs in order | median |")
    print("|---|---|---|---|")
    for k in sorted(runs):
        v = [r[key] for _, r in sorted(runs[k], key=lambda x: x[0])]
        med[(k, key)] = statistics.median(v)
        print(f"| {k[0]} | {k[1]} | {' · '.join(fmt.format(x) for x in v)} | **{fmt.format(med[(k, key)])}** |")
    print()
print("### B − A of the medians\n")
print("| configuration | " + " | ".join(t for _, t, _ in cols) + " |")
print("|---|" + "---|" * len(cols))
for c in sorted({k[0] for k in runs}):
    if (c, "A") in runs and (c, "B") in runs:
        cells = []
        for key, _, fmt in cols:
            a, b = med[((c, "A"), key)], med[((c, "B"), key)]
            cells.append(f"{fmt.format(a)} → {fmt.format(b)} ({'+' if b >= a else '−'}{fmt.format(abs(b - a))})")
        print(f"| {c} | " + " | ".join(cells) + " |")
PY
