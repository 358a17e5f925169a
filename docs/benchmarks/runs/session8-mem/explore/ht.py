# Reads a heaptrack data file (zstd): per allocation site, size and counts allocated/freed.
# python3 ht.py FILE MIN_COUNT [N]  (ht2.py FILE MIN N: sites by size; ht3.py FILE MIN N IDX: live before site IDX first allocates)
import sys, subprocess, collections, re
f = sys.argv[1]; minc = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
data = subprocess.run(['zstd','-dc',f],capture_output=True,text=True).stdout.splitlines()
strings=[None]; ips=[None]; traces=[None]; allocs=[]
plus=collections.Counter(); minus=collections.Counter()
order=[]  # sequence of (kind, idx) for the first connections
for line in data:
    if not line: continue
    k=line[0]; p=line[2:].split(' ')
    if k=='s': strings.append(line[2:].split(' ',1)[1] if ' ' in line[2:] else '')
    elif k=='i':
        v=[int(x,16) for x in p]
        frames=[]
        rest=v[2:]
        for j in range(0,len(rest)-2,3):
            frames.append((rest[j],rest[j+1],rest[j+2]))
        if len(rest)==1: frames.append((rest[0],0,0))
        ips.append(frames)
    elif k=='t':
        a,b=[int(x,16) for x in p]; traces.append((a,b))
    elif k=='a':
        s,t=[int(x,16) for x in p]; allocs.append((s,t))
    elif k=='+': i=int(p[0],16); plus[i]+=1; order.append(('+',i))
    elif k=='-': i=int(p[0],16); minus[i]+=1; order.append(('-',i))
def demangle(names):
    names=[n if n else '?' for n in names]
    out=subprocess.run(['c++filt'],input='\n'.join(names),capture_output=True,text=True)
    res=out.stdout.splitlines() if out.returncode==0 else names
    return [re.sub(r'\[[0-9a-f]{16}\]','',x) for x in res]
skip=re.compile(r'alloc::|core::|hashbrown|__rust|__rdl|heaptrack|malloc|bytes::bytes_mut::BytesMut::reserve|<alloc|std::|realloc|RawVec|do_reserve|finish_grow|grow_one|Vec<|String|Box<|Rc<')
def stack(t,n=6):
    out=[]
    while t and len(out)<40:
        ipi,parent=traces[t]
        for fn,fi,ln in reversed(ips[ipi]) if False else ips[ipi]:
            out.append((strings[fn] if fn < len(strings) else '?', strings[fi] if fi and fi<len(strings) else '', ln))
        t=parent
    return out
names=[]
rows=[]
for i,(s,t) in enumerate(allocs):
    if plus[i]>=minc:
        rows.append((i,s,plus[i],minus[i],t))
rows.sort(key=lambda r:-(r[2]-r[3])*r[1])
allnames=set()
for r in rows:
    for fn,fi,ln in stack(r[4]): allnames.add(fn)
allnames=list(allnames); dm=dict(zip(allnames,demangle(allnames)))
for i,s,pl,mi,t in rows:
    st=[(dm.get(fn,fn),fi,ln) for fn,fi,ln in stack(t)]
    st=[x for x in st if not skip.search(x[0])][:5]
    pass
    print(f"#{i} size {s:6d}  +{pl} -{mi}  live {pl-mi}  ({(pl-mi)*s} B)")
    for fn,fi,ln in st: print(f"      {fn[:110]}  {fi.split('/src/')[-1]}:{ln}")

# live at peak
print("==== live at peak (per-conn allocations) ====")
live=collections.Counter(); cur=0; peak=0; peakpos=0
for pos,(k,i) in enumerate(order):
    s=allocs[i][0]
    if k=='+': live[i]+=1; cur+=s
    else: live[i]-=1; cur-=s
    if cur>peak: peak=cur; peakpos=pos
live=collections.Counter(); 
for k,i in order[:peakpos+1]:
    live[i]+= 1 if k=='+' else -1
N=int(sys.argv[3]) if len(sys.argv)>3 else 5000
tot=0
rows=[(i,allocs[i][0],c) for i,c in live.items() if c>=N*0.9]
rows.sort(key=lambda r:-r[1]*r[2])
nm=set()
for i,s_,c in rows:
    for fn,fi,ln in stack(allocs[i][1]): nm.add(fn)
nm=list(nm); dm.update(zip(nm,demangle(nm)))
for i,s,c in rows:
    st=[(dm.get(fn,fn) if fn in dm else fn,fi,ln) for fn,fi,ln in stack(allocs[i][1])]
    st=[x for x in st if not skip.search(x[0])][:3]
    st=[(re.sub(r'::h[0-9a-f]{16}$','',fn).replace('{{closure}}','{c}'),fi,ln) for fn,fi,ln in st]
    tot+=s*c
    print(f"#{i} size {s:6d} live {c}  per conn {s*c/N:.0f} B   " + " <- ".join(f"{'::'.join(fn.split('::')[-2:])}@{fi.split('/')[-1]}:{ln}" for fn,fi,ln in st))
print("peak", peak, "per conn total listed", tot/N)
