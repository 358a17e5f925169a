import sys, re, collections
# input: perf script -F cpu,time,trace of sched_switch
pat = re.compile(r'\[(\d+)\]\s+([\d.]+):\s+prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)')
last = {}
long_ = collections.defaultdict(list)
tot = collections.Counter()
thr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0003
for line in sys.stdin:
    m = pat.search(line)
    if not m: continue
    cpu, t, pc, pp, st, nc, np_ = int(m[1]), float(m[2]), m[3], m[4], m[5], m[6], m[7]
    if cpu in last:
        t0, comm = last[cpu]
        d = t - t0
        tot[(cpu, comm)] += d
        if d > thr and not comm.startswith('swapper'):
            long_[(cpu, comm)].append((round(t0, 4), round(d * 1000, 2), st))
    last[cpu] = (t, nc)
for k, v in sorted(tot.items()): 
    if v > 0.01: print(k, round(v, 3))
for k, v in long_.items():
    print(k, len(v), 'runs >', thr*1000, 'ms; longest', sorted(v, key=lambda x: -x[1])[:8])
