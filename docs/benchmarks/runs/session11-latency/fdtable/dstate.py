#!/usr/bin/env python3
# dstate.py PID < `perf script -F time,trace,ip,sym`: the shard thread of
# process PID: how often and how long it was blocked (state D), and how much
# of that in expand_files (fd-table growth).
import sys, re
pid = int(sys.argv[1]); ev = []
for blk in sys.stdin.read().split('\n\n'):
    b = blk.strip()
    if not b:
        continue
    m = re.match(r'\s*([\d.]+):\s+prev_comm=(\S+) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=.+? next_pid=(\d+)', b.split('\n')[0])
    if m:
        ev.append((float(m.group(1)), m.group(2), int(m.group(3)), m.group(4), int(m.group(5)), 'expand_files' in b))
tid = min(e[2] for e in ev if e[1] == 'shard-0' and pid <= e[2] <= pid + 20)
n = tot = nd = totd = 0; blocked = None
for t, c, pp, st, np_, ex in ev:
    if pp == tid and st.startswith('D'):
        blocked, exp = t, ex
    elif np_ == tid and blocked is not None:
        d = t - blocked; nd += 1; totd += d
        if exp:
            n += 1; tot += d
        blocked = None
print(f"shard tid {tid}: blocked (D) {nd} times, {totd*1000:.1f} ms; in expand_files {n} times, {tot*1000:.1f} ms")
