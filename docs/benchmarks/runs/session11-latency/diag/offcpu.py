#!/usr/bin/env python3
# offcpu.py SCHED.txt PID: from `perf script -F time,event,trace` of sched_switch
# events on cpu 0, every time the shard thread was off the core: for more
# than 2 ms when preempted (R) or blocked (D), more than 30 ms when idle (S),
# with what ran on the core meanwhile (ms).
import re, sys, collections
off = None
pid = sys.argv[2]
for ln in open(sys.argv[1]):
    m = re.match(r'\s*([\d.]+):\s+sched:sched_switch:\s+prev_comm=(\S+) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.+?) next_pid=(\d+)', ln)
    if not m:
        continue
    t = float(m.group(1)); pc, ps, nc = m.group(2), m.group(4), m.group(5)
    if m.group(3) == pid:
        off = (t, ps); ran = collections.Counter(); last = t; cur = nc
        continue
    if off:
        ran[cur] += t - last; last = t; cur = nc
        if m.group(6) == pid:
            d = t - off[0]
            if (d > 0.002 and off[1] != 'S') or d > 0.03:
                print("%.3f %s %.1f ms %s" % (off[0], off[1], d * 1000, {k: round(v * 1000, 1) for k, v in ran.most_common(3)}))
            off = None
